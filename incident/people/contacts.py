"""An emergency contact list (CSV or YAML) read into the directory's bodies.

CSV: a header row naming ``name``, ``roles``, ``notify``, ``phone``, ``email`` (or 姓名, 角色, 通知, 电话,
邮箱); several roles or URLs in one cell are separated by ``;``, ``|`` or spaces. YAML: a list of
people, or ``{people: [...]}``, each ``{name, roles: [..] or "a;b", notify, phone, email}``.
A wrong row is refused naming its line (CSV) or position (YAML); nothing is imported then.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from incident.errors import BadInput

HEADERS = {"姓名": "name", "角色": "roles", "通知": "notify", "电话": "phone", "邮箱": "email"}
FIELDS = ("name", "roles", "notify", "phone", "email")


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part for part in re.split(r"[;|\s]+", str(value).strip()) if part]


def _row(raw: dict[str, Any], where: str) -> dict[str, Any]:
    row = {HEADERS.get(str(k).strip(), str(k).strip().lower()): v for k, v in raw.items() if k is not None}
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise BadInput(f"{where}: unknown column {unknown[0]!r}; use {', '.join(FIELDS)}")
    body: dict[str, Any] = {"name": str(row.get("name") or "").strip()}
    body["roles"], body["notify"] = _split(row.get("roles")), _split(row.get("notify"))
    for key in ("phone", "email"):
        if row.get(key) not in (None, ""):
            body[key] = str(row[key]).strip()
    return body


def read(path: Path) -> list[dict[str, Any]]:
    """The people of a contact list, as ``PersonIn`` fields with where each came from."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadInput(f"{path}: not YAML: {str(exc).splitlines()[0]}") from exc
        if isinstance(data, dict):
            data = data.get("people")
        if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
            raise BadInput(f"{path}: expected a list of people (name, roles, notify, phone, email)")
        rows = [_row(p, f"{path} person {i}") for i, p in enumerate(data, 1)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        rows = [_row(r, f"{path} line {i}") for i, r in enumerate(reader, 2)]
    if not rows:
        raise BadInput(f"{path}: nobody in the contact list")
    return rows

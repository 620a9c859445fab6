"""The words for every code a person reads, in zh and en, from ``vocabulary.yaml`` beside the playbooks.

Why beside the playbooks: they are the product's one vocabulary. A team that edits its playbooks (a new
measure, another role) edits the words in the same folder, and documents, notices, the console and the
CLI can no longer disagree about what a code is called (they once said 客服组 and 客户服务组).
``INCIDENT_PLAYBOOKS`` may point at another folder; a folder without its own vocabulary uses the built-in
one.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

LANGS = ("zh", "en")


class Words(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


Table = dict[str, Words]


def _file(folder: Path) -> Path:
    own = folder / "vocabulary.yaml"
    return own if own.exists() else Path(__file__).with_name("vocabulary.yaml")


@lru_cache(maxsize=8)
def _load(path: Path) -> dict[str, Table]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        return {
            domain: {str(code): Words.model_validate(words) for code, words in table.items()}
            for domain, table in raw.items()
        }
    except (AttributeError, ValidationError) as exc:
        raise ValueError(f"{path}: a vocabulary maps domain → code → {{zh, en}}: {exc}") from exc


def tables() -> dict[str, Table]:
    """Every domain's table (``role``, ``status``, ``deadline`` …)."""
    from playbooks import folder

    return _load(_file(folder()))


def table(domain: str) -> Table:
    return tables()[domain]


def label(domain: str, code: object, lang: str) -> str:
    """The word for ``code`` in ``lang``; the code itself when the vocabulary has none."""
    if code is None or code == "":
        return ""
    key = str(code).lower() if isinstance(code, bool) else str(code)
    words = tables().get(domain, {}).get(key)
    return words(lang) if words else key


def codes(domain: str) -> tuple[str, ...]:
    return tuple(table(domain))


def progress_line(progress: Mapping[str, int] | None, lang: str) -> str:
    """``首次联系：已联系 37/120，5 个超时`` / ``first contacts: contacted 37/120, 5 overdue`` (or "")."""
    if not progress:
        return ""
    line = label("contact_progress", "line", lang).format(**progress)
    if progress.get("overdue"):
        line += label("contact_progress", "overdue", lang).format(**progress)
    return line

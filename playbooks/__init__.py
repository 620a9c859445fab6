"""Load and validate the playbooks: one YAML file per category, one section per level, and the
vocabulary (``vocabulary.yaml``: the words for every code, see ``playbooks/vocabulary.py``).

``INCIDENT_PLAYBOOKS`` may point at another folder (a team's own edited copies).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from playbooks.schema import Category, LevelRules, Playbook, roles

__all__ = ["Category", "LevelRules", "Playbook", "PlaybookError", "get", "load_all", "roles"]

BUILTIN = Path(__file__).parent


class PlaybookError(ValueError):
    """A playbook that cannot be used; the message names the file and the field."""


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_file(path: Path) -> Playbook:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PlaybookError(f"{path}: cannot read playbook: {exc}") from exc
    if not isinstance(data, dict):
        raise PlaybookError(f"{path}: a playbook must be a mapping, got {type(data).__name__}")
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        shown = "; ".join(f"field {_location(e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise PlaybookError(f"{path}: {shown}{more}") from exc
    if path.stem != playbook.category:
        raise PlaybookError(f"{path}: field category: {playbook.category!r} must match file name")
    return playbook


def folder() -> Path:
    return Path(os.environ.get("INCIDENT_PLAYBOOKS") or BUILTIN)


@lru_cache(maxsize=8)
def _load_folder(path: Path) -> dict[str, Playbook]:
    books = {p.stem: load_file(p) for p in sorted(path.glob("*.yaml")) if p.stem != "vocabulary"}
    missing = {"product_quality", "service_failure", "special_scenario"} - set(books)
    if missing:
        raise PlaybookError(f"{path}: no playbook for {', '.join(sorted(missing))}")
    return books


def load_all() -> dict[str, Playbook]:
    """Every playbook, validated; raises PlaybookError on the first broken file."""
    return _load_folder(folder())


def get(category: str) -> Playbook:
    books = load_all()
    if category not in books:
        raise PlaybookError(f"unknown category {category!r}; expected one of {', '.join(books)}")
    return books[category]

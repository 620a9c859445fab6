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

from playbooks.schema import Calendars, Category, LevelRules, Playbook, TeamCalendar, roles

__all__ = [
    "Category",
    "LevelRules",
    "Playbook",
    "PlaybookError",
    "TeamCalendar",
    "calendar_for",
    "calendars",
    "get",
    "load_all",
    "roles",
]
NOT_PLAYBOOKS = ("vocabulary", "calendars")

BUILTIN = Path(__file__).parent


class PlaybookError(ValueError):
    """A playbook that cannot be used; the message names the file and the field."""


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _read(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PlaybookError(f"{path}: cannot read playbook: {exc}") from exc
    if not isinstance(data, dict):
        raise PlaybookError(f"{path}: a playbook must be a mapping, got {type(data).__name__}")
    return data


def _invalid(path: Path, exc: ValidationError) -> PlaybookError:
    shown = "; ".join(f"field {_location(e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return PlaybookError(f"{path}: {shown}{more}")


def load_calendars(path: Path) -> Calendars:
    try:
        return Calendars.model_validate(_read(path))
    except ValidationError as exc:
        raise _invalid(path, exc) from exc


def load_file(path: Path) -> Playbook:
    data = _read(path)
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        raise _invalid(path, exc) from exc
    if path.stem != playbook.category:
        raise PlaybookError(f"{path}: field category: {playbook.category!r} must match file name")
    return playbook


def folder() -> Path:
    return Path(os.environ.get("INCIDENT_PLAYBOOKS") or BUILTIN)


@lru_cache(maxsize=8)
def _load_folder(path: Path) -> dict[str, Playbook]:
    books = {p.stem: load_file(p) for p in sorted(path.glob("*.yaml")) if p.stem not in NOT_PLAYBOOKS}
    missing = {"product_quality", "service_failure", "special_scenario"} - set(books)
    if missing:
        raise PlaybookError(f"{path}: no playbook for {', '.join(sorted(missing))}")
    teams = _calendars_in(path)
    for name, book in books.items():
        if book.calendar is not None and book.calendar not in teams.calendars:
            known = ", ".join(teams.calendars)
            raise PlaybookError(
                f"{path / (name + '.yaml')}: field calendar: {book.calendar!r} "
                f"is not in calendars.yaml ({known})"
            )
    return books


@lru_cache(maxsize=8)
def _calendars_in(path: Path) -> Calendars:
    """A folder's ``calendars.yaml``, else the built-in one (a team's copies need not repeat it)."""
    own = path / "calendars.yaml"
    return load_calendars(own if own.exists() else BUILTIN / "calendars.yaml")


def calendars() -> Calendars:
    return _calendars_in(folder())


def calendar_for(category: str) -> TeamCalendar:
    """The team calendar a category's business-time deadlines count on."""
    teams = calendars()
    return teams.calendars[get(category).calendar or teams.default]


def load_all() -> dict[str, Playbook]:
    """Every playbook, validated; raises PlaybookError on the first broken file."""
    return _load_folder(folder())


def get(category: str) -> Playbook:
    books = load_all()
    if category not in books:
        raise PlaybookError(f"unknown category {category!r}; expected one of {', '.join(books)}")
    return books[category]

"""The small facts every judgement of a post-mortem reads: durations, both languages' words, a row's kind.

Shared by :mod:`.analysis` (timings), :mod:`.when` (milestones), :mod:`.who` (duties) and :mod:`.how`
(findings and improvement points), so each judgement is computed once from the same recorded rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from incident.records.documents import i18n
from incident.records.documents.snapshot import DeadlineItem, Dossier, Label


def minutes(delta: timedelta) -> int:
    return round(delta.total_seconds() / 60)


def both(domain: str, code: object) -> Label:
    return Label(i18n.label(domain, code, "zh"), i18n.label(domain, code, "en"))


def params(**params: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(params.items())


def first_contact_at(d: Dossier) -> datetime | None:
    if d.first_contact_at is not None:
        return d.first_contact_at
    first = d.first_contact
    return first.at if first else None


def kind_rows(d: Dossier, kind: str) -> list[DeadlineItem]:
    return [x for x in d.deadlines if x.kind == kind and x.state != "cancelled"]

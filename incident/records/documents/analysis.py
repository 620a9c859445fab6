"""The derived half of the dossier: timings here; the milestones (:mod:`.when`), the duties
(:mod:`.who`), what went well or badly and the improvement points (:mod:`.how`) beside it.

Why pure functions over the snapshot: every judgement a post-mortem makes ("contact on time",
"approval 30 min late", "round 1 below target") is a fact a reviewer may question, so each one is
computed in one place from recorded rows, tested, and laid out by templates without any logic.
Findings carry a message code and raw parameters; :mod:`incident.records.documents.i18n` words them.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from incident.records.documents.facts import first_contact_at, kind_rows
from incident.records.documents.how import AREAS, findings, improvements
from incident.records.documents.snapshot import Dossier, minutes_between
from incident.records.documents.when import milestones
from incident.records.documents.who import duties

__all__ = ["AREAS", "derive", "duties", "findings", "improvements", "milestones"]


def derive(d: Dossier) -> dict[str, Any]:
    """Everything the templates need beyond the recorded facts, as Dossier field values."""
    contact = _contact(d)
    postmortem_due, postmortem_timing = _postmortem(d)
    last_round = d.survey_rounds[-1] if d.survey_rounds else None
    derived: dict[str, Any] = {
        "response_minutes": minutes_between(d.identified_at, first_contact_at(d)),
        "contact_due_at": contact[0],
        "contact_timing": contact[1],
        "contact_late_minutes": contact[2],
        "handling_minutes": minutes_between(d.identified_at, d.resolved_at),
        "postmortem_due_at": postmortem_due,
        "postmortem_timing": postmortem_timing,
        "satisfaction": last_round.share if last_round else None,
        "satisfaction_met": last_round.met if last_round else None,
        "approval_refusals": sum(1 for t in d.timeline if t.event == "approval_refused"),
        "escalated_roles": _escalated_roles(d),
    }
    staged = replace(d, **derived)
    derived["milestones"] = milestones(staged)
    derived["duties"] = duties(staged)
    derived["went_well"], derived["went_badly"] = findings(staged)
    derived["improvements"] = improvements(staged)
    return derived


def _escalated_roles(d: Dossier) -> tuple[str, ...]:
    """Roles told about a miss: the deadline rows' escalated_to and the escalated events' "to"."""
    values = [x.escalated_to for x in d.deadlines]
    values += [t.get("to") for t in d.timeline if t.event == "escalated"]
    roles = (r for v in values if v for r in re.split(r"[\s,;]+", v))
    return tuple(dict.fromkeys(r for r in roles if r))


def _contact(d: Dossier) -> tuple[datetime, str, int | None]:
    """(due, timing, late minutes) of the first contact; the deadline row wins over the rule,
    because a level raised later shortens the promise (intake keeps the earlier due time)."""
    rows = kind_rows(d, "contact")
    due = rows[-1].due_at if rows else d.identified_at + d.rules.contact_within
    at = first_contact_at(d)
    if at is not None:
        return (due, "late", minutes_between(due, at)) if at > due else (due, "on_time", None)
    if d.generated_at > due:
        return due, "overdue", minutes_between(due, d.generated_at)
    return due, "open", None


def _postmortem(d: Dossier) -> tuple[datetime | None, str | None]:
    """(due, timing): due is resolution + the level's postmortem_due; the deadline row, if the
    flow keeps one, says whether it was met."""
    if d.resolved_at is None:
        return None, None
    due = d.resolved_at + d.rules.postmortem_due
    rows = kind_rows(d, "postmortem")
    done = rows[-1].met_at if rows else None
    if done is not None:
        return due, "late" if done > due else "on_time"
    return due, "overdue" if d.generated_at > due else "open"

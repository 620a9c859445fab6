"""The incident timeline: every event with when, what and who — the backbone of the post-mortem.

An act or refusal (``ACTS``, ``REFUSALS``) written while a request is handled also records where it came
from (its channel and the client's address, ``incident/people/via.py``); it is then that request's line
in the audit (``incident/people/audit.py`` reads them from here), so the audit cannot disagree with the
incident's own history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from incident.people import via
from models import TimelineEvent, utcnow

EVENTS = (
    "identified",
    "owner_assigned",
    "feedback_joined",
    "ticket_updated",
    "media_exposure",  # a negative media item the public-opinion monitor found (its link)
    "level_raised",
    "stage_entered",
    "contacted",
    "measure_taken",
    "cause_recorded",
    "solution_proposed",
    "solution_approved",
    "solution_rejected",
    "approval_refused",
    "action_refused",
    "resume_refused",
    "confirmed",
    "survey_recorded",
    "follow_up_round",
    "deadline_warned",
    "deadline_missed",
    "deadline_paused",  # waiting on the customer (the playbook's pause_while)
    "deadline_resumed",
    "escalated",
    "acknowledged",
    "postmortem_rendered",
    "meeting_held",
    "postmortem_signed",
    "action_added",
    "action_done",
    "recurrence_found",
    "run_cancelled",
    "closed",
)
# A person's acts, as the audit names them; and the refusals (None: the action is in the row's data).
ACTS = {
    "contacted": "contact",
    "measure_taken": "measure",
    "cause_recorded": "cause",
    "solution_proposed": "propose",
    "solution_approved": "approve",
    "solution_rejected": "reject",
    "confirmed": "confirm",
    "survey_recorded": "survey",
    "owner_assigned": "assign",
    "meeting_held": "meeting",
    "postmortem_signed": "signoff",
    "action_added": "actions_add",
    "action_done": "actions_close",
    "acknowledged": "ack",
}
REFUSALS: dict[str, str | None] = {
    "approval_refused": "approve",
    "action_refused": None,
    "resume_refused": "resume",
}


def row(
    incident_id: str,
    event: str,
    by: str,
    detail: str | None = None,
    *,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One event as column values (intake inserts a batch's events in one statement)."""
    if event not in EVENTS:
        raise ValueError(f"unknown timeline event {event!r}")
    # Only a person's act (or its refusal) is stamped with where it came from: it is the request's line
    # in the audit. Other events are the service's own, whatever request happened to set them off.
    here = via.current() if event in ACTS or event in REFUSALS else None
    if here is not None:
        here.audited = True
    return {"incident_id": incident_id, "at": now or utcnow(), "event": event, "by": by, "detail": detail,
            "data": data, "channel": here.channel if here else None,
            "address": here.address if here else None}  # fmt: skip


def add(
    session: Session,
    incident_id: str,
    event: str,
    by: str,
    detail: str | None = None,
    *,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> TimelineEvent:
    event_row = TimelineEvent(**row(incident_id, event, by, detail, data=data, now=now))
    session.add(event_row)
    return event_row

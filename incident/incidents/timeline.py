"""The incident timeline: every event with when, what and who — the backbone of the post-mortem."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

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
    return {"incident_id": incident_id, "at": now or utcnow(), "event": event, "by": by, "detail": detail,
            "data": data}  # fmt: skip


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

"""``incident audit [ID]``: who did or tried what, when, on which incident, and whether it was refused.

Read from the timeline, where every human step and every refusal is recorded in the same transaction
as the act itself (or, for a refusal, before the 403 goes back): one source, so the audit cannot
disagree with the incident's own history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models import TimelineEvent, session_scope

ACTIONS = {
    "contacted": "contact",
    "measure_taken": "measure",
    "cause_recorded": "cause",
    "solution_proposed": "propose",
    "solution_approved": "approve",
    "solution_rejected": "reject",
    "confirmed": "confirm",
    "survey_recorded": "survey",
    "meeting_held": "meeting",
    "postmortem_signed": "signoff",
    "action_added": "actions_add",
    "action_done": "actions_close",
}
REFUSALS = {"approval_refused": "approve", "action_refused": None, "resume_refused": "resume"}


def _who(event: TimelineEvent) -> str:
    signed = ("solution_approved", "solution_rejected", "postmortem_signed")
    if event.event in signed and event.by.endswith(")"):
        return event.by.rsplit(" (", 1)[0]  # "陈总 (leadership)" → 陈总
    return event.by


def events(incident_id: str | None = None, limit: int = 5000) -> list[dict[str, Any]]:
    """Actions (``outcome: ok``) and refusals (``outcome: refused``), oldest first."""
    kinds = [*ACTIONS, *REFUSALS]
    stmt = select(TimelineEvent).where(TimelineEvent.event.in_(kinds))
    if incident_id is not None:
        stmt = stmt.where(TimelineEvent.incident_id == incident_id)
    with session_scope() as s:
        rows = s.scalars(stmt.order_by(TimelineEvent.id.desc()).limit(limit)).all()
        found = []
        for row in reversed(rows):
            refused = row.event in REFUSALS
            named = REFUSALS[row.event] if refused else ACTIONS[row.event]
            action = named or (row.data or {}).get("action")
            found.append(
                {
                    "at": row.at.isoformat(),
                    "who": _who(row),
                    "action": action or row.event,
                    "incident_id": row.incident_id,
                    "outcome": "refused" if refused else "ok",
                    "detail": row.detail,
                }
            )
        return found

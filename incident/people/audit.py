"""``incident audit [ID]``: who did or tried what, when, on which incident, and whether it was refused.

Human steps and their refusals are read from the timeline, where each is recorded in the same
transaction as the act itself (or, for a refusal, before the 403 goes back): one source, so the audit
cannot disagree with the incident's own history. Logins, logouts and reveals of a customer's contact are
access events (``models/access.py``: they may concern no incident), with the channel and the address.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models import AccessEvent, TimelineEvent, session_scope, utcnow

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
    "acknowledged": "ack",
}
REFUSALS = {"approval_refused": "approve", "action_refused": None, "resume_refused": "resume"}


def _who(event: TimelineEvent) -> str:
    signed = ("solution_approved", "solution_rejected", "postmortem_signed")
    if event.event in signed and event.by.endswith(")"):
        return event.by.rsplit(" (", 1)[0]  # "陈总 (leadership)" → 陈总
    return event.by


def record_access(
    who: str,
    action: str,
    outcome: str,
    *,
    channel: str,
    address: str | None,
    incident_id: str | None = None,
    detail: str | None = None,
) -> None:
    """One login, logout or reveal (``outcome`` ok or refused), committed at once."""
    with session_scope() as s:
        s.add(
            AccessEvent(
                at=utcnow(), who=who[:200], action=action, outcome=outcome, channel=channel,
                address=address, incident_id=incident_id, detail=detail,
            )
        )  # fmt: skip


def events(incident_id: str | None = None, limit: int = 5000) -> list[dict[str, Any]]:
    """Actions and access events (``outcome: ok``) and refusals (``outcome: refused``), oldest first."""
    found = _timeline(incident_id, limit) + _access(incident_id, limit)
    found.sort(key=lambda e: e["at"])
    return found[-limit:]


def _access(incident_id: str | None, limit: int) -> list[dict[str, Any]]:
    stmt = select(AccessEvent)
    if incident_id is not None:
        stmt = stmt.where(AccessEvent.incident_id == incident_id)
    with session_scope() as s:
        rows = s.scalars(stmt.order_by(AccessEvent.id.desc()).limit(limit)).all()
        return [
            {
                "at": row.at.isoformat(),
                "who": row.who,
                "action": row.action,
                "incident_id": row.incident_id,
                "outcome": row.outcome,
                "detail": row.detail,
                "channel": row.channel,
                "address": row.address,
            }
            for row in rows
        ]


def _timeline(incident_id: str | None, limit: int) -> list[dict[str, Any]]:
    kinds = [*ACTIONS, *REFUSALS]
    stmt = select(TimelineEvent).where(TimelineEvent.event.in_(kinds))
    if incident_id is not None:
        stmt = stmt.where(TimelineEvent.incident_id == incident_id)
    with session_scope() as s:
        rows = s.scalars(stmt.order_by(TimelineEvent.id.desc()).limit(limit)).all()
        found: list[dict[str, Any]] = []
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
                    "event": row.event,  # with ``data``: the detail in words (incident.incidents.timeline)
                    "data": row.data,
                }
            )
        return found

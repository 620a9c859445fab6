"""Improvement actions: each improvement point of a post-mortem as work with an owner and a due date.

Why actions and not a list of text: the guide's loop (feedback → handling → improvement → prevention)
only closes when someone does the improvement and shows it. An action is ``open`` until closed with a
note of evidence (refused without one); its due date is a row in ``deadlines`` (kind ``action``), so the
deadline watcher reminds (the level's ``action_remind_before`` ahead) and escalates it when overdue,
like every other promise, even after the incident itself is closed.

Who may add or close one: the level's lead, ``quality_control`` (which supervises implementation and
prevents recurrence, domain.md §8) and the ``duty_manager``; an action's owner may also close their
own. The service token may add actions (a meeting tool or a script reports them) but not close one:
"it is done" needs someone answerable for it.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, tzinfo
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

import playbooks
from incident import settings
from incident.errors import BadInput, Conflict, Forbidden, NotFound
from incident.incidents import timeline
from incident.inputs import Input
from incident.people.service import Actor
from models import LOCK, Deadline, ImprovementAction, Incident, next_id, session_scope, utcnow

KINDS = ("process", "product", "training", "resources")
STATUSES = ("open", "done")
REVIEWERS = ("quality_control", "duty_manager")  # plus the level's lead
_DURATION = re.compile(r"^(\d+)\s*(h|d|w)$")
_UNIT = {"h": "hours", "d": "days", "w": "weeks"}

Name = Annotated[str, Field(min_length=1, max_length=200)]
Due = Annotated[str, Field(min_length=1, max_length=40)]


class ActionIn(Input):
    """``due``: a date (YYYY-MM-DD, the end of that day in INCIDENT_TZ), an ISO 8601 time, or a span
    after the meeting (``14d``, ``72h``, ``2w``)."""

    kind: Literal["process", "product", "training", "resources"]
    owner: Name
    due: Due
    text: str = Field(min_length=1, max_length=2000)


class ActionsIn(Input):
    actions: list[ActionIn] = Field(min_length=1, max_length=50)
    by: Name | None = None


class CloseIn(Input):
    evidence: str = Field(min_length=1, max_length=4000)
    by: Name | None = None


def zone() -> tzinfo:
    """Where a bare date ends: INCIDENT_TZ, else the machine's zone (where people read times)."""
    return settings.zone()


def due_time(text: str, start: datetime) -> datetime:
    """The due time an action's ``due`` means (see ``ActionIn``); must lie after ``start``."""
    value = text.strip()
    span = _DURATION.match(value)
    if span:
        due = start + timedelta(**{_UNIT[span[2]]: int(span[1])})
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise BadInput(f"due: {text!r} is not a date (2026-12-31), an ISO time or a span (14d)") from None
        if len(value) == 10:  # a bare date: the end of that day where people read times
            parsed = datetime.combine(parsed.date(), time(23, 59), tzinfo=zone())
        due = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone())
    if due <= start:
        raise BadInput(f"due: {text!r} is not after {start.isoformat()}")
    return due


def may_review(actor: Actor, incident: Incident) -> bool:
    lead = playbooks.get(incident.category).level(incident.level).lead
    return any(actor.holds(r) for r in (lead, *REVIEWERS))


def refuse(incident_id: str, actor: Actor, action: str, message: str, now: datetime) -> None:
    """A refusal is on the timeline (and so in ``incident audit``) before the 403 goes back."""
    with session_scope() as s:
        data = timeline.refusal(message, action=action, roles=list(actor.roles))
        timeline.add(s, incident_id, "action_refused", actor.name, message, data=data, now=now)
    raise Forbidden(message)


def create(
    s: Session, incident: Incident, items: list[ActionIn], by: str, now: datetime, start: datetime
) -> list[ImprovementAction]:
    """Store actions and their deadlines in the caller's transaction (the meeting's, or ``add``'s)."""
    rows = []
    for item in items:
        due = due_time(item.due, start)
        deadline = Deadline(incident_id=incident.id, kind="action", due_at=due, created_at=now)
        s.add(deadline)
        s.flush()
        row = ImprovementAction(
            id=next_id(s, "ACT", now),
            incident_id=incident.id,
            kind=item.kind,
            owner=item.owner,
            due_at=due,
            text=item.text,
            status="open",
            created_at=now,
            created_by=by,
            deadline_id=deadline.id,
        )
        s.add(row)
        detail = f"{row.id} {item.kind} → {item.owner}"
        data = {"action_id": row.id, "action_kind": item.kind, "owner": item.owner}
        timeline.add(s, incident.id, "action_added", by, detail, data=data, now=now)
        rows.append(row)
    s.flush()
    return rows


def add(incident_id: str, body: ActionsIn, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with session_scope() as s:
        incident = s.get(Incident, incident_id, with_for_update=LOCK)
        if incident is None:
            raise NotFound(f"no incident {incident_id}")
        allowed = not actor.person or may_review(actor, incident)
        if allowed:
            by = actor.name if actor.person else (body.by or actor.name)
            rows = create(s, incident, body.actions, by, now, now)
            return {"incident_id": incident_id, "actions": [public(r, now) for r in rows]}
        lead = playbooks.get(incident.category).level(incident.level).lead
    refuse(incident_id, actor, "actions_add", f"{actor.name} may not add improvement actions "
           f"(needs {', '.join((lead, *REVIEWERS))})", now)  # fmt: skip
    raise AssertionError("unreachable")  # refuse raises


def public(row: ImprovementAction, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "incident_id": row.incident_id,
        "kind": row.kind,
        "owner": row.owner,
        "due_at": row.due_at.isoformat(),
        "status": row.status,
        "text": row.text,
        "overdue": row.status == "open" and row.due_at < now,
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
        "closed_by": row.closed_by,
        "evidence": row.evidence,
    }


def rows_of(s: Session, incident_id: str | None) -> list[ImprovementAction]:
    stmt = select(ImprovementAction).order_by(ImprovementAction.due_at, ImprovementAction.id)
    if incident_id is not None:
        stmt = stmt.where(ImprovementAction.incident_id == incident_id)
    return list(s.scalars(stmt))


def listing(incident_id: str | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or utcnow()
    with session_scope() as s:
        if incident_id is not None and s.get(Incident, incident_id) is None:
            raise NotFound(f"no incident {incident_id}")
        return [public(r, now) for r in rows_of(s, incident_id)]


def counts(incident_ids: set[str] | None = None, now: datetime | None = None) -> dict[str, int]:
    """Open, overdue (open and past due; also counted in open) and done, for the metrics."""
    now = now or utcnow()
    with session_scope() as s:
        rows = [r for r in rows_of(s, None) if incident_ids is None or r.incident_id in incident_ids]
    return {
        "open": sum(1 for r in rows if r.status == "open"),
        "overdue": sum(1 for r in rows if r.status == "open" and r.due_at < now),
        "done": sum(1 for r in rows if r.status == "done"),
    }


def close(action_id: str, body: CloseIn, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with session_scope() as s:
        row = s.get(ImprovementAction, action_id, with_for_update=LOCK)
        if row is None:
            raise NotFound(f"no improvement action {action_id}")
        if row.status == "done":
            raise Conflict(f"{action_id} is already done")
        incident = s.get_one(Incident, row.incident_id)
        allowed = actor.person and (actor.name == row.owner or may_review(actor, incident))
        if allowed:
            row.status, row.closed_at, row.closed_by, row.evidence = "done", now, actor.name, body.evidence
            _meet(s, row.deadline_id, now)
            timeline.add(s, row.incident_id, "action_done", actor.name, f"{row.id}: {body.evidence}",
                         data={"action_id": row.id, "on_time": now <= row.due_at}, now=now)  # fmt: skip
            return public(row, now)
        incident_id = row.incident_id
    who = "the service token is not a person and" if not actor.person else actor.name
    refuse(incident_id, actor, "actions_close",
           f"{who} may not close {action_id} (its owner, the lead, quality_control or duty_manager may)",
           now)  # fmt: skip
    raise AssertionError("unreachable")


def _meet(s: Session, deadline_id: int | None, now: datetime) -> None:
    """The action's own deadline row is done: met in time, or a miss that now has its done time."""
    row = s.get(Deadline, deadline_id) if deadline_id is not None else None
    if row is None:
        return
    if row.state in ("pending", "warned"):
        on_time = now <= row.due_at
        row.state = "met" if on_time else "missed"
        row.missed_at = None if on_time else (row.missed_at or now)
    row.met_at = now


def context(s: Session, deadline_id: int) -> dict[str, Any]:
    """What a reminder or an escalation of an action's deadline says about the action."""
    row = s.scalars(select(ImprovementAction).where(ImprovementAction.deadline_id == deadline_id)).first()
    if row is None:
        return {}
    return {"action_id": row.id, "action_owner": row.owner, "action_kind": row.kind, "action_text": row.text}

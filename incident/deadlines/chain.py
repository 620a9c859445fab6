"""Escalation chains: after a missed deadline, each step's roles after its delay, then the last step
again every ``repeat_every``, until someone acknowledges (``incident ack``) or the duty is done.

Why firings are numbered and not timed by the watcher's memory: firing ``k`` is due at a time that
depends only on the deadline's due time and the playbook (``due_of``), and the row stores the next
``k`` and its time. A claim moves the row from ``k`` to the next one in the transaction that records
the step on the timeline, so a restart (or two watchers) neither loses a step nor sends it twice.

After a downtime several steps may be due at once: they are told together, once, to all their roles;
repeats that passed meanwhile are skipped, not sent in a burst (as ``next_progress`` skips intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from incident.incidents import timeline
from models import Deadline, Incident
from playbooks import LevelRules

# Watched, and their chains run, after the incident is closed too: the post-mortem meeting and the
# improvement actions follow the close (incident.meetings, incident.actions); a chain of theirs stops
# when the meeting is recorded or the action closed (met), as ``incident ack`` refuses a closed incident.
AFTER_CLOSE = ("postmortem", "action")


def due_of(rules: LevelRules, due_at: datetime, k: int) -> datetime | None:
    """When firing ``k`` of a chain is due: step ``k``, or past the last step its repeats (or none)."""
    steps = rules.escalation
    if k < len(steps):
        return due_at + steps[k].after
    if rules.repeat_every is None:
        return None
    return due_at + steps[-1].after + (k - len(steps) + 1) * rules.repeat_every


@dataclass(frozen=True)
class Firing:
    """What one sweep sends for one deadline's chain: firings ``first``…``last`` (told together)."""

    first: int
    last: int
    roles: tuple[str, ...]
    step_due: datetime  # when the last of them was due (its latency is measured from here)
    next_k: int
    next_at: datetime | None
    steps_count: int  # firings from here on are repeats of the last step

    @property
    def repeat(self) -> bool:
        return self.last >= self.steps_count


def due_firings(rules: LevelRules, due_at: datetime, k: int, now: datetime) -> Firing | None:
    """The firings of a chain at ``k`` due by ``now``, or None when nothing is due yet."""
    first_due = due_of(rules, due_at, k)
    if first_due is None or first_due > now:
        return None
    steps, start = rules.escalation, k
    roles: list[str] = []
    last_due = first_due
    while k < len(steps) and (at := due_of(rules, due_at, k)) is not None and at <= now:
        roles += steps[k].notify
        last_due, k = at, k + 1
    if k == start:  # only repeats are due: the latest one, the passed ones skipped
        every = rules.repeat_every
        assert every is not None  # due_of returned a time past the last step
        k += int((now - first_due) / every)
        last_due = due_of(rules, due_at, k) or first_due
        roles, k = list(steps[-1].notify), k + 1
    last = k - 1
    next_at = due_of(rules, due_at, k)
    if next_at is not None and next_at <= now and rules.repeat_every is not None:  # repeats passed
        k += int((now - next_at) / rules.repeat_every) + 1
        next_at = due_of(rules, due_at, k)
    return Firing(start, last, tuple(dict.fromkeys(roles)), last_due, k, next_at, len(steps))


def start(rules: LevelRules, due_at: datetime) -> dict[str, object]:
    """The chain columns of a deadline just missed: firing 0 is due ``after`` of the first step."""
    return {"chain_step": 0, "chain_next_at": due_of(rules, due_at, 0)}


def running(session: Session, now: datetime) -> list[tuple[Deadline, Incident]]:
    """Missed deadlines whose chain has a firing due by ``now`` (not done, not acknowledged)."""
    rows = session.execute(
        select(Deadline, Incident)
        .join(Incident, Incident.id == Deadline.incident_id)
        .where(
            Deadline.chain_next_at.is_not(None),
            Deadline.chain_next_at <= now,
            Deadline.state == "missed",
            Deadline.met_at.is_(None),
            or_(Incident.status != "closed", Deadline.kind.in_(AFTER_CLOSE)),
        )
        .order_by(Deadline.chain_next_at)
    ).all()
    return [(d, i) for d, i in rows]


def claim(session: Session, deadline: Deadline, firing: Firing, now: datetime) -> bool:
    """Move the chain on from ``firing.first`` and record the step, or False if another did."""
    claimed = session.execute(
        update(Deadline)
        .where(
            Deadline.id == deadline.id,
            Deadline.chain_step == firing.first,
            Deadline.chain_next_at.is_not(None),
            Deadline.met_at.is_(None),
        )
        .values(chain_step=firing.next_k, chain_next_at=firing.next_at, escalated_at=now)
    ).rowcount
    if claimed != 1:
        return False
    data = {
        "kind": deadline.kind,
        "due_at": deadline.due_at.isoformat(),
        "to": list(firing.roles),
        "step": firing.last,
        "repeat": firing.repeat,
        "step_due": firing.step_due.isoformat(),
        "next_at": firing.next_at.isoformat() if firing.next_at else None,
    }
    detail = ",".join(firing.roles)
    timeline.add(session, deadline.incident_id, "escalated", "watcher", detail, now=now, data=data)
    return True


def stop(session: Session, incident: Incident, by: str, now: datetime) -> list[str]:
    """Acknowledge: every running chain of the incident ends; the kinds whose chain was stopped."""
    rows = session.scalars(
        select(Deadline).where(
            Deadline.incident_id == incident.id,
            Deadline.state == "missed",
            Deadline.met_at.is_(None),
            Deadline.acked_at.is_(None),
        )
    ).all()
    for row in rows:
        row.chain_next_at, row.acked_at, row.acked_by = None, now, by
    return [row.kind for row in rows]

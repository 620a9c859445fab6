"""Deadlines as rows: opened with a due time, then met, missed (escalated once) or cancelled.

Why rows and not sleeps: a row survives any restart, the watcher finds what is due with one query,
and metrics and the console read the same rows.

Kinds and when they open (domain.md §4): ``contact`` at intake (identified + the level's
``contact_within``); ``progress`` at every customer contact until resolved (``progress_every``),
and again after a missed one, so the cadence goes on; ``approval`` at each proposal
(``approval_within``); ``postmortem`` at resolution (``postmortem_due``), met by the post-mortem
meeting (``incident.meetings``); ``action``, one per improvement action, at its own due date
(``incident.actions``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

import playbooks
from incident.incidents import timeline
from models import Deadline, Incident, Solution

ACTIVE = ("pending", "warned")
# The playbook window of each kind that a raised level may shorten (contact: see intake).
WINDOWS = {"progress": "progress_every", "approval": "approval_within", "postmortem": "postmortem_due"}


def active(session: Session, incident: Incident, kind: str) -> Deadline | None:
    stmt = select(Deadline).where(
        Deadline.incident_id == incident.id, Deadline.kind == kind, Deadline.state.in_(ACTIVE)
    )
    return session.scalars(stmt.order_by(Deadline.due_at)).first()


def outstanding(session: Session, incident: Incident, kind: str) -> Deadline | None:
    """The earliest deadline of this kind not done yet, missed ones included (for notices)."""
    stmt = select(Deadline).where(
        Deadline.incident_id == incident.id,
        Deadline.kind == kind,
        Deadline.met_at.is_(None),
        Deadline.state.in_((*ACTIVE, "missed")),
    )
    return session.scalars(stmt.order_by(Deadline.due_at)).first()


def open_one(session: Session, incident: Incident, kind: str, due: datetime, now: datetime) -> Deadline:
    """One active deadline per kind: a new one replaces (cancels) the previous."""
    cancel(session, incident, kind, now)
    row = Deadline(incident_id=incident.id, kind=kind, due_at=due, created_at=now)
    session.add(row)
    return row


def meet(session: Session, incident: Incident, kind: str, now: datetime) -> bool:
    """Mark this kind's deadlines done; True when done in time (or there was none).

    Missed ones still open (escalated by the watcher, not done yet) keep their miss and get the time
    they were finally done; then the answer is "late" even if the next, rolled-on one is met in time.
    """
    late = session.scalars(
        select(Deadline).where(
            Deadline.incident_id == incident.id,
            Deadline.kind == kind,
            Deadline.state == "missed",
            Deadline.met_at.is_(None),
        )
    ).all()
    for missed in late:
        missed.met_at = now
    row = active(session, incident, kind)
    if row is None:
        return not late
    on_time = now <= row.due_at
    row.state, row.met_at = ("met" if on_time else "missed"), now
    if not on_time:
        row.missed_at = row.missed_at or now
        timeline.add(
            session,
            incident.id,
            "deadline_missed",
            "system",
            kind,
            now=now,
            data={"kind": kind, "due_at": row.due_at.isoformat()},
        )
    return on_time and not late


def cancel(session: Session, incident: Incident, kind: str, now: datetime) -> None:
    for row in session.scalars(
        select(Deadline).where(
            Deadline.incident_id == incident.id, Deadline.kind == kind, Deadline.state.in_(ACTIVE)
        )
    ):
        row.state = "cancelled"


def next_progress(
    session: Session, incident: Incident, missed_due: datetime, now: datetime
) -> Deadline | None:
    """After a missed progress update, open the next one a full interval after the missed due time.

    Why: the customer is owed an update every interval until resolved, not just once; each missed
    interval is its own miss. Intervals that passed while nobody watched (service down) are skipped
    rather than escalated in a burst.
    """
    if incident.resolved_at is not None or active(session, incident, "progress") is not None:
        return None
    every: timedelta = playbooks.get(incident.category).level(incident.level).progress_every
    due = missed_due + every
    while due <= now:
        due += every
    row = Deadline(incident_id=incident.id, kind="progress", due_at=due, created_at=now)
    session.add(row)
    return row


def raise_level(session: Session, incident: Incident, now: datetime) -> list[Deadline]:
    """The level went up: every active deadline becomes min(its due time, now + the new window).

    Why "now +" and not "from the start": the new level's promise starts when the level is known;
    a deadline never becomes missed in retrospect, and never gets longer. A shortened deadline is
    pending again, so it is warned about again. A solution still awaiting approval now awaits the
    new level's approver (L1 solutions are approved by the leadership group), who also owns its
    deadline. The contact deadline is intake's (``_set_contact_deadline``).
    """
    rules = playbooks.get(incident.category).level(incident.level)
    changed = []
    for kind, window in WINDOWS.items():
        row = active(session, incident, kind)
        if row is None:
            continue
        due = now + getattr(rules, window)
        if due < row.due_at:
            row.due_at, row.state, row.warned_at = due, "pending", None
            changed.append(row)
    pending = select(Solution).where(Solution.incident_id == incident.id, Solution.status == "pending")
    for solution in session.scalars(pending):
        solution.approver_role = rules.approver
    return changed


def pending_solution(session: Session, incident_id: str) -> Solution | None:
    """The solution an approval deadline is about (its kind and approver go into the notices)."""
    stmt = select(Solution).where(Solution.incident_id == incident_id, Solution.status == "pending")
    return session.scalars(stmt.order_by(Solution.round.desc())).first()

"""Deadlines as rows: opened with a due time, then met, missed (escalated once) or cancelled.

Why rows and not sleeps: a row survives any restart, the watcher finds what is due with one query,
and metrics and the console read the same rows.

Kinds and when they open (domain.md §4): ``contact`` at intake (identified + the level's
``contact_within``); ``progress`` at every customer contact until resolved (``progress_every``),
and again after a missed one, so the cadence goes on; ``approval`` at each proposal
(``approval_within``); ``postmortem`` at resolution (``postmortem_due``), met by the
post-mortem meeting (``incident.meetings``); ``action``, one per improvement action, at its own due
date (``incident.actions``); ``assess`` at intake instead
of ``contact`` when an internal alarm with no customer opens the incident (``assess_within``), met by
``incident ack``. A missed one runs its escalation chain (``chain.py``) until ``acknowledge``.

Every due time is ``due(incident, kind, start, window)``: calendar time, or the category's team
calendar's working hours where the level's ``clock`` says ``business`` (``calendar.py``). A kind the
level's ``pause_while`` names is ``paused`` from a solution's approval until the customer answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

import playbooks
from incident.deadlines import calendar, chain
from incident.errors import Conflict, Forbidden, NotFound
from incident.incidents import timeline
from incident.people.service import Actor
from models import LOCK, Deadline, Incident, Solution, session_scope, utcnow

ACTIVE = ("pending", "warned")
PAUSED = "paused"  # not counting (waiting on the customer): the watcher neither warns nor escalates it
# The playbook window of each kind that a raised level may shorten (contact: see intake).
WINDOWS = {
    "progress": "progress_every",
    "approval": "approval_within",
    "postmortem": "postmortem_due",
    "assess": "assess_within",
}


def _business(category: str) -> calendar.BusinessCalendar:
    """The category's team calendar (re-read each time: the playbooks are cached, this is cheap)."""
    team = playbooks.calendar_for(category)
    return calendar.BusinessCalendar(
        tz=ZoneInfo(team.tz),
        opens=team.hours[0],
        closes=team.hours[1],
        days=frozenset(team.days),
        statutory=team.holidays == "cn",
        closures=frozenset(team.closures),
        workdays=frozenset(team.workdays),
    )


def clock_of(incident: Incident, kind: str) -> str:
    """``calendar`` or ``business``: what a due time shown to a person says it counts."""
    return playbooks.get(incident.category).level(incident.level).clock_of(kind)


def _calendar(incident: Incident, kind: str) -> calendar.BusinessCalendar | None:
    return _business(incident.category) if clock_of(incident, kind) == "business" else None


def due(incident: Incident, kind: str, start: datetime, window: timedelta) -> datetime:
    """The due time of a ``kind`` deadline opened at ``start`` with this window, on the level's clock."""
    return calendar.add(start, window, _calendar(incident, kind))


def pause(session: Session, incident: Incident, reason: str, now: datetime) -> list[str]:
    """Stop the clocks the level's ``pause_while`` names for ``reason``; the kinds paused."""
    rules = playbooks.get(incident.category).level(incident.level)
    paused: list[str] = []
    owed = select(Deadline).where(Deadline.incident_id == incident.id, Deadline.state.in_(ACTIVE))
    for row in session.scalars(owed):  # every customer's own contact too (it counts like ``contact``)
        if rules.pauses(row.kind, reason):
            row.state, row.warned_at = PAUSED, None
            if row.kind not in paused:
                paused.append(row.kind)
    if paused:
        timeline.add(session, incident.id, "deadline_paused", "system", ", ".join(paused), now=now,
                     data={"kinds": paused, "reason": reason})  # fmt: skip
    return paused


def resume(session: Session, incident: Incident, since: datetime, now: datetime) -> list[str]:
    """The customer answered: paused deadlines go on with the time they had left at ``since``.

    Why from ``since`` (the pause's start, e.g. the approval) and no stored remainder: the pause's
    start is already recorded, so the left time is recomputed on the deadline's own clock.
    """
    resumed = []
    for row in session.scalars(
        select(Deadline).where(Deadline.incident_id == incident.id, Deadline.state == PAUSED)
    ):
        cal = _calendar(incident, row.kind)
        row.due_at = calendar.add(now, calendar.between(since, row.due_at, cal), cal)
        row.state = "pending"
        resumed.append(row.kind)
    if resumed:
        timeline.add(session, incident.id, "deadline_resumed", "system", ", ".join(resumed), now=now,
                     data={"kinds": resumed})  # fmt: skip
    return resumed


def _active(incident: Incident, kinds: Iterable[str]) -> Select[tuple[Deadline]]:
    """The incident's active deadlines of these kinds, earliest due first."""
    stmt = select(Deadline).where(
        Deadline.incident_id == incident.id, Deadline.kind.in_(kinds), Deadline.state.in_(ACTIVE)
    )
    return stmt.order_by(Deadline.due_at)


def active(session: Session, incident: Incident, kind: str) -> Deadline | None:
    return session.scalars(_active(incident, (kind,))).first()


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
            Deadline.incident_id == incident.id,
            Deadline.kind == kind,
            Deadline.state.in_((*ACTIVE, PAUSED)),
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
    next_due = due(incident, "progress", missed_due, every)
    while next_due <= now:
        next_due = due(incident, "progress", next_due, every)
    row = Deadline(incident_id=incident.id, kind="progress", due_at=next_due, created_at=now)
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
    earliest: dict[str, Deadline] = {}  # each kind's ``active`` one, in one query
    for row in session.scalars(_active(incident, WINDOWS)):
        earliest.setdefault(row.kind, row)
    for kind, window in WINDOWS.items():
        row = earliest.get(kind)
        if row is None:
            continue
        shorter = due(incident, kind, now, getattr(rules, window))
        if shorter < row.due_at:
            row.due_at, row.state, row.warned_at = shorter, "pending", None
            changed.append(row)
    pending = select(Solution).where(Solution.incident_id == incident.id, Solution.status == "pending")
    for solution in session.scalars(pending):
        solution.approver_role = rules.approver
    return changed


def pending_solution(session: Session, incident_id: str) -> Solution | None:
    """The solution an approval deadline is about (its kind and approver go into the notices)."""
    stmt = select(Solution).where(Solution.incident_id == incident_id, Solution.status == "pending")
    return session.scalars(stmt.order_by(Solution.round.desc())).first()


def ack_roles(incident: Incident) -> list[str]:
    """Who may take an escalation on: the level's responders, everyone its chain tells, the owners
    of its deadlines (customer service, the approver) and the duty manager."""
    rules = playbooks.get(incident.category).level(incident.level)
    chained = [role for step in rules.escalation for role in step.notify]
    return list(dict.fromkeys([*rules.roles, *chained, rules.approver, "customer_service", "duty_manager"]))


def acknowledge(
    incident_id: str, actor: Actor, note: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """``incident ack``: a person takes the incident on; its escalation chains stop, its assessment is met.

    Why a person only: the ack says who is answerable from now on, so the service token (a script)
    may not; a refusal is on the timeline like any other refused act (``action_refused``).
    """
    now = now or utcnow()
    refusal = None
    with session_scope() as s:
        inc = s.get(Incident, incident_id, with_for_update=LOCK)
        if inc is None:
            raise NotFound(f"no incident {incident_id}")
        if inc.status == "closed":
            raise Conflict(f"{incident_id} is closed")
        allowed = ack_roles(inc)
        if not actor.person:
            refusal = (
                "the service token is not a person and may not ack; use a person's token (INCIDENT_TOKEN)"
            )
        elif not any(actor.holds(role) for role in allowed):
            held = ", ".join(actor.roles) or "no role"
            refusal = (
                f"{actor.name} may not ack {incident_id} (needs one of {', '.join(allowed)}; holds {held})"
            )
        if refusal:
            data = timeline.refusal(refusal, action="ack", roles=list(actor.roles))
            timeline.add(s, inc.id, "action_refused", actor.name, refusal, data=data, now=now)
        else:
            halted = chain.stop(s, inc, actor.name, now)  # one kind per row: 120 customers' contacts …
            stopped = list(dict.fromkeys(halted))  # … are one kind here, and ``stopped_count`` 120
            assessing = outstanding(s, inc, "assess") is not None  # missed ones too
            if assessing:
                meet(s, inc, "assess", now)
            if not stopped and not assessing:
                raise Conflict(f"{incident_id}: no escalation runs and no assessment is due; nothing to ack")
            data = {"stopped": stopped, "stopped_count": len(halted), "assessed": assessing, "note": note}
            timeline.add(
                s, inc.id, "acknowledged", actor.name, note or ", ".join(stopped), data=data, now=now
            )
    if refusal:
        raise Forbidden(refusal)
    return {
        "incident_id": incident_id,
        "acknowledged_by": actor.name,
        "stopped": stopped,
        "stopped_count": len(halted),
        "assessed": assessing,
    }

"""Intake: record one feedback, grade it, and open or join its incident — in one transaction.

Why here and not in the flow: the caller (CLI, HTTP 202) gets the ids, level and contact deadline
at once, and the feedback is durable before any flow work starts. Concurrent reports about one
problem meet at the unique ``incidents.open_key`` (and the row lock), not at a Python lock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import playbooks
from incident.deadlines import customers as duties
from incident.deadlines import service as deadlines
from incident.errors import NotFound
from incident.feedback.grading import grade
from incident.feedback.inputs import COPIED, INCIDENT_KINDS, FeedbackIn
from incident.feedback.tally import Tally, tallies_before
from incident.incidents import recurrence, timeline
from models import LOCK, Base, Deadline, Feedback, Incident, TimelineEvent, next_ids, session_scope, utcnow


@dataclass(frozen=True)
class IntakeResult:
    feedback_id: str
    incident_id: str | None
    level: int | None
    category: str | None
    contact_deadline: datetime | None
    opened: bool
    raised_from: int | None
    recurrence_of: str | None = None
    claimed_by: str | None = None  # who runs its flow at once (``record_many(claimant=)``)

    @property
    def urgent_l1(self) -> bool:
        """It opened a level-1 incident or raised one to level 1: the leadership is told at once."""
        return self.level == 1 and (self.opened or self.raised_from is not None)

    def as_json(self) -> dict[str, object]:
        return {
            "feedback_id": self.feedback_id,
            "incident_id": self.incident_id,
            "level": self.level,
            "category": self.category,
            "contact_deadline": self.contact_deadline.isoformat() if self.contact_deadline else None,
            "opened": self.opened,
            "raised_from": self.raised_from,
            "recurrence_of": self.recurrence_of,
        }


def _norm(value: str | None) -> str:
    return re.sub(r"\s+", " ", value or "").strip().lower()


def customer_key(body: FeedbackIn, feedback_id: str) -> str:
    """Who counts as one customer: the contact, else the name, else this report alone."""
    if body.contact:
        contact = body.contact.strip().lower()
        return "c:" + (contact if "@" in contact else re.sub(r"\D", "", contact) or contact)
    if body.customer:
        return "n:" + _norm(body.customer)
    return "f:" + feedback_id


def correlation_key(body: FeedbackIn, feedback_id: str) -> str:
    """The playbook's correlation fields; with none of them given, the report stands alone."""
    assert body.category is not None
    fields = playbooks.get(body.category).correlation
    parts = [f"{name}={_norm(getattr(body, name))}" for name in fields]
    if not any(_norm(getattr(body, name)) for name in fields):
        parts = [f"feedback={feedback_id}"]
    return "|".join([body.category, *parts])


def _lock_or_open(session: Session, first: dict[str, FeedbackIn], now: datetime) -> dict[str, Incident]:
    """Each key's open incident, locked, or a new one opened by the key's first report.

    All in key order, in one statement for those already open: two batches never wait on each other
    in a circle, and a batch costs one round trip here whatever its number of problems. The new ones
    are opened together too (their ids, recurrences and rows: three round trips for a storm's first
    batch, which opens a dozen), one by one only when another writer opened one of them meanwhile.
    """
    keys = sorted(first)
    locked = select(Incident).where(Incident.open_key.in_(keys)).order_by(Incident.open_key)
    incidents = {inc.open_key or "": inc for inc in session.scalars(locked.with_for_update(**LOCK))}
    new = [key for key in keys if key not in incidents]
    if not new:
        return incidents
    ids = next_ids(session, "INC", now, len(new))
    recurring = recurrence.of_keys(session, new)
    opened = {key: _new(first[key], key, i, recurring.get(key), now) for key, i in zip(new, ids, strict=True)}
    try:
        with session.begin_nested():
            session.add_all(opened.values())
    except IntegrityError:  # a concurrent writer opened one of them first (its rollback expunged ours)
        opened = {key: _open(session, _new(first[key], key, i, recurring.get(key), now))
                  for key, i in zip(new, ids, strict=True)}  # fmt: skip
    return incidents | opened


def _new(body: FeedbackIn, key: str, incident_id: str, recurrence_of: str | None, now: datetime) -> Incident:
    return Incident(
        id=incident_id,
        category=body.category,
        level=3,
        status="response",
        correlation_key=key,
        open_key=key,
        summary=body.summary,
        customers=0,
        level_reasons=[],
        identified_at=now,
        recurrence_of=recurrence_of,
    )


def _open(session: Session, incident: Incident) -> Incident:
    """One new incident, or the one a concurrent report opened with its key first: join that one."""
    try:
        with session.begin_nested():
            session.add(incident)
    except IntegrityError:
        locked = select(Incident).where(Incident.open_key == incident.open_key).with_for_update(**LOCK)
        return session.scalars(locked).one()  # (the savepoint's rollback expunged ours)
    return incident


def _contact_window(incident: Incident) -> timedelta:
    return playbooks.get(incident.category).level(incident.level).contact_within


def alarm_only(body: FeedbackIn) -> bool:
    """An internal alarm that names no customer: nobody to contact, someone to acknowledge and assess."""
    return body.kind == "alarm" and not body.customer and not body.contact


def _first_deadline(
    session: Session, incident: Incident, body: FeedbackIn, feedback_id: str,
    dues: dict[str, datetime | None], now: datetime,
) -> None:  # fmt: skip
    """A new incident's first duty: contact the customer, or (an alarm alone) acknowledge and assess it."""
    rules = playbooks.get(incident.category).level(incident.level)
    if alarm_only(body):
        due = deadlines.due(incident, "assess", incident.identified_at, rules.assess_within)
        session.add(Deadline(incident_id=incident.id, kind="assess", due_at=due, created_at=now))
        return
    dues[incident.id] = due = deadlines.due(incident, "contact", incident.identified_at, rules.contact_within)
    session.add(
        Deadline(incident_id=incident.id, kind="contact", subject=feedback_id, due_at=due, created_at=now)
    )


def _set_contact_deadline(session: Session, incident: Incident, feedback_id: str, now: datetime) -> datetime:
    """After a raise: the earlier of the old due time and now + the new level's window (the opening
    customer's contact; each later customer's own is ``customers.shorten``'s)."""
    window = _contact_window(incident)
    pending = session.scalars(
        select(Deadline).where(
            Deadline.incident_id == incident.id,
            Deadline.kind == "contact",
            or_(Deadline.state == "pending", Deadline.state == "warned"),
        )
    ).first()
    if pending is None:
        if incident.first_contact_at is not None:
            return incident.first_contact_at
        missed = session.scalars(
            select(Deadline.due_at).where(Deadline.incident_id == incident.id, Deadline.kind == "contact")
        ).first()
        if missed is not None:  # already missed and escalated once: a raise does not miss it again
            return missed
        due = deadlines.due(incident, "contact", incident.identified_at, window)  # owed to this report's
        session.add(Deadline(incident_id=incident.id, kind="contact", subject=feedback_id,  # customer
                             due_at=due, created_at=now))  # fmt: skip
        return due
    shorter = deadlines.due(incident, "contact", now, window)
    if shorter < pending.due_at:
        pending.due_at = shorter
        pending.state, pending.warned_at = "pending", None  # a new, shorter promise: warn again
    return pending.due_at


def _feedback_row(feedback_id: str, body: FeedbackIn, key: str, now: datetime) -> dict[str, Any]:
    return {
        "id": feedback_id,
        "incident_id": None,
        "kind": body.kind,
        "channel": body.channel,
        "category": body.category,
        "summary": body.summary,
        "customer_name": body.customer,
        "contact": body.contact,
        "customer_key": key,
        "order_no": body.order,
        **{name: getattr(body, name) for name in COPIED},
        "received_at": now,
        "opened_incident": False,
        "raised_from": None,
        "set_level": None,
        "claimed_by": None,
        "claimed_at": None,
        # Suggestions, inquiries and praise open no incident: they wait in the inbox of their group.
        "inbox_status": None if body.kind in INCIDENT_KINDS else "open",
    }


def record(body: FeedbackIn, now: datetime | None = None) -> IntakeResult:
    return record_many([body], now)[0]


def record_many(
    bodies: Sequence[FeedbackIn], now: datetime | None = None, claimant: str | None = None
) -> list[IntakeResult]:
    """Record reports in one transaction, each graded as if recorded alone, in the order given.

    ``claimant``: the process that runs the level-1 reports' flows at once (the API hands them to its
    urgent process); their rows are claimed in its name in this transaction, so that no worker's poll
    takes one between the commit and a second statement (the worker is niced: the notice came late).

    Why batches: in a storm every report about one batch queues on that incident's row lock and
    pays its own commit; one transaction for all that arrived meanwhile costs a few statements in
    all (``incident/accept.py`` gathers them). Incidents are locked in key order, so two
    replicas' batches never deadlock.
    """
    with session_scope() as session:
        # One commit for the batch: a commit waits for the disk (WAL fsync), and that wait was most
        # of an intake's time in a storm. The ids' counter row stays locked until then, so the
        # batches of several replicas take turns.
        return _record(session, bodies, now or utcnow(), claimant)


def record_in(session: Session, bodies: Sequence[FeedbackIn], now: datetime) -> list[IntakeResult]:
    """``record_many`` within the caller's transaction: an integration marks its own row (the late
    waybill that raised this alarm) in the same commit, so an alarm is raised once or not at all."""
    return _record(session, bodies, now)


def warm_up() -> None:
    """Record one report and roll it back, at the start of the service, so that the first reports
    find a connection open and the intake statements compiled. (What still makes the first 0.2 s of
    a storm slower is real work: nearly every report then opens a new incident.)"""
    body = FeedbackIn(category="product_quality", summary="warm-up", product_model="-", batch="warm-up")
    with session_scope() as session:
        _record(session, [body], utcnow())
        session.rollback()


def _record(
    session: Session, bodies: Sequence[FeedbackIn], now: datetime, claimant: str | None = None
) -> list[IntakeResult]:
    ids = next_ids(session, "FB", now, len(bodies))
    pairs = list(zip(bodies, ids, strict=True))
    keys = [correlation_key(b, i) if b.kind in INCIDENT_KINDS else None for b, i in pairs]
    customers = [customer_key(b, i) for b, i in pairs]
    first: dict[str, FeedbackIn] = {}  # the report that opens each key's incident if it is new
    for body, key in zip(bodies, keys, strict=True):
        if key:
            first.setdefault(key, body)
    incidents = _lock_or_open(session, first, now)
    known = {incident.id for incident in incidents.values() if incident.customers}  # not new ones
    tallies = tallies_before(session, known, set(customers))
    tallies.update((incident.id, Tally()) for incident in incidents.values() if not incident.customers)
    rows, events, results, duties_due = [], [], [], []
    # Each incident's contact deadline, kept up to date as the batch goes on. Read after the lock, not
    # with it: a SELECT … FOR UPDATE that waited for another writer sees the locked row anew but the
    # other tables as they were when it began (PostgreSQL's read committed), and a raise or an alarm's
    # first customer changes this deadline under that lock.
    dues: dict[str, datetime | None] = {i: t.contact_due for i, t in tallies.items() if t.contact_due}
    for feedback_id, body, key, customer in zip(ids, bodies, keys, customers, strict=True):
        rows.append(row := _feedback_row(feedback_id, body, customer, now))
        incident = incidents[key] if key else None
        if incident is None:
            results.append(IntakeResult(feedback_id, None, None, body.category, None, False, None))
            continue
        opened = incident.customers == 0
        tally = tallies[incident.id]
        joins = customer not in tally.keys and not alarm_only(body)  # a customer new to the incident
        tally.add(body, customer)
        signals = tally.signals()
        graded = grade(signals, current=None if opened else incident.level)
        raised_from = None if opened or graded.level >= incident.level else incident.level
        incident.customers = signals.customers
        row.update(incident_id=incident.id, opened_incident=opened, raised_from=raised_from)
        by = f"{body.channel}:{feedback_id}"
        if opened or raised_from:
            incident.level, incident.level_reasons = graded.level, graded.reasons
            row.update(set_level=graded.level)
        if opened:
            level = {"level": graded.level}
            events.append(
                timeline.row(incident.id, "identified", by, f"L{graded.level}", data=level, now=now)
            )
            if incident.recurrence_of:
                of = incident.recurrence_of
                events.append(timeline.row(incident.id, "recurrence_found", by, of, data={"of": of}, now=now))
        elif raised_from:
            change = {"from": raised_from, "to": graded.level, "reasons": graded.reasons}
            detail = f"L{raised_from} → L{graded.level}"
            events.append(timeline.row(incident.id, "level_raised", by, detail, data=change, now=now))
        else:
            events.append(timeline.row(incident.id, "feedback_joined", by, now=now))
        if opened:  # nothing to look up: a new incident has no deadlines yet
            _first_deadline(session, incident, body, feedback_id, dues, now)
        elif incident.id not in dues and not alarm_only(body):  # a customer joins an alarm's incident
            window = _contact_window(incident)  # their duty starts now
            dues[incident.id] = due = deadlines.due(incident, "contact", now, window)
            session.add(Deadline(incident_id=incident.id, kind="contact", subject=feedback_id,
                                 due_at=due, created_at=now))  # fmt: skip
        elif joins:  # one more customer of a storm: owed a first contact of their own, from now
            duties_due.append(duties.duty_row(incident, feedback_id, now))
        if raised_from:
            _insert(session, Deadline, duties_due)  # before shorten() below, which counts them
            if incident.id in dues:
                dues[incident.id] = _set_contact_deadline(session, incident, feedback_id, now)
            deadlines.raise_level(session, incident, now)  # progress, approval, post-mortem; approver
            duties.shorten(session, incident, now)
        result = IntakeResult(feedback_id, incident.id, incident.level, incident.category,
                              dues.get(incident.id), opened, raised_from, incident.recurrence_of)  # fmt: skip
        if claimant and result.urgent_l1:
            row.update(claimed_by=claimant, claimed_at=now)
            result = replace(result, claimed_by=claimant)
        results.append(result)
    _insert(session, Deadline, duties_due)
    _insert(session, Feedback, rows)
    _insert(session, TimelineEvent, events)
    return results


def _insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Rows in one statement, and the list emptied (the rest of the batch may add more).

    Every row names the same columns, so a batch is one INSERT. Into the table, not through the ORM's
    bulk insert, which took each row through the mapper first (8 % of the API's samples in a storm,
    py-spy) for rows that are plain dicts already."""
    if rows:
        session.execute(insert(model.__table__), rows)
        rows.clear()


def status(feedback_id: str) -> dict[str, Any]:
    """Where one feedback is: its incident, its flow run (once made) and whether it was handled."""
    with session_scope() as s:
        fb = s.get(Feedback, feedback_id)
        if fb is None:
            raise NotFound(f"no feedback {feedback_id}")
        inc = s.get(Incident, fb.incident_id) if fb.incident_id else None
        return {
            "feedback_id": fb.id,
            "incident_id": fb.incident_id,
            "kind": fb.kind,
            "category": fb.category,
            "received_at": fb.received_at.isoformat(),
            "opened_incident": fb.opened_incident,
            "raised_from": fb.raised_from,
            "flow_run_id": fb.flow_run_id,
            "incident_flow_run_id": inc.flow_run_id if inc else None,
            "handled_at": fb.handled_at.isoformat() if fb.handled_at else None,
        }

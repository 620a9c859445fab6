"""Per-customer duties: in a storm, each affected customer is owed a first contact of their own.

Why rows and not a counter: a customer who joins an incident late is owed a contact within the level's
window *from when they joined*, and the watcher already warns, misses and escalates rows; so each
customer's duty is a deadline row. The opening customer's is the incident's ``contact`` deadline (the
one the flow waits for); every later customer's is a ``customer_contact`` row, on ``contact``'s clock.
Both name the customer in ``subject`` by that customer's first feedback id, which is short, stable and
what the console shows.

Why one chain for many misses: 120 customers missed one after another must not page the director 120
times. The first missed duty of an incident starts the chain; later ones join it silently (they are on
the timeline and in the progress figures, ``contacted 37/120, 5 overdue``, which every notice carries).
When the customer holding the chain is contacted, the chain passes to the next overdue one.

What the figures count: customers, each owed one contact; a report that speaks for many
(``--customers 120``, e.g. a company's buyer) is one customer to contact, so it reads 1/1 while the
incident counts 120 affected for its level.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import playbooks
from incident.deadlines import chain
from incident.deadlines.service import due
from incident.errors import BadInput
from incident.incidents import timeline
from models import Deadline, Feedback, Incident

KIND = "customer_contact"
DUTIES = ("contact", KIND)  # the kinds that are one customer's first contact
ACTIVE = ("pending", "warned")


@dataclass(frozen=True)
class Reached:
    """One customer a contact reached: their duty's subject, and whether it was in time."""

    subject: str | None
    on_time: bool
    first: bool  # the first contact this customer got


def duty_row(incident: Incident, feedback_id: str, now: datetime) -> dict[str, Any]:
    """A new customer joined ``incident`` with report ``feedback_id``: their contact is due from now.

    A row, not an ORM object: intake inserts a storm batch's duties into the table in one statement, as
    it does its feedback rows, without taking each through the ORM's unit of work."""
    window = playbooks.get(incident.category).level(incident.level).contact_within
    return {
        "incident_id": incident.id, "kind": KIND, "subject": feedback_id,
        "due_at": due(incident, "contact", now, window), "created_at": now,
    }  # fmt: skip


def shorten(session: Session, incident: Incident, now: datetime) -> int:
    """A level raise: every customer still waiting is owed the contact by the new level's window too."""
    window = playbooks.get(incident.category).level(incident.level).contact_within
    shorter = due(incident, "contact", now, window)
    # One statement, whatever the number of customers: the raise comes in the middle of a storm's
    # intake, which waits for it (as rows, ~100 customers cost two round trips and 10 ms of Python).
    later = update(Deadline).where(
        Deadline.incident_id == incident.id, Deadline.kind == KIND, Deadline.state.in_(ACTIVE),
        Deadline.due_at > shorter,
    )  # fmt: skip
    return int(session.execute(later.values(due_at=shorter, state="pending", warned_at=None)).rowcount or 0)


def _duties(
    session: Session, incident_id: str, kinds: tuple[str, ...] = DUTIES, states: tuple[str, ...] | None = None
) -> list[Deadline]:
    stmt = select(Deadline).where(Deadline.incident_id == incident_id, Deadline.kind.in_(kinds))
    if states is not None:
        stmt = stmt.where(Deadline.state.in_(states))
    return list(session.scalars(stmt.order_by(Deadline.due_at, Deadline.id)))


def resolve(session: Session, incident: Incident, names: list[str]) -> list[Deadline]:
    """The duties of the customers named (a feedback id of theirs, or their name as reported).

    Unknown or ambiguous names are refused with the candidates, before anything is recorded."""
    duties = {row.subject: row for row in _duties(session, incident.id) if row.subject}
    reports = session.execute(
        select(Feedback.id, Feedback.customer_key, Feedback.customer_name).where(
            Feedback.incident_id == incident.id
        )
    ).all()
    key_of = {fid: key for fid, key, _ in reports}
    subject_of_key = {key_of[s]: s for s in duties if s in key_of}
    found: list[Deadline] = []
    for name in names:
        wanted = name.strip()
        keys = {key for fid, key, who in reports if fid == wanted or (who or "").strip() == wanted}
        subjects = {subject_of_key[k] for k in keys if k in subject_of_key}
        if not subjects:
            raise BadInput(f"customer: {wanted!r} is no customer of {incident.id} (a feedback id or a name)")
        if len(subjects) > 1:
            raise BadInput(f"customer: {wanted!r} names {len(subjects)} customers; give one of "
                           f"{', '.join(sorted(subjects))}")  # fmt: skip
        row = duties[subjects.pop()]
        if row not in found:
            found.append(row)
    return found


def opening(session: Session, incident: Incident) -> list[Deadline]:
    """The duty a contact with no customer named is for: the opening customer's (as before storms)."""
    rows = _duties(session, incident.id, kinds=("contact",))
    return rows[:1]


def reach(session: Session, incident: Incident, rows: list[Deadline], now: datetime) -> list[Reached]:
    """Record that these customers were contacted: each duty met (late ones keep their miss)."""
    reached = []
    for row in rows:
        if row.met_at is not None or row.state == "cancelled":
            reached.append(Reached(row.subject, True, False))
            continue
        on_time = row.state in ACTIVE and now <= row.due_at
        if row.state in ACTIVE and not on_time:  # past due, the watcher has not seen it yet
            row.missed_at = now
            data = {"kind": row.kind, "due_at": row.due_at.isoformat(), "customer": row.subject}
            timeline.add(session, incident.id, "deadline_missed", "system", row.kind, now=now, data=data)
        held = row.escalated_to is not None and row.acked_at is None  # its miss started the chain
        row.state, row.met_at = ("met" if on_time else "missed"), now
        if held:
            _pass_chain(session, incident, row)
        reached.append(Reached(row.subject, on_time, True))
    return reached


def _pass_chain(session: Session, incident: Incident, done: Deadline) -> None:
    """The customer whose miss held the chain is contacted: the next overdue customer takes it over."""
    overdue = [
        row for row in _duties(session, incident.id, states=("missed",))
        if row.met_at is None and row.id != done.id and row.acked_at is None
    ]  # fmt: skip
    if overdue:  # it goes on at the step it had reached, timed from the heir's own due time
        heir = overdue[0]
        rules = playbooks.get(incident.category).level(incident.level)
        heir.chain_step = done.chain_step
        heir.chain_next_at = chain.due_of(rules, heir.due_at, done.chain_step)
        heir.escalated_to, heir.escalated_at = done.escalated_to, done.escalated_at
    done.chain_next_at = None


def chain_held(session: Session, incident_id: str) -> bool:
    """Has a missed duty of this incident, still owed and not acknowledged, started the chain? (Its
    chain may have sent its last step already, in a playbook without repeats: still held, so a later
    customer's miss does not page everyone again from step one.)"""
    stmt = select(func.count(Deadline.id)).where(
        Deadline.incident_id == incident_id,
        Deadline.kind.in_(DUTIES),
        Deadline.state == "missed",
        Deadline.met_at.is_(None),
        Deadline.acked_at.is_(None),
        Deadline.escalated_to.is_not(None),
    )
    return bool(session.scalar(stmt))


def progress(session: Session, incident_id: str, now: datetime) -> dict[str, int]:
    """``contacted 37/120, 5 overdue``: customers reached, customers owed a contact, those overdue."""
    rows = [row for row in _duties(session, incident_id) if row.state != "cancelled"]
    contacted = sum(1 for row in rows if row.met_at is not None)
    overdue = sum(
        1 for row in rows if row.met_at is None and (row.state == "missed" or row.due_at < now)
    )  # fmt: skip
    return {"contacted": contacted, "customers": len(rows), "overdue": overdue}


def states(session: Session, incident_id: str) -> dict[str, str]:
    """Each customer's first report → their first contact: ``contacted``, ``overdue`` or ``pending``."""
    found = {}
    for row in _duties(session, incident_id):
        if row.subject and row.state != "cancelled":
            found[row.subject] = (
                "contacted" if row.met_at is not None else "overdue" if row.state == "missed" else "pending"
            )
    return found


def missed_count(rows: list[Deadline]) -> int:
    """Missed deadlines as people count them: the customers' first contacts are one, however many."""
    missed = [row for row in rows if row.state == "missed"]
    others = sum(1 for row in missed if row.kind not in DUTIES)
    return others + (1 if any(row.kind in DUTIES for row in missed) else 0)


def escalating(rows: list[Deadline]) -> bool:
    """Does any chain of these deadlines run (a customer's contact's too): someone may ``incident ack``."""
    return any(row.chain_next_at is not None and row.acked_at is None for row in rows)

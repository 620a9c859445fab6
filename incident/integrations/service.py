"""The links between outside records and our feedback: claimed once, told what changed.

Why claim before recording: Zendesk delivers a webhook again when it saw no 2xx in time, and two
deliveries may arrive at once. The unique ``(system, external_id)`` insert decides which one records
the feedback; the other answers with what the first recorded. A delivery whose recording fails gives
its claim back, so nothing half-stored stays behind and the vendor's retry records it.

Why ``order_ref``: the feedback is recorded by the intake batcher in a transaction of its own, and the
link is told its feedback after that. If the service dies in between, the link still says "being
recorded"; the feedback carries ``order = <system>:<id>``, so the next delivery (or the sweep's
``repair``) finds it instead of recording the ticket a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from incident.errors import Conflict
from models import Deadline, Feedback, Incident, IntegrationLink, Solution, session_scope, utcnow

CLAIM = timedelta(seconds=60)  # a writer that died frees its link after this
MAX_BACKOFF = timedelta(hours=1)


def order_ref(system: str, external_id: str) -> str:
    """What a linked feedback's ``order`` says: where it came from (and how a lost link is found again)."""
    return f"{system}:{external_id}"


def _recorded_before(s: Session, link: IntegrationLink) -> bool:
    """Fill a link whose feedback was recorded but never written on it (the writer died in between)."""
    found = s.execute(
        select(Feedback.id, Feedback.incident_id)
        .where(Feedback.order_no == order_ref(link.system, link.external_id))
        .order_by(Feedback.received_at)
    ).first()
    if found is not None:
        link.feedback_id, link.incident_id = found
    return found is not None


def claim(system: str, external_id: str, now: datetime | None = None) -> tuple[int, str | None]:
    """(link id, the feedback already recorded for it or None if this delivery must record it).

    Raises Conflict when another delivery of the same record is recording it right now.
    """
    with session_scope() as s:
        row = IntegrationLink(system=system, external_id=external_id, created_at=now or utcnow(), failures=0)
        try:
            with s.begin_nested():
                s.add(row)
            s.flush()
            return row.id, None
        except IntegrityError:
            pass
    with session_scope() as s:
        found = s.scalars(
            select(IntegrationLink).where(
                IntegrationLink.system == system, IntegrationLink.external_id == external_id
            )
        ).one()
        if found.feedback_id is None and found.created_at > (now or utcnow()) - CLAIM:
            raise Conflict(f"{system} {external_id} is being recorded by another delivery; retry")
        if found.feedback_id is None and not _recorded_before(s, found):
            found.created_at = now or utcnow()  # its delivery died before recording: this one records it
        return found.id, found.feedback_id


def known(system: str, external_id: str) -> str | None:
    """The feedback this outside record became, if it was recorded before."""
    with session_scope() as s:
        return s.scalars(
            select(IntegrationLink.feedback_id).where(
                IntegrationLink.system == system, IntegrationLink.external_id == external_id
            )
        ).first()


def repair(system: str, now: datetime) -> int:
    """Links left "being recorded" by a writer that died after its feedback was stored: filled in."""
    with session_scope() as s:
        stale = s.scalars(
            select(IntegrationLink).where(
                IntegrationLink.system == system,
                IntegrationLink.feedback_id.is_(None),
                IntegrationLink.created_at < now - CLAIM,
            )
        ).all()
        return sum(_recorded_before(s, link) for link in stale)


def release(link_id: int) -> None:
    """The recording failed: forget the claim, so that a retry records it."""
    with session_scope() as s:
        s.execute(delete(IntegrationLink).where(IntegrationLink.id == link_id))


def recorded(link_id: int, feedback_id: str, incident_id: str | None) -> None:
    with session_scope() as s:
        link = s.get_one(IntegrationLink, link_id)
        link.feedback_id, link.incident_id = feedback_id, incident_id


@dataclass(frozen=True)
class Pending:
    """What one outside record must be told now (one note)."""

    link_id: int
    external_id: str
    incident_id: str
    level: int
    status: str
    first: bool  # the first note (id, level, contact deadline) rather than a change
    contact_deadline: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    category: str = ""
    solution: str | None = None  # the approved solution's kind (the playbook labels it)
    solution_note: str | None = None
    opened: bool = True  # this record's feedback opened the incident (else it joined one already open)


def take(link_id: int, now: datetime) -> Pending | None:
    """Claim the link for one write-back if it has something to tell and nobody else is telling it."""
    with session_scope() as s:
        claimed = s.execute(
            update(IntegrationLink)
            .where(
                IntegrationLink.id == link_id,
                or_(IntegrationLink.claimed_until.is_(None), IntegrationLink.claimed_until < now),
            )
            .values(claimed_until=now + CLAIM)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
    with session_scope() as s:
        link = s.get_one(IntegrationLink, link_id)
        inc = s.get(Incident, link.incident_id) if link.incident_id else None
        if inc is None or (link.told_status == inc.status and link.told_level == inc.level):
            link.claimed_until = None
            return None
        due = s.scalars(
            select(Deadline.due_at).where(Deadline.incident_id == inc.id, Deadline.kind == "contact")
        ).first()
        approved = s.execute(
            select(Solution.kind, Solution.note)
            .where(Solution.incident_id == inc.id, Solution.status == "approved")
            .order_by(Solution.id.desc())
        ).first()
        opened = s.scalar(select(Feedback.opened_incident).where(Feedback.id == link.feedback_id))
        return Pending(
            link.id, link.external_id, inc.id, inc.level, inc.status, link.told_status is None,
            due, inc.resolved_at, inc.closed_at, inc.category,
            approved[0] if approved else None, approved[1] if approved else None, bool(opened),
        )  # fmt: skip


def told(pending: Pending, ok: bool, now: datetime) -> None:
    """Record the outcome and free the link; a failure is tried again later, backing off."""
    with session_scope() as s:
        link = s.get_one(IntegrationLink, pending.link_id)
        link.claimed_until = None
        if ok:
            link.told_status, link.told_level, link.failures, link.retry_at = (
                pending.status, pending.level, 0, None,
            )  # fmt: skip
        else:
            link.failures += 1
            link.retry_at = now + min(timedelta(minutes=2**link.failures), MAX_BACKOFF)


def due_links(system: str, now: datetime, limit: int = 100) -> list[int]:
    """Links of this system whose incident changed since the last note (or never told), not backing off."""
    with session_scope() as s:
        query = (
            select(IntegrationLink.id)
            .join(Incident, Incident.id == IntegrationLink.incident_id)
            .where(
                IntegrationLink.system == system,
                or_(IntegrationLink.retry_at.is_(None), IntegrationLink.retry_at <= now),
                or_(
                    IntegrationLink.told_status.is_(None),
                    IntegrationLink.told_status != Incident.status,
                    IntegrationLink.told_level != Incident.level,
                ),
            )
            .order_by(IntegrationLink.id)
            .limit(limit)
        )
        return list(s.scalars(query))

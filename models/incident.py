"""The incident, its timeline and its deadlines.

``open_key`` holds the correlation key while the incident is open and NULL once it is closed: a
plain unique constraint on it is what stops two concurrent reports opening two incidents for one
problem, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base

KEY_LENGTH = 1000  # correlation and customer keys, built from several API fields
BY_LENGTH = 240  # who: a name of up to 200 characters, plus " (role)" on decisions (32)


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    level: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), index=True)
    # Up to 833 characters: a category and two correlation fields of 200 characters each, which
    # lower-casing may double ("İ" → "i̇"); at most ~1,700 bytes, inside PostgreSQL's index row limit.
    correlation_key: Mapped[str] = mapped_column(String(KEY_LENGTH), index=True)
    open_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH), unique=True)
    summary: Mapped[str] = mapped_column(Text)
    customers: Mapped[int] = mapped_column(default=1)
    # grading's codes ({"code": "media"}); rows of older versions hold English strings (both are read)
    level_reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    identified_at: Mapped[datetime]
    first_contact_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    flow_run_id: Mapped[str | None] = mapped_column(String(40))
    solution_round: Mapped[int] = mapped_column(default=1)
    follow_up_round: Mapped[int] = mapped_column(default=1)
    # The closed incident this one repeats (same problem key at intake, or same root cause): set once.
    recurrence_of: Mapped[str | None] = mapped_column(String(32))
    # Who on the team answers for it now (``incident assign``); a name as the team writes it.
    owner: Mapped[str | None] = mapped_column(String(200), index=True)

    timeline: Mapped[list[TimelineEvent]] = relationship(
        back_populates="incident", order_by="TimelineEvent.id", cascade="all, delete-orphan"
    )
    deadlines: Mapped[list[Deadline]] = relationship(
        back_populates="incident", order_by="Deadline.due_at", cascade="all, delete-orphan"
    )


class TimelineEvent(Base):
    __tablename__ = "timeline"
    __table_args__ = (
        Index("ix_timeline_incident", "incident_id", "event"),
        Index("ix_timeline_event_at", "event", "at"),  # the audit reads the acts by time
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"))
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(BY_LENGTH))
    detail: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Where a person's act came from (cli, api, console, prefect) and the client's address, for the
    # audit (incident/people/via.py); NULL for what the service did itself. Not shown with the timeline.
    channel: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))

    incident: Mapped[Incident] = relationship(back_populates="timeline")


class Deadline(Base):
    """A promise with a due time: first contact, approval, progress update, post-mortem.

    state: pending → warned → met | missed. A missed one runs its level's escalation chain: firing
    ``chain_step`` (0, 1, … past the last step: its repeats) is due at ``chain_next_at``; NULL when
    the chain has ended (acknowledged, done, or no repeat). Both are updated in the transaction that
    records the step, so a restart neither loses nor repeats one.
    """

    __tablename__ = "deadlines"
    __table_args__ = (
        Index("ix_deadlines_state_due", "state", "due_at"),
        Index("ix_deadlines_chain_next", "chain_next_at"),
        Index("ix_deadlines_incident_subject", "incident_id", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"))
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime]
    warned_at: Mapped[datetime | None]
    met_at: Mapped[datetime | None]
    missed_at: Mapped[datetime | None]
    escalated_to: Mapped[str | None] = mapped_column(String(200))
    chain_step: Mapped[int] = mapped_column(default=0, server_default="0")
    chain_next_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]  # when the last step went out
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(BY_LENGTH))
    # A first-contact duty (kinds ``contact`` and ``customer_contact``): the customer it is owed to,
    # named by that customer's first feedback id (incident/deadlines/customers.py).
    subject: Mapped[str | None] = mapped_column(String(32))

    incident: Mapped[Incident] = relationship(back_populates="deadlines")


class FlowMark(Base):
    """A side effect of the incident flow that is done (a notice sent, a stage entered).

    Why: a suspended flow run re-runs from the top when resumed; the unique row makes every
    side effect happen once however often the code path is replayed.
    """

    __tablename__ = "flow_marks"
    __table_args__ = (UniqueConstraint("incident_id", "mark"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"))
    mark: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime]

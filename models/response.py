"""What people did for an incident: contact, measure, cause, solution + approval, confirmation, survey."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    first: Mapped[bool]  # the incident's first contact (what its run waits for)
    on_time: Mapped[bool]
    # One row per act (a call to 37 customers is one row). ``progress_update``: it was a progress update
    # to the customers (the cadence counts from it); a contact reaching only customers not contacted
    # before is their first contact and no update (incident/response/service.py ``contact``).
    progress_update: Mapped[bool] = mapped_column(default=False, server_default=false())
    customers: Mapped[list[str] | None] = mapped_column(JSON)  # the customers named (first report ids)
    message: Mapped[str | None] = mapped_column(Text)  # an update's text for the customers (``--update``)


class Measure(Base):
    __tablename__ = "measures"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class CauseAnalysis(Base):
    __tablename__ = "cause_analyses"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    owner_group: Mapped[str] = mapped_column(String(32))
    root: Mapped[str] = mapped_column(Text)
    direct: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(16))


class Solution(Base):
    """A proposed solution; status pending → approved | rejected. One row per proposal round."""

    __tablename__ = "solutions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    round: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    proposed_at: Mapped[datetime]
    proposed_by: Mapped[str] = mapped_column(String(200))
    approver_role: Mapped[str] = mapped_column(String(32))
    legal_reviewed: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_role: Mapped[str | None] = mapped_column(String(32))
    deputy_of: Mapped[str | None] = mapped_column(String(200))  # decided as 代理 of this person
    reason: Mapped[str | None] = mapped_column(Text)


class Confirmation(Base):
    """One per solution round: an unsatisfied customer opens the next round, never a second row."""

    __tablename__ = "confirmations"
    __table_args__ = (Index("uq_confirmations_round", "incident_id", "round", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    round: Mapped[int]
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    result: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class Survey(Base):
    """One per follow-up round: a survey closes its round (below target opens the next)."""

    __tablename__ = "surveys"
    __table_args__ = (Index("uq_surveys_round", "incident_id", "round", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    round: Mapped[int]
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    speed: Mapped[int]
    result: Mapped[int]
    attitude: Mapped[int]
    suggestion: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float]


class Meeting(Base):
    """The post-mortem meeting (one per incident) and the level lead's sign-off of the final report.

    Why its own row and not timeline text: the post-mortem reads who met and what they found as data
    (participants with the directory's roles, findings, what went well and badly, decisions), and
    "draft → met → signed" is read from ``at`` and ``signed_at``.
    """

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), unique=True)
    at: Mapped[datetime]  # when the meeting was held
    recorded_at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    findings: Mapped[list[str]] = mapped_column(JSON, default=list)
    went_well: Mapped[list[str]] = mapped_column(JSON, default=list)
    went_badly: Mapped[list[str]] = mapped_column(JSON, default=list)
    decisions: Mapped[list[str]] = mapped_column(JSON, default=list)
    signed_at: Mapped[datetime | None]
    signed_by: Mapped[str | None] = mapped_column(String(200))
    signed_role: Mapped[str | None] = mapped_column(String(32))


class ImprovementAction(Base):
    """One improvement point as work: an owner, a due date, a kind, open until closed with evidence.

    ``deadline_id`` is the action's row in ``deadlines`` (kind ``action``): the deadline watcher
    reminds and escalates it like any other promise.
    """

    __tablename__ = "improvement_actions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="open")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(200))
    evidence: Mapped[str | None] = mapped_column(Text)
    deadline_id: Mapped[int | None] = mapped_column(ForeignKey("deadlines.id"))

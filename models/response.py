"""What people did for an incident: contact, measure, cause, solution + approval, confirmation, survey."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    first: Mapped[bool]
    on_time: Mapped[bool]


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

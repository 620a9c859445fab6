"""The seven archived records of an incident (domain.md §7), rendered and kept as text."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

RECORD_KINDS = (
    "level_determination",
    "customer_issue",
    "cause_analysis",
    "solution_approval",
    "resolution_confirmation",
    "postmortem",
    "improvement_measures",
)


class Record(Base):
    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("incident_id", "kind", "lang", "format"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str] = mapped_column(String(4))
    format: Mapped[str] = mapped_column(String(8))
    content: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]

"""The delivery log: one row per notice per role per channel, with its attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    notice: Mapped[str] = mapped_column(String(48))
    role: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(500))  # secrets redacted
    status: Mapped[str] = mapped_column(String(16))  # sent | failed | no_recipient
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

"""The delivery log: one row per notice per role per channel, with its attempts; and the progress
updates owed to customers, waiting to be sent (the rows are the queue, as feedback's are)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
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


class CustomerUpdate(Base):
    """One customer's copy of a progress update, owed until the worker sends it (then logged as a
    ``Delivery`` of notice ``customer_update``, its address masked).

    state: pending → sending (claimed at ``claimed_at`` by one worker) → done. The address is not
    copied here: it is read from the customer's report (``feedback_id``) when sent.
    """

    __tablename__ = "customer_updates"
    __table_args__ = (Index("ix_customer_updates_state", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))  # whose ``message`` it carries
    feedback_id: Mapped[str] = mapped_column(ForeignKey("feedback.id"))  # the report whose contact it uses
    via: Mapped[str] = mapped_column(String(8))  # email | sms
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]

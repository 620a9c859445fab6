"""One customer's message (or an internal alarm), exactly as it arrived."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.incident import KEY_LENGTH


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_incident", "incident_id"),
        Index("ix_feedback_handled_at", "handled_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.id"))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    customer_name: Mapped[str | None] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(200))  # internal only, never printed raw
    customer_key: Mapped[str] = mapped_column(String(KEY_LENGTH))  # who counts as one distinct customer
    order_no: Mapped[str | None] = mapped_column(String(100))
    purchase_date: Mapped[str | None] = mapped_column(String(32))
    product_model: Mapped[str | None] = mapped_column(String(200))
    serial: Mapped[str | None] = mapped_column(String(200))
    batch: Mapped[str | None] = mapped_column(String(200))
    service: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(200))
    cause: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[str | None] = mapped_column(String(64))
    impact: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    mood: Mapped[str | None] = mapped_column(String(16))
    customers: Mapped[int] = mapped_column(default=1)  # customers this one report speaks for
    media: Mapped[bool] = mapped_column(default=False)
    injury: Mapped[bool] = mapped_column(default=False)
    property_loss: Mapped[bool] = mapped_column(default=False)
    brand_risk: Mapped[bool] = mapped_column(default=False)
    outage: Mapped[str | None] = mapped_column(String(16))
    big_loss: Mapped[bool] = mapped_column(default=False)
    compensation_demand: Mapped[bool] = mapped_column(default=False)
    # The customer agreed at intake to receive progress updates (incident/response/updates.py).
    consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    received_at: Mapped[datetime]
    opened_incident: Mapped[bool] = mapped_column(default=False)  # this report opened it
    raised_from: Mapped[int | None]  # the level before this report raised it
    # The level this report opened its incident at or raised it to (None: it did neither). The worker's
    # burst hold reads it: a storm's opening at L3, once the incident is L1, is no level-1 event.
    set_level: Mapped[int | None]
    flow_run_id: Mapped[str | None] = mapped_column(String(40))
    handled_at: Mapped[datetime | None]
    # The worker whose handle_feedback run has it (flows/queue.py): the database is the queue.
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    claimed_at: Mapped[datetime | None]
    # The inbox (feedback that opens no incident): open → answered | closed | promoted. ``routed_at``
    # is set by the one claim that sends the owning group its notice, so a replayed run never sends two.
    inbox_status: Mapped[str | None] = mapped_column(String(16), index=True)
    routed_to: Mapped[str | None] = mapped_column(String(32))
    routed_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(240))
    answered_at: Mapped[datetime | None]
    promoted_to: Mapped[str | None] = mapped_column(String(32))  # the feedback it became

"""What the connected systems told us, kept so that a webhook delivered twice acts once.

Why a link table: Zendesk retries a webhook it saw no 2xx for, and a ticket's update arrives as a
new webhook about the same ticket; the unique ``(system, external_id)`` is where two deliveries of
one ticket meet (the second insert fails), so one ticket is one feedback. The write-back state
(``told_*``) lives on the same row: the sweep finds what the ticket has not been told yet. A media
item of the public-opinion monitor is linked the same way (system ``baidu``): recorded once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class IntegrationLink(Base):
    """One outside record (a Zendesk ticket …) and the feedback it became."""

    __tablename__ = "integration_links"
    __table_args__ = (UniqueConstraint("system", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    feedback_id: Mapped[str | None] = mapped_column(String(32))  # NULL while the first delivery records it
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    created_at: Mapped[datetime]
    told_status: Mapped[str | None] = mapped_column(String(16))  # what the ticket was last told
    told_level: Mapped[int | None]
    failures: Mapped[int] = mapped_column(default=0)  # write-backs failed in a row
    retry_at: Mapped[datetime | None]  # no write-back attempt before this (backoff after a failure)
    claimed_until: Mapped[datetime | None]  # one writer at a time (intake's first try, the sweeps)


class Waybill(Base):
    """One waybill (SF Express pushes its scans; JD's are polled once registered); a late one raises one
    alarm."""

    __tablename__ = "waybills"

    waybill_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(16), default="sf")
    order_no: Mapped[str | None] = mapped_column(String(100))
    first_scan_at: Mapped[datetime]
    promised_at: Mapped[datetime]
    last_op_code: Mapped[str | None] = mapped_column(String(16))
    last_remark: Mapped[str | None] = mapped_column(Text)
    last_address: Mapped[str | None] = mapped_column(String(200))  # where the last scan was (its city)
    delivered_at: Mapped[datetime | None]
    alarm_feedback_id: Mapped[str | None] = mapped_column(String(32))
    polled_at: Mapped[datetime | None]  # the carrier's track last asked (carriers that are polled: JD)


class OpinionTask(Base):
    """The public-opinion monitor's keyword task for one open incident (its product model and batch).

    Why a row per incident: the task is created at the monitor when the incident has something to
    watch, read on a schedule, and deleted there once the incident closes; the row is where two
    workers meet (its primary key) so one task is created, and where the schedule lives.
    """

    __tablename__ = "opinion_tasks"

    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    task_id: Mapped[str | None] = mapped_column(String(64))  # the monitor's; NULL while being created
    keywords: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime]
    polled_at: Mapped[datetime | None]  # the last read of its results: the next one reads from here
    next_poll_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(default=0)

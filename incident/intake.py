"""Intake: record one feedback, grade it, and open or join its incident — in one transaction.

Why here and not in the flow: the caller (CLI, HTTP 202) gets the ids, level and contact deadline
at once, and the feedback is durable before any flow work starts. Concurrent reports about one
problem meet at the unique ``incidents.open_key`` (and the row lock), not at a Python lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import playbooks
from incident import deadlines, timeline
from incident.grading import Signals, grade
from models import Deadline, Feedback, Incident, next_id, session_scope, utcnow

MAX_TEXT = 10_000  # characters of any free-text field; larger bodies are refused (422)
INCIDENT_KINDS = ("complaint", "alarm")


class FeedbackIn(BaseModel):
    """One feedback as the CLI and ``POST /api/feedback`` take it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: Literal["product_quality", "service_failure", "special_scenario"] | None = None
    summary: str = Field(min_length=1, max_length=MAX_TEXT)
    kind: Literal["complaint", "suggestion", "inquiry", "praise", "alarm"] = "complaint"
    channel: Literal["phone", "app", "web", "email", "social", "store", "internal"] = "phone"
    customer: str | None = Field(None, max_length=200)
    contact: str | None = Field(None, max_length=200)
    order: str | None = Field(None, max_length=100)
    purchase_date: str | None = Field(None, max_length=32)
    product_model: str | None = Field(None, max_length=200)
    serial: str | None = Field(None, max_length=200)
    batch: str | None = Field(None, max_length=200)
    service: str | None = Field(None, max_length=200, description="the failing service")
    region: str | None = Field(None, max_length=200)
    cause: str | None = Field(None, max_length=200, description="the outside cause")
    occurred_at: str | None = Field(None, max_length=64)
    impact: str | None = Field(None, max_length=MAX_TEXT)
    evidence: str | None = Field(None, max_length=MAX_TEXT)
    mood: Literal["agitated", "calm", "anxious"] | None = None
    customers: int = Field(1, ge=1, le=10_000_000, description="customers this report speaks for")
    media: bool = False
    injury: bool = False
    property_loss: bool = False
    brand_risk: bool = False
    outage: Literal["regional"] | None = None
    big_loss: bool = False
    compensation_demand: bool = False

    @field_validator("summary")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("summary must not be empty")
        return value

    @model_validator(mode="after")
    def _category_for_incidents(self) -> FeedbackIn:
        if self.kind in INCIDENT_KINDS and self.category is None:
            raise ValueError(f"a {self.kind} needs a category")
        return self


@dataclass(frozen=True)
class IntakeResult:
    feedback_id: str
    incident_id: str | None
    level: int | None
    category: str | None
    contact_deadline: datetime | None
    opened: bool
    raised_from: int | None

    def as_json(self) -> dict[str, object]:
        return {
            "feedback_id": self.feedback_id,
            "incident_id": self.incident_id,
            "level": self.level,
            "category": self.category,
            "contact_deadline": self.contact_deadline.isoformat() if self.contact_deadline else None,
            "opened": self.opened,
            "raised_from": self.raised_from,
        }


def _norm(value: str | None) -> str:
    return re.sub(r"\s+", " ", value or "").strip().lower()


def customer_key(body: FeedbackIn, feedback_id: str) -> str:
    """Who counts as one customer: the contact, else the name, else this report alone."""
    if body.contact:
        contact = body.contact.strip().lower()
        return "c:" + (contact if "@" in contact else re.sub(r"\D", "", contact) or contact)
    if body.customer:
        return "n:" + _norm(body.customer)
    return "f:" + feedback_id


def correlation_key(body: FeedbackIn, feedback_id: str) -> str:
    """The playbook's correlation fields; with none of them given, the report stands alone."""
    assert body.category is not None
    fields = playbooks.get(body.category).correlation
    parts = [f"{name}={_norm(getattr(body, name))}" for name in fields]
    if not any(_norm(getattr(body, name)) for name in fields):
        parts = [f"feedback={feedback_id}"]
    return "|".join([body.category, *parts])


def _signals(session: Session, incident_id: str) -> Signals:
    fb = Feedback
    flags = (fb.media, fb.injury, fb.property_loss, fb.brand_risk, fb.big_loss, fb.compensation_demand)
    row = session.execute(
        select(
            func.count(func.distinct(fb.customer_key)),
            func.max(fb.customers),
            *(func.max(case((flag, 1), else_=0)) for flag in flags[:4]),
            func.count(fb.outage),
            *(func.max(case((flag, 1), else_=0)) for flag in flags[4:]),
        ).where(fb.incident_id == incident_id)
    ).one()
    distinct, reported, media, injury, loss, brand, outages, big, comp = row
    return Signals(
        customers=max(distinct or 1, reported or 1),
        media=bool(media),
        injury=bool(injury),
        property_loss=bool(loss),
        brand_risk=bool(brand),
        regional_outage=bool(outages),
        big_loss=bool(big),
        compensation_demand=bool(comp),
    )


def _open_or_lock(session: Session, body: FeedbackIn, key: str, now: datetime) -> Incident:
    locked = select(Incident).where(Incident.open_key == key).with_for_update()
    incident = session.scalars(locked).first()
    if incident is not None:
        return incident
    incident = Incident(
        id=next_id(session, "INC", now),
        category=body.category,
        level=3,
        status="response",
        correlation_key=key,
        open_key=key,
        summary=body.summary,
        customers=0,
        level_reasons=[],
        identified_at=now,
    )
    try:
        with session.begin_nested():
            session.add(incident)
    except IntegrityError:  # a concurrent report opened it first: join that one
        return session.scalars(locked).one()  # (the savepoint's rollback expunged ours)
    return incident


def _set_contact_deadline(session: Session, incident: Incident, now: datetime) -> datetime:
    """Open: identified + window. Raised: the earlier of the old due time and now + new window."""
    window = playbooks.get(incident.category).level(incident.level).contact_within
    pending = session.scalars(
        select(Deadline).where(
            Deadline.incident_id == incident.id,
            Deadline.kind == "contact",
            or_(Deadline.state == "pending", Deadline.state == "warned"),
        )
    ).first()
    if pending is None:
        if incident.first_contact_at is not None:
            return incident.first_contact_at
        missed = session.scalars(
            select(Deadline.due_at).where(Deadline.incident_id == incident.id, Deadline.kind == "contact")
        ).first()
        if missed is not None:  # already missed and escalated once: a raise does not miss it again
            return missed
        due = incident.identified_at + window
        session.add(Deadline(incident_id=incident.id, kind="contact", due_at=due, created_at=now))
        return due
    if now + window < pending.due_at:
        pending.due_at = now + window
        pending.state, pending.warned_at = "pending", None  # a new, shorter promise: warn again
    return pending.due_at


def record(body: FeedbackIn, now: datetime | None = None) -> IntakeResult:
    now = now or utcnow()
    # The id in a transaction of its own: the counter row is locked only for that one statement, not
    # for the whole intake (which would serialise every report). A failed intake leaves a gap.
    with session_scope() as session:
        feedback_id = next_id(session, "FB", now)
    with session_scope() as session:
        incident: Incident | None = None
        if body.kind in INCIDENT_KINDS:
            incident = _open_or_lock(session, body, correlation_key(body, feedback_id), now)
        opened = incident is not None and incident.customers == 0
        session.add(  # held: the identity map keeps only weak references (get_one re-SELECTs)
            feedback := Feedback(
                id=feedback_id,
                incident_id=incident.id if incident else None,
                kind=body.kind,
                channel=body.channel,
                category=body.category,
                summary=body.summary,
                customer_name=body.customer,
                contact=body.contact,
                customer_key=customer_key(body, feedback_id),
                order_no=body.order,
                purchase_date=body.purchase_date,
                product_model=body.product_model,
                serial=body.serial,
                batch=body.batch,
                service=body.service,
                region=body.region,
                cause=body.cause,
                occurred_at=body.occurred_at,
                impact=body.impact,
                evidence=body.evidence,
                mood=body.mood,
                customers=body.customers,
                media=body.media,
                injury=body.injury,
                property_loss=body.property_loss,
                brand_risk=body.brand_risk,
                outage=body.outage,
                big_loss=body.big_loss,
                compensation_demand=body.compensation_demand,
                received_at=now,
                opened_incident=opened,
            )
        )
        if incident is None:
            return IntakeResult(feedback_id, None, None, body.category, None, False, None)
        session.flush()
        signals = _signals(session, incident.id)
        result = grade(signals, current=None if opened else incident.level)
        raised_from = None if opened or result.level >= incident.level else incident.level
        incident.customers = signals.customers
        by = f"{body.channel}:{feedback_id}"
        if opened:
            incident.level, incident.level_reasons = result.level, result.reasons
            timeline.add(session, incident.id, "identified", by, f"L{result.level}", now=now)
        elif raised_from:
            incident.level, incident.level_reasons = result.level, result.reasons
            timeline.add(
                session,
                incident.id,
                "level_raised",
                by,
                f"L{raised_from} → L{result.level}",
                data={"from": raised_from, "to": result.level, "reasons": result.reasons},
                now=now,
            )
        else:
            timeline.add(session, incident.id, "feedback_joined", by, None, now=now)
        if raised_from:
            feedback.raised_from = raised_from
        due = _set_contact_deadline(session, incident, now) if opened or raised_from else None
        if raised_from:
            deadlines.raise_level(session, incident, now)  # progress, approval, post-mortem; approver
        if due is None:
            due = session.scalars(
                select(Deadline.due_at).where(Deadline.incident_id == incident.id, Deadline.kind == "contact")
            ).first()
        return IntakeResult(
            feedback_id, incident.id, incident.level, incident.category, due, opened, raised_from
        )

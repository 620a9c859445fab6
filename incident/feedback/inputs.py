"""What a feedback is as it comes in: the one input model the CLI, ``POST /api/feedback``, the console's
report form and every integration (Zendesk, Freshdesk, alarms, logistics, public opinion) fill.

Why a module of its own: those edges need the model and its limits (``MAX_TEXT``) without the intake's
database work (incident/feedback/service.py) and what that imports.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from incident.inputs import Input

MAX_TEXT = 10_000  # characters of any free-text field; larger bodies are refused (422)
INCIDENT_KINDS = ("complaint", "alarm")
# Fields stored under the name the report gives them.
COPIED = (
    *("purchase_date", "product_model", "serial", "batch", "service", "region", "cause", "occurred_at"),
    *("impact", "evidence", "mood", "customers", "media", "injury", "property_loss", "brand_risk"),
    *("outage", "big_loss", "compensation_demand", "consent"),
)


class FeedbackIn(Input):
    """One feedback as the CLI and ``POST /api/feedback`` take it."""

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
    consent: bool = Field(False, description="the customer agrees to receive progress updates")

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

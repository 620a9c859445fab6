"""What people send at each human step: the bodies the CLI, the API, the console and Prefect's Resume form
validate with, so all four refuse the same things with the same words."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from incident.feedback.inputs import MAX_TEXT
from incident.inputs import Input

Name = Field(min_length=1, max_length=200)
Note = Field(None, max_length=MAX_TEXT)
UPDATE_TEXT = 1000  # an update reaches customers by e-mail or SMS: a message, not a document


class Answer(Input):
    """One person's answer at a waiting point (the CLI, the API and the console send these)."""


class ContactIn(Answer):
    by: str = Name
    note: str | None = Note
    # The customers reached, each by a feedback id of theirs or their name; none: the opening customer.
    customers: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=1000
    )
    # A progress update's text for the customers (named, else all): sent to those who consented at
    # intake through the channel they came from (incident/response/updates.py); the rest hear it from
    # a person. It makes the contact a progress update.
    update: str | None = Field(None, min_length=1, max_length=UPDATE_TEXT)


class MeasureIn(Answer):
    kind: str = Field(min_length=1, max_length=32)
    by: str = Field("on-call", min_length=1, max_length=200)
    note: str | None = Note


class CauseIn(Answer):
    root: str = Field(min_length=1, max_length=MAX_TEXT)
    direct: str = Field(min_length=1, max_length=MAX_TEXT)
    stage: Literal["production", "service", "logistics", "system", "external"]
    by: str = Field("on-call", min_length=1, max_length=200)


class ProposeIn(Answer):
    solution: str = Field(min_length=1, max_length=32)
    by: str = Field("on-call", min_length=1, max_length=200)
    note: str | None = Note
    legal_reviewed: bool = False


class ApproveIn(Answer):
    """``by`` and ``role`` may be left out with a person's token: the directory says who and in which role."""

    by: str | None = Field(None, min_length=1, max_length=200)
    role: str | None = Field(None, min_length=1, max_length=32)
    reject: bool = False
    reason: str | None = Note
    legal_reviewed: bool = False


class Approval(ApproveIn):
    """An approval as ``authority.check`` decided it: ``deputy_of`` is set there, never by a caller (the
    API's body is ``ApproveIn``, which refuses the field)."""

    deputy_of: str | None = None


class ConfirmIn(Answer):
    result: Literal["satisfied", "neutral", "unsatisfied"]
    by: str = Field("customer", min_length=1, max_length=200)
    note: str | None = Note


class SurveyIn(Answer):
    speed: int = Field(ge=1, le=5)
    result: int = Field(ge=1, le=5)
    attitude: int = Field(ge=1, le=5)
    suggestion: str | None = Note
    by: str = Field("customer_service", min_length=1, max_length=200)

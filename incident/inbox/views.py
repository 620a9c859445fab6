"""HTTP routes of the inbox: list, answer, close, promote (the console's forms call the same functions).

Why promote goes through the intake: a promoted suggestion becomes a complaint recorded exactly as
``POST /api/feedback`` records one (graded, correlated, its run started), so an incident opened from the
inbox is no different from one reported directly.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, ValidationError

from incident.api.credentials import actor_name
from incident.api.schemas import JSON_ROUTE, InboxItem, InboxList
from incident.errors import BadInput
from incident.inbox import service
from incident.inputs import Input

router = APIRouter()
Category = Literal["product_quality", "service_failure", "special_scenario"]


class AnswerIn(Input):
    text: str = Field(min_length=1, max_length=10_000)
    by: str | None = Field(None, max_length=200)
    close: bool = False


class InboxCloseIn(Input):
    by: str | None = Field(None, max_length=200)


class PromoteIn(Input):
    category: Category | None = None
    by: str | None = Field(None, max_length=200)


@router.get("/api/inbox", response_model=InboxList, **JSON_ROUTE)
async def inbox(
    status: Literal["open", "answered", "closed", "promoted"] | None = None, group: str | None = None
) -> dict[str, Any]:
    return {"feedback": await run_in_threadpool(service.list_inbox, status, group)}


@router.get("/api/inbox/{feedback_id}", response_model=InboxItem, **JSON_ROUTE)
async def inbox_item(feedback_id: str) -> dict[str, Any]:
    return await run_in_threadpool(service.get, feedback_id)


@router.post("/api/inbox/{feedback_id}/answer", response_model=InboxItem, **JSON_ROUTE)
async def answer(request: Request, feedback_id: str, body: AnswerIn) -> dict[str, Any]:
    by = actor_name(request, body.by)
    return await run_in_threadpool(service.answer, feedback_id, body.text, by, body.close)


@router.post("/api/inbox/{feedback_id}/close", response_model=InboxItem, **JSON_ROUTE)
async def close(request: Request, feedback_id: str, body: InboxCloseIn) -> dict[str, Any]:
    return await run_in_threadpool(service.close, feedback_id, actor_name(request, body.by))


async def promote_item(feedback_id: str, category: str | None, by: str) -> dict[str, Any]:
    """Validate the complaint it becomes, claim the item (one promotion), then record it as intake does."""
    from incident.api.errors import validation_message
    from incident.feedback.inputs import FeedbackIn
    from incident.feedback.views import accept as report

    fields = await run_in_threadpool(service.promotion, feedback_id, category)
    try:
        complaint = FeedbackIn.model_validate(fields)
    except ValidationError as exc:
        raise BadInput(validation_message(list(exc.errors()))) from exc
    await run_in_threadpool(service.claim_promotion, feedback_id, by)
    accepted = await report(complaint)
    item = await run_in_threadpool(service.promoted, feedback_id, accepted["feedback_id"])
    return {**item, "incident_id": accepted["incident_id"], "level": accepted["level"]}


@router.post("/api/inbox/{feedback_id}/promote", response_model=InboxItem, **JSON_ROUTE)
async def promote(request: Request, feedback_id: str, body: PromoteIn) -> dict[str, Any]:
    return await promote_item(feedback_id, body.category, actor_name(request, body.by))

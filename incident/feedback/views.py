"""HTTP routes of the feedback: ``POST /api/feedback`` (the 202 of the intake batcher) and its status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from incident.api.schemas import JSON_ROUTE, FeedbackAccepted, FeedbackStatus
from incident.feedback import service
from incident.feedback.inputs import FeedbackIn

router = APIRouter()


@router.post("/api/feedback", status_code=202, response_model=FeedbackAccepted, **JSON_ROUTE)
async def post_feedback(body: FeedbackIn) -> dict[str, Any]:
    """Record, grade and open or join an incident; the flow run follows (see its status)."""
    return await accept(body)


async def accept(body: FeedbackIn) -> dict[str, Any]:
    """The intake every edge shares: this route, ``POST /api/alarms``, the Zendesk webhook, the console's
    report form and an inbox promotion."""
    from incident.feedback import batcher

    return await batcher.accept(body)


@router.get("/api/feedback/{feedback_id}", response_model=FeedbackStatus, **JSON_ROUTE)
async def feedback_status(feedback_id: str) -> dict[str, Any]:
    """A 202 in a storm may carry ``flow_run_id: null``: the run is made moments later; see it here."""
    return await run_in_threadpool(service.status, feedback_id)

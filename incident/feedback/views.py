"""HTTP routes of the feedback: ``POST /api/feedback`` (the 202 of the intake batcher) and its status."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from incident.api.schemas import JSON_ROUTE, FeedbackAccepted, FeedbackStatus
from incident.feedback import service
from incident.feedback.inputs import FeedbackIn

router = APIRouter()


_URGENT: set[asyncio.Task[bool]] = set()  # kept until done: the loop holds tasks only weakly


@router.post("/api/feedback", status_code=202, response_model=FeedbackAccepted, **JSON_ROUTE)
async def post_feedback(body: FeedbackIn) -> dict[str, Any]:
    """Record, grade and open or join an incident; the flow run follows (see its status)."""
    return await accept(body)


async def accept(body: FeedbackIn) -> dict[str, Any]:
    """The intake every edge shares: this route, ``POST /api/alarms``, the Zendesk webhook, the console's
    report form and an inbox promotion."""
    from incident.feedback import batcher

    accepted = await batcher.accept(body)
    major = accepted["level"] == 1 and (accepted.get("opened") or accepted.get("raised_from"))
    if major and accepted["flow_run_id"] is None:
        await _handle_now(accepted["feedback_id"])
    return accepted


async def _handle_now(feedback_id: str) -> None:
    """A report that opened a level-1 incident or raised one to level 1 (the leadership must be told
    within a second) gets its ``handle_feedback`` flow run here, at once, instead of waiting for a
    worker's turn behind a storm's reports (the worker is niced below intake, and busy). Rare by nature
    (once per incident at most), so intake pays nothing for it in a storm; a worker takes the row over
    at once if this process dies, and at its next poll if the run failed here (the claim is given back:
    ``queue.handle_here``)."""
    from incident.engine import queue

    job = await run_in_threadpool(queue.claim_one, feedback_id)
    if job is not None:  # in a thread with its own loop: the flow's database calls block only it
        task = asyncio.create_task(asyncio.to_thread(asyncio.run, queue.handle_here(job)))
        _URGENT.add(task)
        task.add_done_callback(_URGENT.discard)


@router.get("/api/feedback/{feedback_id}", response_model=FeedbackStatus, **JSON_ROUTE)
async def feedback_status(feedback_id: str) -> dict[str, Any]:
    """A 202 in a storm may carry ``flow_run_id: null``: the run is made moments later; see it here."""
    return await run_in_threadpool(service.status, feedback_id)

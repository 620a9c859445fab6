"""HTTP routes of the post-mortem meeting and its sign-off (``POST /api/incidents/{id}/meeting|signoff``).

As the person the bearer token names (``request.state.actor``); a refusal is on the timeline and a 403.
After either, the incident's records are archived again so the stored post-mortem is the final one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from incident.api.schemas import JSON_ROUTE, MeetingOut, SignoffOut
from incident.meetings import service
from incident.meetings.service import MeetingIn, SignoffIn

router = APIRouter()


async def _archive(incident_id: str) -> None:
    from flows.notices import keep_records

    await run_in_threadpool(keep_records, incident_id)


@router.post("/api/incidents/{incident_id}/meeting", response_model=MeetingOut, **JSON_ROUTE)
async def meeting_incident(request: Request, incident_id: str, body: MeetingIn) -> dict[str, Any]:
    """Record the post-mortem meeting: when, who, findings, went well/badly, decisions, actions."""
    result = await run_in_threadpool(service.record, incident_id, body, request.state.actor)
    await _archive(incident_id)
    return result


@router.post("/api/incidents/{incident_id}/signoff", response_model=SignoffOut, **JSON_ROUTE)
async def signoff_incident(request: Request, incident_id: str, body: SignoffIn) -> dict[str, Any]:
    """The level's lead signs the final post-mortem off (refused for anyone else)."""
    result = await run_in_threadpool(service.signoff, incident_id, body, request.state.actor)
    await _archive(incident_id)
    return result

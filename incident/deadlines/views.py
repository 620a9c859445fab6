"""``POST /api/incidents/{id}/ack``: a person takes the incident on; its escalation chains stop.

The person is the authenticated one (their token); the service token is refused (403), like every
act the directory must answer for (``incident/response/authority.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from incident.api.schemas import JSON_ROUTE, AckOut
from incident.deadlines import service
from incident.errors import BadInput
from incident.feedback.inputs import MAX_TEXT
from incident.inputs import Input

router = APIRouter()


class AckIn(Input):
    note: str | None = Field(None, max_length=MAX_TEXT)


@router.post("/api/incidents/{incident_id}/ack", response_model=AckOut, **JSON_ROUTE)
async def ack_incident(request: Request, incident_id: str, body: AckIn | None = None) -> dict[str, Any]:
    """Acknowledge the incident's escalation (and its alarm assessment): who took it is recorded."""
    actor = getattr(request.state, "actor", None)
    if actor is None:
        raise BadInput("no credential")  # never reached behind authentication; a guard, not a path
    note = body.note if body else None
    return await run_in_threadpool(service.acknowledge, incident_id, actor, note)

"""HTTP routes of the improvement actions: list (all or one incident's), add, close with evidence."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from incident.actions import service
from incident.actions.service import ActionsIn, CloseIn
from incident.api.schemas import JSON_ROUTE, ActionRow, ActionsOut

router = APIRouter()


@router.get("/api/actions", response_model=ActionsOut, **JSON_ROUTE)
async def list_actions() -> dict[str, Any]:
    return {"actions": await run_in_threadpool(service.listing, None)}


@router.get("/api/incidents/{incident_id}/actions", response_model=ActionsOut, **JSON_ROUTE)
async def incident_actions(incident_id: str) -> dict[str, Any]:
    return {"incident_id": incident_id, "actions": await run_in_threadpool(service.listing, incident_id)}


@router.post("/api/incidents/{incident_id}/actions", status_code=201, response_model=ActionsOut, **JSON_ROUTE)
async def add_actions(request: Request, incident_id: str, body: ActionsIn) -> dict[str, Any]:
    """Add improvement actions to an incident (kind, owner, due, text)."""
    return await run_in_threadpool(service.add, incident_id, body, request.state.actor)


@router.post("/api/actions/{action_id}/close", response_model=ActionRow, **JSON_ROUTE)
async def close_action(request: Request, action_id: str, body: CloseIn) -> dict[str, Any]:
    """Close an action as done; the evidence note is required."""
    return await run_in_threadpool(service.close, action_id, body, request.state.actor)

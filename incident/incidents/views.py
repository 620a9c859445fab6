"""HTTP routes of the incidents: the list, one incident with its waiting point, its delivery log, and
the audited reveal of its customers' contacts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from incident.api.schemas import JSON_ROUTE, IncidentDetail, IncidentList, NotificationsOut, RevealOut
from incident.incidents import reveal, service

router = APIRouter()


@router.get("/api/incidents", response_model=IncidentList, **JSON_ROUTE)
async def list_incidents(open: bool = False) -> dict[str, Any]:
    return {"incidents": await run_in_threadpool(service.list_incidents, open)}


@router.get("/api/incidents/{incident_id}", response_model=IncidentDetail, **JSON_ROUTE)
async def show(incident_id: str) -> dict[str, Any]:
    from incident.console.prefect_runs import waiting_point

    data = await run_in_threadpool(service.show, incident_id)
    data["waiting_for"] = await waiting_point(data["flow_run_id"])
    return data


@router.get("/api/incidents/{incident_id}/notifications", response_model=NotificationsOut, **JSON_ROUTE)
async def notifications(incident_id: str) -> dict[str, Any]:
    import notifiers

    await run_in_threadpool(service.show, incident_id)  # 404 for unknown ids
    deliveries = await run_in_threadpool(notifiers.deliveries, incident_id)
    return {"incident_id": incident_id, "deliveries": deliveries}


@router.post("/api/incidents/{incident_id}/reveal", response_model=RevealOut, **JSON_ROUTE)
async def reveal_contacts(request: Request, incident_id: str) -> dict[str, Any]:
    """The customers' phone numbers and e-mails in full, for whom works the incident; each call audited."""
    address = request.client.host if request.client else None
    return await run_in_threadpool(reveal.reveal, incident_id, request.state.actor, "api", address)

"""HTTP routes of the incidents: the list, one incident with its waiting point, its delivery log, and
the audited reveal of its customers' contacts."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from incident.api import words
from incident.api.credentials import actor_name
from incident.api.directory import RevealOut
from incident.api.schemas import (
    JSON_ROUTE,
    Assigned,
    IncidentDetail,
    IncidentList,
    NotificationsOut,
)
from incident.incidents import reveal, service, timeline
from incident.inputs import Input
from playbooks import vocabulary

router = APIRouter()
Category = Literal["product_quality", "service_failure", "special_scenario"]
Status = Literal["response", "handling", "resolution", "follow_up", "closed"]


class AssignIn(Input):
    owner: str = Field(min_length=1, max_length=200)
    by: str | None = Field(None, max_length=200)


@router.get("/api/incidents", response_model=IncidentList, **JSON_ROUTE)
async def list_incidents(
    open: bool = False,
    level: int | None = Query(None, ge=1, le=3),
    category: Category | None = None,
    status: Status | None = None,
    owner: str | None = Query(None, max_length=200),
    overdue: bool | None = None,
    q: str | None = Query(
        None, max_length=200, description="an id, customer, order, product, batch or words"
    ),
) -> dict[str, Any]:
    """Newest first; every filter given must hold (``q`` searches the incident and its feedback)."""
    f = service.Filters(open, level, category, status, owner, overdue, q)
    return {"incidents": await run_in_threadpool(service.list_incidents, f)}


@router.post("/api/incidents/{incident_id}/assign", response_model=Assigned, **JSON_ROUTE)
async def assign(request: Request, incident_id: str, body: AssignIn) -> dict[str, Any]:
    """Name the incident's owner (recorded on its timeline as whoever assigns)."""
    return await run_in_threadpool(service.assign, incident_id, body.owner, actor_name(request, body.by))


@router.get("/api/incidents/{incident_id}", response_model=IncidentDetail, **JSON_ROUTE)
async def show(request: Request, incident_id: str) -> dict[str, Any]:
    """The incident; each timeline entry also says ``who`` and ``words`` in the asked language
    (``?lang`` or Accept-Language, else INCIDENT_LANG): what ``incident show`` prints."""
    from incident.console.prefect_runs import waiting_point

    data = await run_in_threadpool(service.show, incident_id)
    data["waiting_for"] = await waiting_point(data["flow_run_id"])
    lang = words.asked(request)
    for e in data["timeline"]:
        e["who"] = timeline.who(e["by"], lang)
        e["words"] = timeline.words(e["event"], e["detail"], e["data"], lang, data["category"])
    data["level_reason_words"] = [vocabulary.reason(r, lang) for r in data["level_reasons"] or ()]
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

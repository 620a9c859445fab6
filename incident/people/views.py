"""HTTP routes of the directory: ``/api/people`` (list, add, import, remove), ``/api/deputies`` and
``/api/audit``.

Listing is open to every credential; adding, importing, changing and removing people need the service
token (a person may not grant themselves a role); a deputy is named by the approver themselves or by the
service token for them (``deputies.py``); the audit is read by whom ``audit.may_read`` allows.
``app.py`` mounts this router behind authentication like the others. Each change and each refusal here is
in the audit (``incident/api/audittrail.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from incident.api.directory import (
    AuditOut,
    DeputiesOut,
    DeputyOut,
    OnDutyOut,
    PeopleAdded,
    PeopleOut,
    PersonAdded,
    PersonRemoved,
    PersonUpdated,
    ScopedTokenAdded,
    ScopedTokensOut,
    ShiftOut,
    ShiftsOut,
)
from incident.api.schemas import JSON_ROUTE
from incident.errors import Forbidden
from incident.people import audit, deputies, rotas, scoped, service
from incident.people.deputies import DeputyIn
from incident.people.rotas import ShiftIn, ShiftsIn
from incident.people.scoped import ScopedTokenIn
from incident.people.service import Actor, PeopleIn, PersonIn, PersonUpdate

router = APIRouter()


def _admin(request: Request) -> None:
    actor = getattr(request.state, "actor", None)
    if actor is None or actor.person or actor.scope is not None:
        raise Forbidden("only the service token (INCIDENT_API_TOKEN) manages people and tokens")


@router.get("/api/people", response_model=PeopleOut, **JSON_ROUTE)
async def list_people() -> dict[str, Any]:
    return {"people": await run_in_threadpool(service.list_people)}


@router.post("/api/people", status_code=201, response_model=PersonAdded, **JSON_ROUTE)
async def add_person(request: Request, body: PersonIn) -> dict[str, Any]:
    """Add a person; the answer carries their token, shown this once and stored only hashed."""
    _admin(request)
    return await run_in_threadpool(service.add, body)


@router.post("/api/people/import", status_code=201, response_model=PeopleAdded, **JSON_ROUTE)
async def import_people(request: Request, body: PeopleIn) -> dict[str, Any]:
    """Add a contact list's people in one transaction (one bad or taken name: nobody is added)."""
    _admin(request)
    return {"people": await run_in_threadpool(service.add_many, body.people)}


@router.delete("/api/people/{name}", response_model=PersonRemoved, **JSON_ROUTE)
async def remove_person(request: Request, name: str) -> dict[str, Any]:
    """Remove a person: their token, sessions, shifts not yet over and delegations end with them."""
    _admin(request)
    return await run_in_threadpool(service.remove, name)


@router.patch("/api/people/{name}", response_model=PersonUpdated, **JSON_ROUTE)
async def update_person(request: Request, name: str, body: PersonUpdate) -> dict[str, Any]:
    """Change roles, channels, phone or e-mail, or issue a new token (``new_token``: the old one and
    its console sessions stop working; the new one is shown this once)."""
    _admin(request)
    return await run_in_threadpool(service.update, name, body)


@router.get("/api/tokens", response_model=ScopedTokensOut, **JSON_ROUTE)
async def list_tokens(request: Request) -> dict[str, Any]:
    _admin(request)
    return {"tokens": await run_in_threadpool(scoped.list_tokens)}


@router.post("/api/tokens", status_code=201, response_model=ScopedTokenAdded, **JSON_ROUTE)
async def add_token(request: Request, body: ScopedTokenIn) -> dict[str, Any]:
    """A token for a system (scope intake or metrics); shown this once, stored only hashed."""
    _admin(request)
    return await run_in_threadpool(scoped.add, body)


@router.delete("/api/tokens/{name}", response_model=PersonRemoved, **JSON_ROUTE)
async def remove_token(request: Request, name: str) -> dict[str, Any]:
    _admin(request)
    return await run_in_threadpool(scoped.remove, name)


def _actor(request: Request) -> Actor:
    actor: Actor | None = getattr(request.state, "actor", None)
    if actor is None:
        raise Forbidden("no credential")  # never reached behind authentication
    return actor


@router.get("/api/deputies", response_model=DeputiesOut, **JSON_ROUTE)
async def list_deputies(all: bool = False) -> dict[str, Any]:
    """Delegations in force or to come (``all``: ended ones too)."""
    return {"deputies": await run_in_threadpool(deputies.list_deputies, all)}


@router.post("/api/deputies", status_code=201, response_model=DeputyOut, **JSON_ROUTE)
async def add_deputy(request: Request, body: DeputyIn) -> dict[str, Any]:
    """Name a deputy who may approve in your role until ``ends_at`` (代理审批)."""
    return await run_in_threadpool(deputies.add, _actor(request), body)


@router.delete("/api/deputies/{deputy_id}", response_model=DeputyOut, **JSON_ROUTE)
async def end_deputy(request: Request, deputy_id: int) -> dict[str, Any]:
    """End a delegation before its period is over."""
    return await run_in_threadpool(deputies.end, _actor(request), deputy_id)


@router.get("/api/rotas", response_model=ShiftsOut, **JSON_ROUTE)
async def list_shifts(role: str | None = None) -> dict[str, Any]:
    """Shifts that have not ended, soonest first."""
    return {"shifts": await run_in_threadpool(rotas.list_shifts, role)}


@router.get("/api/rotas/now", response_model=OnDutyOut, **JSON_ROUTE)
async def on_duty(role: str | None = None) -> dict[str, Any]:
    """Who is on duty now, per role, and until when."""
    return {"on_duty": await run_in_threadpool(rotas.who_is_on_duty, role)}


@router.post("/api/rotas", status_code=201, response_model=ShiftOut, **JSON_ROUTE)
async def add_shift(request: Request, body: ShiftIn) -> dict[str, Any]:
    """One shift (service token or a duty_manager); the person must hold the role."""
    return (await run_in_threadpool(rotas.add_many, _actor(request), [body]))[0]


@router.post("/api/rotas/import", status_code=201, response_model=ShiftsOut, **JSON_ROUTE)
async def import_shifts(request: Request, body: ShiftsIn) -> dict[str, Any]:
    """A rota's shifts in one transaction (one bad shift: none is added)."""
    return {"shifts": await run_in_threadpool(rotas.add_many, _actor(request), body.shifts)}


@router.delete("/api/rotas/{shift_id}", response_model=ShiftOut, **JSON_ROUTE)
async def remove_shift(request: Request, shift_id: int) -> dict[str, Any]:
    return await run_in_threadpool(rotas.remove, _actor(request), shift_id)


def _reader(request: Request) -> None:
    actor = getattr(request.state, "actor", None)
    if not audit.may_read(actor):
        raise Forbidden(audit.refusal(actor) if actor is not None else "no credential")


@router.get("/api/audit", response_model=AuditOut, **JSON_ROUTE)
async def audit_all(
    request: Request, since: str | None = None, limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 5000
) -> dict[str, Any]:
    """Every act, login, refusal and reveal, oldest first: the latest ``limit``, or (``since``: an ISO time
    or the ``next`` of the page before) the first ``limit`` after it."""
    _reader(request)
    return await run_in_threadpool(audit.page, None, since, limit)


@router.get("/api/audit/{incident_id}", response_model=AuditOut, **JSON_ROUTE)
async def audit_one(
    request: Request,
    incident_id: str,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 5000,
) -> dict[str, Any]:
    """One incident's part of the audit (as ``/api/audit``)."""
    _reader(request)
    return await run_in_threadpool(audit.page, incident_id, since, limit)

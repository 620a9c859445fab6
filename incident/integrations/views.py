"""HTTP routes of the connected systems, and the built-in adapters (registry.py) that mount them.

The webhooks carry no bearer token (Zendesk and SF sign their requests, Freshdesk's rule sends a shared
secret): their routes check that first and read nothing else of a request that fails it (401). Alarms
take ``INCIDENT_ALARM_TOKEN`` (a secret for the alarm-sending systems alone), the service token, a
person's token or a scoped token of scope ``intake``. JD waybills are registered behind the API's token.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, Field

from incident import settings
from incident.api.credentials import bearer, identify
from incident.api.schemas import JSON_ROUTE, FeedbackAccepted, Out
from incident.errors import BadInput
from incident.feedback import service as intake
from incident.feedback.inputs import FeedbackIn
from incident.feedback.views import accept
from incident.incidents import timeline
from incident.inputs import Input
from incident.integrations import baidu, freshdesk, jd, logistics, sf, zendesk
from incident.integrations import service as links
from incident.integrations.alarms import AlarmIn
from incident.integrations.registry import Adapter
from incident.people import scoped
from models import session_scope, utcnow

_BACKGROUND: set[asyncio.Task[Any]] = set()  # kept until done: the loop holds tasks only weakly
# The API's scheme as app.py declares it (one ``HTTPBearer`` in /openapi.json); the alarm route also
# takes INCIDENT_ALARM_TOKEN, which its description says.
ALARM_BEARER = HTTPBearer(auto_error=False, description="INCIDENT_API_TOKEN, or a person's token")
NAMES = {zendesk.SYSTEM: "Zendesk", freshdesk.SYSTEM: "Freshdesk"}


class TicketAccepted(FeedbackAccepted):
    """The 202 of a ticket webhook: the ticket's feedback (``repeat``: it was recorded before)."""

    ticket_id: str
    repeat: bool = False


class AlarmAccepted(FeedbackAccepted):
    source: str


class RoutesAccepted(Out):
    """What SF expects back (``0000``: do not push again)."""

    return_code: str
    return_msg: str
    routes: int


class WaybillIn(Input):
    """``POST /api/integrations/jd``: a JD waybill to watch from its shipping time (default: now)."""

    waybill: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    order: str | None = Field(None, max_length=200)
    shipped_at: AwareDatetime | None = None


class WaybillWatched(Out):
    waybill: str
    carrier: str
    order: str | None = None
    promised_at: str


def _unsigned(message: str) -> HTTPException:
    return HTTPException(401, message)


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        raise BadInput("body: not JSON") from None


def _later(coroutine: Any) -> None:
    task = asyncio.create_task(coroutine)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _ticket_updated(system: str, incident_id: str | None, ticket_id: str, status: str) -> None:
    """An update of a ticket already recorded amends its incident's timeline, not its count."""
    if incident_id:
        with session_scope() as s:
            detail = f"{NAMES[system]} #{ticket_id}: {status}"
            data = {"system": NAMES[system], "ticket": ticket_id, "ticket_status": status}
            timeline.add(s, incident_id, "ticket_updated", f"{system}:{ticket_id}", detail, data=data)


async def _repeat(system: str, feedback_id: str, ticket_id: str, update: str | None) -> dict[str, Any]:
    """The feedback recorded before; an update (not the vendor's retry of the creation) is on the timeline."""
    seen = await run_in_threadpool(intake.status, feedback_id)
    if update is not None:
        await run_in_threadpool(_ticket_updated, system, seen["incident_id"], ticket_id, update)
    return {**seen, "ticket_id": ticket_id, "repeat": True}


async def _ticket(
    system: str,
    ticket_id: str,
    update: str | None,
    body_of: Callable[[], Awaitable[FeedbackIn]],
    write_back: Callable[[int], Awaitable[bool | None]] | None,
) -> dict[str, Any]:
    """A ticket becomes one feedback, whichever system sent it and however often (links.claim)."""
    known = await run_in_threadpool(links.known, system, ticket_id)
    if known is not None:  # a repeat delivery, or an update of a ticket recorded before
        return await _repeat(system, known, ticket_id, update)
    body = await body_of()  # valid before anything is claimed
    link_id, known = await run_in_threadpool(links.claim, system, ticket_id)
    if known is not None:  # a concurrent delivery recorded it meanwhile (or died after recording it)
        return await _repeat(system, known, ticket_id, update)
    try:
        accepted = await accept(body)
    except Exception:  # refused or not stored: give the claim back (a cancelled request keeps it, see claim)
        await run_in_threadpool(links.release, link_id)
        raise
    await run_in_threadpool(links.recorded, link_id, accepted["feedback_id"], accepted["incident_id"])
    if write_back is not None:
        _later(write_back(link_id))  # the sweep tries again if this fails
    return {**accepted, "ticket_id": ticket_id, "repeat": False}


zendesk_router = APIRouter()


@zendesk_router.post(
    "/api/integrations/zendesk", status_code=202, response_model=TicketAccepted, **JSON_ROUTE
)
async def zendesk_webhook(request: Request) -> dict[str, Any]:
    """A Zendesk ticket event or trigger webhook: the ticket becomes one feedback (README "Zendesk")."""
    raw = await request.body()
    try:
        zendesk.verify(request.headers, raw)
    except zendesk.Unsigned as exc:
        raise _unsigned(str(exc)) from None
    payload = _json(raw)
    ticket_id, ticket, requester, status = zendesk.ticket_of(payload)

    async def body_of() -> FeedbackIn:
        return zendesk.feedback_of(ticket_id, ticket, await zendesk.requester(requester))

    update = status if zendesk.is_update(payload) else None
    told = zendesk.write_back if settings.get().zendesk_url else None
    return await _ticket(zendesk.SYSTEM, ticket_id, update, body_of, told)


freshdesk_router = APIRouter()


@freshdesk_router.post(
    "/api/integrations/freshdesk", status_code=202, response_model=TicketAccepted, **JSON_ROUTE
)
async def freshdesk_webhook(request: Request) -> dict[str, Any]:
    """A Freshdesk automation rule's webhook: the ticket becomes one feedback (README "Freshdesk")."""
    try:
        freshdesk.verify(request.headers)
    except freshdesk.Unsigned as exc:
        raise _unsigned(str(exc)) from None
    payload = _json(await request.body())
    ticket_id, ticket, status = freshdesk.ticket_of(payload)

    async def body_of() -> FeedbackIn:
        return freshdesk.feedback_of(ticket_id, ticket)

    update = status if freshdesk.is_update(payload) else None
    told = freshdesk.write_back if settings.get().freshdesk_url else None
    return await _ticket(freshdesk.SYSTEM, ticket_id, update, body_of, told)


sf_router = APIRouter()


@sf_router.post("/api/integrations/sf", response_model=RoutesAccepted, **JSON_ROUTE)
async def sf_route_push(request: Request) -> dict[str, Any]:
    """SF Express route push (``application/x-www-form-urlencoded``, signed with msgDigest)."""
    raw = await request.body()
    try:
        form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise BadInput("body: a UTF-8 form (msgData, timestamp, msgDigest)") from None
    try:
        sf.verify(form)
    except sf.Unsigned as exc:
        raise _unsigned(str(exc)) from None
    items = sf.routes(form["msgData"])
    count = await run_in_threadpool(sf.record, items)
    return {**sf.ACCEPTED, "routes": count}


jd_router = APIRouter()


@jd_router.post("/api/integrations/jd", status_code=201, response_model=WaybillWatched, **JSON_ROUTE)
async def jd_waybill(body: WaybillIn) -> dict[str, Any]:
    """Watch a JD waybill: its track is asked for until the delivered scan, or the late-order alarm."""
    promise = timedelta(hours=settings.get().jd_promise_hours)
    shipped: datetime = body.shipped_at or utcnow()
    bill = await run_in_threadpool(logistics.register, jd.SYSTEM, body.waybill, body.order, shipped, promise)
    return {"waybill": bill.waybill_no, "carrier": bill.carrier, "order": bill.order_no,
            "promised_at": bill.promised_at.isoformat()}  # fmt: skip


alarms_router = APIRouter()


async def alarm_sender(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(ALARM_BEARER)] = None
) -> None:
    """INCIDENT_ALARM_TOKEN, or a token of the API that may report (a scoped token only of scope intake)."""
    given = bearer(request.headers.get("Authorization"))
    own = settings.get().alarm_token
    if own and given and secrets.compare_digest(given.encode(), own.encode()):
        request.state.actor = None
        return
    actor = await identify(given or "", request.app.state.service_token)
    if actor is None:
        raise HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
    if actor.scope is not None and not scoped.permits(actor.scope, request.method, request.url.path):
        raise HTTPException(403, f"this token's scope is {actor.scope}: it may not {request.method} here")
    request.state.actor = actor


@alarms_router.post("/api/alarms", status_code=202, response_model=AlarmAccepted, **JSON_ROUTE)
async def post_alarm(body: AlarmIn, _: Annotated[None, Security(alarm_sender)]) -> dict[str, Any]:
    """An alarm of the logistics, quality or ticket system: recorded and graded as a feedback.

    Bearer: ``INCIDENT_ALARM_TOKEN`` (valid here only), the service token, a person's token or an
    ``intake`` scoped token."""
    accepted = await accept(body.feedback())
    return {**accepted, "source": body.source}


ZENDESK = Adapter(
    "zendesk", zendesk_router, zendesk.sweep,
    supports="ticket events and trigger webhooks in (signed); internal notes out on open and on change",
)  # fmt: skip
FRESHDESK = Adapter(
    "freshdesk", freshdesk_router, freshdesk.sweep,
    supports="automation-rule webhook in (shared secret); private notes out, Resolved once closed",
)  # fmt: skip
SF = Adapter(
    "sf", sf_router, sf.sweep,
    supports="route push in (msgDigest); a late-order alarm when the promise passes undelivered",
)  # fmt: skip
JD = Adapter(
    "jd", jd_router, jd.sweep, bearer=True,
    supports="registered waybills' tracks polled (JOS); a late-order alarm as for SF",
)  # fmt: skip
BAIDU = Adapter(
    "baidu", None, baidu.sweep,
    supports="a 舆情 keyword task per open incident; a negative media item raises it (media exposure)",
)  # fmt: skip
ALARMS = Adapter(
    "alarms", alarms_router, supports="POST /api/alarms for logistics, quality and ticket systems"
)

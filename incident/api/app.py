"""The HTTP API served by ``incident serve`` (interface.md): the CLI, scripts and the console use it.

Every route but ``/healthz`` needs a bearer token: the service token (``INCIDENT_API_TOKEN``) or a
person's own (``incident people add``); ``request.state.actor`` then says who acts.
Bodies are the same pydantic models the CLI validates with; bad input is a 4xx with a one-line
``error`` and stores nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from incident import settings
from incident.actions import views as actions
from incident.api import errors as http_errors
from incident.api import idempotency, requestlog
from incident.api.audittrail import AuditTrail
from incident.api.bodylimit import BodyLimit
from incident.api.credentials import COOKIE, bearer, from_cookie, identify
from incident.api.errors import validation_message
from incident.archive import views as archive
from incident.deadlines import views as deadlines
from incident.feedback import views as feedback
from incident.inbox import views as inbox
from incident.incidents import views as incidents
from incident.integrations import registry
from incident.meetings import views as meetings
from incident.metrics import views as metrics
from incident.people import scoped, via
from incident.people import views as people
from incident.records import views as records
from incident.response import views as response
from incident.reviews import views as reviews

TOKEN_HEADER = "Authorization"
__all__ = ["create_app", "validation_message"]
# Declares the scheme in /openapi.json (the Authorize button of /docs); the check below reads the header
# itself, as the console and the idempotency middleware do (credentials.py), so the cookie works too.
BEARER = HTTPBearer(auto_error=False, description="INCIDENT_API_TOKEN, or a person's token")


def create_app(token: str) -> FastAPI:
    app = FastAPI(
        title="incident",
        version="0.1.0",
        description="Emergency incident-response orchestrator for after-sales service.",
        # operationId = the route's function name: generated clients get show(), contact_incident(), …
        generate_unique_id_function=lambda route: route.name,
    )

    async def authorised(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None
    ) -> None:
        # async: FastAPI runs a sync dependency in a worker thread, a thread hop on every request
        given = bearer(request.headers.get(TOKEN_HEADER)) or from_cookie(request.cookies.get(COOKIE))
        actor = await identify(given, token)
        if actor is None:
            raise HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        request.state.actor = actor  # who acts: the routes record it (incident/response/authority.py)
        if (here := via.current()) is not None:
            here.who = actor.name  # the audit's "who" for whatever this request records
        if actor.scope is not None and not scoped.permits(actor.scope, request.method, request.url.path):
            raise HTTPException(403, f"this token's scope is {actor.scope}: it may not {request.method} here")

    app.add_middleware(idempotency.Idempotency, token=token)  # inside BodyLimit: reads bodies already bounded
    app.add_middleware(BodyLimit, limit=settings.get().max_body_bytes)  # before anything reads a body
    app.add_middleware(AuditTrail)  # outside the replays: every act and refusal once (audittrail.py)
    app.add_middleware(requestlog.RequestLog)  # outermost: every answer gets a request id and a log line

    http_errors.install(app)  # every error as {"error": …}, with the status that tells the truth

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for domain in (
        feedback,
        incidents,
        response,
        meetings,
        actions,
        deadlines,
        records,
        metrics,
        people,
        inbox,
        reviews,
        archive,
    ):  # each folder's views.py
        app.include_router(domain.router, dependencies=[Depends(authorised)])
    app.state.service_token = token  # adapters that take a token of their own fall back to the API's
    for adapter in registry.adapters():  # the connected systems (incident/integrations/registry.py)
        if adapter.router is not None:
            app.include_router(adapter.router, dependencies=[Depends(authorised)] if adapter.bearer else [])
    idempotency.document(app)  # the Idempotency-Key header in /openapi.json
    return app

"""The HTTP API served by ``incident serve`` (interface.md): the CLI, scripts and the console use it.

Every route but ``/healthz`` needs the bearer token. Bodies are the same pydantic models the CLI
validates with; bad input is a 4xx with a one-line ``error`` and stores nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from incident import actions, http_errors, idempotency, requestlog, schemas, views
from incident.bodylimit import BodyLimit
from incident.credentials import bearer
from incident.http_errors import validation_message
from incident.intake import FeedbackIn

TOKEN_HEADER = "Authorization"
__all__ = ["create_app", "validation_message"]
MAX_BODY_BYTES = int(os.environ.get("INCIDENT_MAX_BODY_BYTES", str(256 * 1024)))
# Declares the scheme in /openapi.json (the Authorize button of /docs); the check below reads the header
# itself, as the console and the idempotency middleware do (credentials.py), so the cookie works too.
BEARER = HTTPBearer(auto_error=False, description="INCIDENT_API_TOKEN, or a person's token")
ERRORS = schemas.errors()
JSON = {"response_model_exclude_unset": True, "responses": ERRORS}


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
        given = bearer(request.headers.get(TOKEN_HEADER)) or request.cookies.get("incident_token", "")
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    app.add_middleware(idempotency.Idempotency, token=token)  # inside BodyLimit: reads bodies already bounded
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)  # before anything reads a body
    app.add_middleware(requestlog.RequestLog)  # outermost: every answer gets a request id and a log line

    http_errors.install(app)  # every error as {"error": …}, with the status that tells the truth

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    api = [Depends(authorised)]

    @app.post(
        "/api/feedback",
        status_code=202,
        dependencies=api,
        response_model=schemas.FeedbackAccepted,
        **JSON,
    )
    async def post_feedback(body: FeedbackIn) -> dict[str, Any]:
        from incident import accept

        return await accept.accept(body)

    @app.get(
        "/api/feedback/{feedback_id}",
        dependencies=api,
        response_model=schemas.FeedbackStatus,
        **JSON,
    )
    async def feedback_status(feedback_id: str) -> dict[str, Any]:
        """A 202 in a storm may carry ``flow_run_id: null``: the run is made moments later; see it here."""
        from incident import accept

        return await run_in_threadpool(accept.status, feedback_id)

    @app.get("/api/incidents", dependencies=api, response_model=schemas.IncidentList, **JSON)
    async def list_incidents(open: bool = False) -> dict[str, Any]:
        return {"incidents": await run_in_threadpool(views.list_incidents, open)}

    @app.get(
        "/api/incidents/{incident_id}",
        dependencies=api,
        response_model=schemas.IncidentDetail,
        **JSON,
    )
    async def show(incident_id: str) -> dict[str, Any]:
        from incident.console.prefect_runs import waiting_point

        data = await run_in_threadpool(views.show, incident_id)
        data["waiting_for"] = await waiting_point(data["flow_run_id"])
        return data

    def action_route(
        name: str,
        model: type[actions.Answer],
        fn: Callable[..., dict[str, Any]],
        out: type[schemas.ActionOut],
    ) -> None:
        async def act(incident_id: str, body: actions.Answer) -> dict[str, Any]:
            from flows.waiting import try_deliver

            result = await run_in_threadpool(fn, incident_id, body)
            return {**result, "delivery": await try_deliver(incident_id)}

        act.__name__ = f"{name}_incident"
        act.__annotations__ = {"incident_id": str, "body": model, "return": dict[str, Any]}
        path = f"/api/incidents/{{incident_id}}/{name}"
        app.post(path, dependencies=api, response_model=out, **JSON)(act)

    for name, model, fn, out in (
        ("contact", actions.ContactIn, actions.contact, schemas.ContactOut),
        ("measure", actions.MeasureIn, actions.measure, schemas.MeasureOut),
        ("cause", actions.CauseIn, actions.cause, schemas.CauseOut),
        ("propose", actions.ProposeIn, actions.propose, schemas.ProposeOut),
        ("approve", actions.ApproveIn, actions.approve, schemas.ApproveOut),
        ("confirm", actions.ConfirmIn, actions.confirm, schemas.ConfirmOut),
        ("survey", actions.SurveyIn, actions.survey, schemas.SurveyOut),
    ):
        action_route(name, model, fn, out)

    @app.get(
        "/api/incidents/{incident_id}/postmortem",
        dependencies=api,
        response_class=Response,
        responses=schemas.errors(schemas.content(("text/markdown", "text/html"), ("application/pdf",))),
    )
    async def postmortem(
        incident_id: str,
        format: Annotated[str, Query(pattern="^(md|html|pdf)$")] = "md",
        lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh",
    ) -> Response:
        from incident.postmortem import render_postmortem

        if format == "pdf":
            from incident.records import postmortem_pdf

            pdf, due = await run_in_threadpool(postmortem_pdf, incident_id, lang)
            headers = {"X-Postmortem-Due": due.isoformat() if due else ""}
            return Response(pdf, media_type="application/pdf", headers=headers)
        text, due = await run_in_threadpool(render_postmortem, incident_id, lang, format)
        media = "text/html" if format == "html" else "text/markdown"
        return PlainTextResponse(
            text,
            media_type=f"{media}; charset=utf-8",
            headers={"X-Postmortem-Due": due.isoformat() if due else ""},
        )

    @app.get(
        "/api/incidents/{incident_id}/notifications",
        dependencies=api,
        response_model=schemas.NotificationsOut,
        **JSON,
    )
    async def notifications(incident_id: str) -> dict[str, Any]:
        import notifiers

        await run_in_threadpool(views.show, incident_id)  # 404 for unknown ids
        return {
            "incident_id": incident_id,
            "deliveries": await run_in_threadpool(notifiers.deliveries, incident_id),
        }

    from incident import metrics_api, records

    app.include_router(records.router, dependencies=api)  # /api/incidents/{id}/records…
    app.include_router(metrics_api.router, dependencies=api)  # /api/metrics…, /metrics (Prometheus)
    idempotency.document(app)  # the Idempotency-Key header in /openapi.json
    return app

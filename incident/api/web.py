"""The ASGI app served by ``incident serve``: the HTTP API and the web console in one app.

Why one app: the console and the API share the token (the console's login cookie is the one the API
accepts), the process, the database engine and the flow dispatcher, so a console approval resumes the
same Prefect run the CLI would.

Every response is counted in ``incident_http_responses_total{handler, code}`` (per process), so
intake errors (5xx on ``/api/feedback``, ``/api/alarms``, ``/api/integrations/…``) can be alerted on
even though every other metric is read from the database. A plain ASGI wrapper (no
``BaseHTTPMiddleware``): one dictionary look-up and a counter increment per request.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from incident import console
from incident.api.app import create_app
from incident.metrics.prometheus import HTTP_RESPONSES

INTAKE = ("/api/feedback", "/api/alarms", "/api/integrations/")


def handler_of(method: str, path: str) -> str:
    """The handler label: intake (reports coming in), metrics, the rest of the API, the console."""
    if method == "POST" and path.startswith(INTAKE):
        return "intake"
    if path == "/metrics":
        return "metrics"
    return "api" if path.startswith("/api/") or path == "/openapi.json" else "console"


class CountResponses:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = handler_of(scope["method"], scope["path"])
        status = [500]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:  # an exception escaping the app is a 500 for the client; it still propagates
            HTTP_RESPONSES.labels(handler, f"{min(max(status[0] // 100, 2), 5)}xx").inc()


def create_web_app(token: str) -> FastAPI:
    app = create_app(token)
    console.install(app, token)
    app.add_middleware(CountResponses)
    return app

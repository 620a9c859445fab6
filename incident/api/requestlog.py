"""A request id per HTTP request, echoed as ``X-Request-ID``, one access log line per request, and
every answer counted in ``incident_http_responses_total{handler, code}`` (per process).

Why a pure ASGI middleware, outermost: it sees every answer, the 413 of the body limit and the
replayed answers of the idempotency middleware included, and the contextvar it sets is inherited by
everything that answers the request (``run_in_threadpool`` copies the context), so their log lines
carry the id too. A caller's own ``X-Request-ID`` is kept when it is a plain token, so a trace spans
the proxy, the CLI and the service; anything else is replaced.

Why the counter here: intake errors (5xx on ``/api/feedback``, ``/api/alarms``, ``/api/integrations/…``)
must be alertable although every other metric is read from the database, and this is the one place
that sees every answer's status (once a second middleware did the same work).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from incident.logs import request_id, request_ids
from incident.metrics.prometheus import HTTP_RESPONSES

log = logging.getLogger("incident.access")
HEADER = b"x-request-id"
ACCEPTED = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
INTAKE = ("/api/feedback", "/api/alarms", "/api/integrations/")
ABOUT = re.compile(r"^/(?:api/)?(incidents|feedback)/([A-Za-z0-9_-]{1,64})(?:/|$)")


def ids_of(path: str) -> dict[str, str]:
    """``incident_id`` or ``feedback_id`` named by an API or console path."""
    found = ABOUT.match(path)
    if found is None:
        return {}
    return {("incident_id" if found.group(1) == "incidents" else "feedback_id"): found.group(2)}


def handler_of(method: str, path: str) -> str:
    """The handler label: intake (reports coming in), metrics, the rest of the API, the console."""
    if method == "POST" and path.startswith(INTAKE):
        return "intake"
    if path == "/metrics":
        return "metrics"
    return "api" if path.startswith("/api/") or path == "/openapi.json" else "console"


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"")
        rid = given.decode() if ACCEPTED.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        about = ids_of(scope.get("path", ""))
        about_token = request_ids.set(about)
        started = time.perf_counter()
        status = 500  # what the client sees when the app fails before answering

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            method, path = scope.get("method", ""), scope.get("path", "")
            HTTP_RESPONSES.labels(handler_of(method, path), f"{min(max(status // 100, 2), 5)}xx").inc()
            log.info(
                "%s %s %d %.1f ms request_id=%s",
                method,
                path,
                status,
                ms,
                rid,
                extra={"method": method, "path": path, "status": status, "duration_ms": ms, **about},
            )
            request_ids.reset(about_token)
            request_id.reset(token)

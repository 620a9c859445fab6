"""The audit's edge: every API and console request is handled inside a ``Via`` (its channel and the
client's address, ``incident/people/via.py``), and what no domain code recorded is recorded here.

Why a middleware: "every action and every refusal" must hold for routes written later too. The domain
records what it knows best (a step and its refusal on the timeline, a reveal, a login) and marks the
request audited; for the rest this middleware writes one access event per request:

- an act that changed something (a POST, PUT, PATCH or DELETE answered below 400 by someone logged
  in): the directory, tokens, deputies, rotas, the inbox … named by the route's name (its operationId)
  unless the handler named it (``via.name``), its path and whatever the domain noted (``via.note``);
- a refusal (403) of any method, with the error's message (the scope and administrator checks);
- a wrong credential (401 with a token or session presented), aggregated per address: the first of a
  minute is written at once, the next ones only update its count at most every ``COUNT_EVERY`` seconds,
  so a storm of wrong tokens costs a few writes a minute, not one per request.

Not recorded: reads (GET) that succeed, reports (``POST /api/feedback``, alarms, webhooks, the console's
report form: each is its own feedback row, at 200 a second), answers replayed for a repeated
``Idempotency-Key`` (the first answer was recorded).

Why written before the answer goes out: whoever reads the audit right after an answer finds it there.

The channel: the console's pages are ``console``; the API is ``cli`` when the caller is the ``incident``
command (its User-Agent), else ``api``. It is what the caller says, and only describes: authority never
depends on it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from incident.people import audit, via
from models import AccessEvent, session_scope, utcnow

log = logging.getLogger("incident.audit")
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_AUDITED = ("/api/feedback", "/api/alarms", "/api/integrations/", "/report", "/login", "/logout")
UNTOUCHED = ("/healthz", "/static/")
CLI_AGENT = b"incident-cli/"
WINDOW = 60.0  # seconds: one 401 row per address per window
COUNT_EVERY = 5.0  # seconds between updates of a window's count


def channel_of(path: str, headers: dict[bytes, bytes]) -> str:
    if not (path.startswith("/api/") or path in ("/metrics", "/openapi.json")):
        return "console"
    return "cli" if headers.get(b"user-agent", b"").startswith(CLI_AGENT) else "api"


def _presented(headers: dict[bytes, bytes]) -> bool:
    cookie = headers.get(b"cookie", b"")
    return bool(headers.get(b"authorization", b"").strip()) or b"incident_session=" in cookie


@dataclass
class _Window:
    started: float
    row_id: int
    count: int
    written: float  # when its count was last written
    written_count: int
    last: str  # the last request refused


class WrongTokens:
    """The per-address 401 windows of this process (bounded; see the module). A window's count is
    written at most every ``COUNT_EVERY`` seconds, and once more when the address's next window opens."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._clock = clock  # injectable: tests move time instead of sleeping

    def seen(self, address: str, where: str) -> None:
        """Count one 401; writes a new row, or the count, when due (runs in a worker thread)."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(address)
            if window is not None and now - window.started < WINDOW:
                window.count, window.last = window.count + 1, where
                if now - window.written < COUNT_EVERY:
                    return
                window.written, window.written_count = now, window.count
                due: _Window | None = window
            else:
                due = window if window is not None and window.count != window.written_count else None
                window = None
        if due is not None:
            self._count(due.row_id, due.count, due.last)
        if window is None:
            self._open(address, where, now)

    @staticmethod
    def _count(row_id: int, count: int, last: str) -> None:
        detail = f"{count} wrong tokens from this address in a minute (last: {last})"
        with session_scope() as s:
            s.execute(update(AccessEvent).where(AccessEvent.id == row_id).values(detail=detail))

    def _open(self, address: str, where: str, now: float) -> None:
        with session_scope() as s:
            row = AccessEvent(
                at=utcnow(), who="unknown", action="authenticate", outcome="refused",
                channel=(via.current() or via.Via("api")).channel, address=address,
                detail=f"wrong token ({where})",
            )  # fmt: skip
            s.add(row)
            s.flush()
            row_id = row.id
        with self._lock:
            if len(self._windows) > 10_000:  # bounded: old windows go first
                self._windows = {k: w for k, w in self._windows.items() if now - w.started < WINDOW}
            self._windows[address] = _Window(now, row_id, 1, now, 1, where)


class AuditTrail:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.wrong_tokens = WrongTokens()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(UNTOUCHED):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        client = scope.get("client")
        here = via.Via(channel_of(path, headers), client[0] if client else None)
        held: list[Message] = []

        async def recorded(message: Message) -> None:
            if message["type"] == "http.response.start" and int(message["status"]) not in (401, 403):
                await self._after(scope, here, int(message["status"]), message, None, headers)
            elif message["type"] == "http.response.start" or held:
                held.append(message)  # a refusal: its message is in the body; written before it goes
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    body = b"".join(m.get("body", b"") for m in held[1:])
                    await self._after(scope, here, int(held[0]["status"]), held[0], body, headers)
                    for kept in held:
                        await send(kept)
                    held.clear()
                return
            await send(message)

        with via.opened(here):
            await self.app(scope, receive, recorded)

    async def _after(
        self, scope: Scope, here: via.Via, status: int, start: Message, body: bytes | None,
        headers: dict[bytes, bytes],
    ) -> None:  # fmt: skip
        method, path = scope.get("method", ""), unquote(scope.get("path", ""))
        where = f"{method} {path}"[:300]
        try:
            if status == 401 and _presented(headers):
                await run_in_threadpool(self.wrong_tokens.seen, here.address or "unknown", where)
                return
            if here.audited or path.startswith(NOT_AUDITED):
                return
            if status == 403:
                who = here.who or "unknown"
                said = (scope.get("state") or {}).get("refusal") or _message(body)  # as raised: English
                await run_in_threadpool(self._write, scope, here, who, "refused", said or where)
            elif status < 400 and method in CHANGES and here.who is not None and not _replayed(start):
                detail = "; ".join([where, *here.notes])
                await run_in_threadpool(self._write, scope, here, here.who, "ok", detail)
        except SQLAlchemyError:  # the answer still goes out; the fault is logged with its traceback
            log.exception("the audit could not record %s (%s)", where, status)

    @staticmethod
    def _write(scope: Scope, here: via.Via, who: str, outcome: str, detail: str) -> None:
        route = scope.get("route")
        action = here.action or getattr(route, "name", None) or scope.get("method", "request").lower()
        params: dict[str, Any] = scope.get("path_params") or {}
        with via.opened(here):
            audit.record(action, outcome, who=who, incident_id=params.get("incident_id"), detail=detail)


def _replayed(start: Message) -> bool:
    return any(k.lower() == b"idempotent-replayed" for k, _ in start.get("headers", []))


def _message(body: bytes | None) -> str | None:
    """The ``error`` of a JSON refusal (the console's refusals are pages: their path says enough)."""
    try:
        error = json.loads(body or b"").get("error")
    except (ValueError, AttributeError):
        return None
    return str(error)[:1000] if error else None

"""Every accepted act takes effect once: ``Idempotency-Key`` replay, and keyless duplicates refused.

A pure ASGI middleware in front of the HTTP actions (``POST /api/feedback``, the incident actions, the
inbox's answer, close and promote) and the console's action forms:

- With an ``Idempotency-Key`` header, the first request with that key claims it (a row in
  ``idempotency_keys``, whose primary key makes concurrent claims meet in the database) and acts; its
  answer (status and body) is stored, and every repeat gets that answer back, waiting while the first
  is still being answered, with no second effect. The same key with another request is a 422. A 5xx
  is not stored: the act did not happen, so a retry with the key may act.
- Without a key, an incident action identical (same route, same body) to one accepted in the last
  ``INCIDENT_REPEAT_WINDOW`` seconds (default 60), or still being answered, is refused with 409.
  Why: twenty concurrent identical surveys used to make twenty follow-up rounds, and identical
  contacts invented progress updates. Each action takes the incident's row lock, so they ran one
  after another and each looked legitimate. A person who really means the same act twice within a
  minute sends a key per act (the CLI sends one per invocation). Feedback is not deduplicated without
  a key: identical reports from different customers in a storm are distinct reports.

- A console form carries a one-time key of its own (``idempotency_key``, a fresh value in every form
  the console renders, see ``incident/console/render.py``): a double click, a reload of the POST or the
  Back button then meets the first answer (its redirect and message, or its refusal page) instead of
  acting twice. A form without one (a script's) acts as ever.

Why a middleware: it works on the bytes of the request and the answer, so the routes stay as they are,
and only an authenticated caller is ever answered from the store (the check is the API's own).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from incident import settings
from incident.api.credentials import identify, presented
from incident.api.errors import unavailable
from incident.response.steps import BY_ACTION
from models import IdempotencyKey, session_scope, utcnow
from models.idempotency import KEY_LENGTH

log = logging.getLogger(__name__)

# The human steps' routes, from their one table (a step added there is covered here too), the review
# loop's acts after the flow (the post-mortem meeting, its sign-off, adding and closing improvement
# actions), taking an incident on (ack) or naming its owner (assign), and the inbox's three acts.
REVIEW_ACTIONS = ("meeting", "signoff", "actions")
OWNING = ("ack", "assign")
INBOX = ("answer", "close", "promote")
_STEP = "|".join(map(re.escape, (*BY_ACTION, *REVIEW_ACTIONS, *OWNING)))
_INBOX = "|".join(INBOX)
ACTIONS = re.compile(
    rf"^/api/incidents/[^/]+/({_STEP})$|^/api/actions/[^/]+/close$|^/api/inbox/[^/]+/({_INBOX})$"
)
# The console's forms that act (incident/console/pages.py, inbox.py): keyed by their ``idempotency_key``.
_FORM_STEP = "|".join(map(re.escape, (*BY_ACTION, *OWNING)))
FORMS = re.compile(rf"^/incidents/[^/]+/({_FORM_STEP})$|^/inbox/[^/]+/({_INBOX})$|^/report$")
FORM_FIELD = "idempotency_key"
# A refused report form is shown again with what was typed (a customer's phone number, perhaps): such an
# answer is not kept, the repeat is checked again (and refused again: nothing was recorded).
ECHOES = "/report"
FEEDBACK = "/api/feedback"
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)

Claim = tuple[str, IdempotencyKey | None]  # ("new" | "stored" | "busy", the row found)


def _claim(key: str, route: str, digest: str, expires: bool) -> Claim:
    """Claim ``key`` for this request, or say who has it.

    ``expires``: keyless rows last ``INCIDENT_REPEAT_WINDOW`` seconds."""
    now = utcnow()
    try:
        with session_scope() as s:
            row = s.get(IdempotencyKey, key)
            if (
                row is not None
                and expires
                and row.created_at < now - timedelta(seconds=settings.get().repeat_window)
            ):
                s.delete(row)
                s.flush()
                row = None
            if row is not None:
                s.expunge(row)
                return ("busy" if row.status is None else "stored", row)
            s.add(IdempotencyKey(key=key, route=route, request_hash=digest, created_at=now))
        return ("new", None)
    except IntegrityError:  # a concurrent request claimed it first (PostgreSQL): see what it holds
        with session_scope() as s:
            row = s.get(IdempotencyKey, key)
            if row is None:
                return _claim(key, route, digest, expires)
            s.expunge(row)
            return ("busy" if row.status is None else "stored", row)


def _abandoned(row: IdempotencyKey) -> bool:
    """Claimed, never answered, for longer than any answer takes: its process went away meanwhile."""
    return row.created_at < utcnow() - timedelta(seconds=settings.get().idempotency_wait)


def _still_busy(row: IdempotencyKey) -> str:
    if not _abandoned(row):
        return "the first request with this Idempotency-Key is still being answered"
    # Why not act again: the first may have acted before its process died; a second act could double it.
    return (
        f"the first request with this Idempotency-Key (at {row.created_at.isoformat()}) was interrupted "
        "before it was answered; whether it acted shows on the incident; send a new key to act again"
    )


def purge(older_than: timedelta) -> int:
    """Forget answers older than this (the worker's sweep calls it): a key is for retries, not forever."""
    with session_scope() as s:
        done = s.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - older_than))
        return int(done.rowcount or 0)


def _store(key: str, status: int, body: bytes) -> None:
    with session_scope() as s:
        s.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(status=status, body=body.decode("utf-8", "replace"))
        )


def _release(key: str) -> None:
    with session_scope() as s:
        s.execute(delete(IdempotencyKey).where(IdempotencyKey.key == key))


def request_hash(path: str, body: bytes) -> str:
    """The request's identity: its route and its JSON, canonical, so spacing and key order don't count."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # not JSON this API reads: the app refuses it; hash the bytes
        canonical = body
    return hashlib.sha256(path.encode() + b"\n" + canonical).hexdigest()


async def _answer(send: Send, status: int, body: bytes, extra: dict[bytes, bytes] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += list((extra or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _error(send: Send, status: int, message: str, extra: dict[bytes, bytes] | None = None) -> None:
    await _answer(send, status, json.dumps({"error": message}, ensure_ascii=False).encode(), extra)


def _replaying(body: bytes) -> Receive:
    """A ``receive`` that gives the app the body already read, once, then a disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _read(receive: Receive) -> bytes | None:
    """The whole body (BodyLimit, outside, has bounded it), or None if the client went away."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def form_key(body: bytes) -> str | None:
    """The console form's one-time key (``idempotency_key``), if it carries a usable one."""
    values = parse_qs(body.decode("utf-8", "replace")).get(FORM_FIELD, [])
    text = values[-1].strip() if values else ""
    return text if 0 < len(text) <= KEY_LENGTH else None


def _envelope(start: Message, answer: bytes) -> bytes:
    """A console answer as kept: its headers too (the redirect's Location, the flash message's cookie)."""
    headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in start.get("headers", [])
               if k.lower() != b"content-length"]  # fmt: skip
    return json.dumps({"headers": headers, "body": answer.decode("utf-8", "replace")}).encode()


async def _replay_form(send: Send, status: int, kept: str) -> None:
    envelope = json.loads(kept)
    body = envelope["body"].encode()
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in envelope["headers"]]
    headers += [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Idempotency:
    """See the module: replay by ``Idempotency-Key`` or a console form's key; keyless identical
    incident and inbox actions refused."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        form = scope["type"] == "http" and scope["method"] == "POST" and FORMS.match(path) is not None
        if not form and (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not (path == FEEDBACK or ACTIONS.match(path))
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"idempotency-key")
        actor = await identify(presented(headers), self.token)
        if actor is None or (given is None and path == FEEDBACK):
            await self.app(scope, receive, send)  # the API answers 401 (the console: its login), or acts
            return
        body = await _read(receive)
        if body is None:
            return
        if form:
            await self._form(scope, body, send, actor.name, path)
            return
        # A person's (or a system token's) keys and duplicates are theirs: never replayed to another.
        mine = b"" if not (actor.person or actor.scope) else b"\x00" + actor.name.encode()
        digest = request_hash(path, body + mine)
        if given is None:
            key, expires = f"auto:{digest}", True
        else:
            text = given.decode("latin-1").strip()
            if not 0 < len(text) <= KEY_LENGTH:
                await _error(send, 422, f"Idempotency-Key must be 1 to {KEY_LENGTH} characters")
                return
            key, expires = f"key:{text}", False
            if actor.person:
                mixed = hashlib.sha256(mine + b"\x00" + text.encode()).hexdigest()
                key = f"key:p:{mixed}"
        await self._once(scope, body, send, key, path, digest, expires)

    async def _form(self, scope: Scope, body: bytes, send: Send, who: str, path: str) -> None:
        """A console form: one act per rendered form, whatever else it carries the second time (the
        person may have typed more before clicking again: the first answer says what was done)."""
        nonce = form_key(body)
        if nonce is None:  # not one of the console's own forms (a script's post): acts as ever
            await self.app(scope, _replaying(body), send)
            return
        key = "form:" + hashlib.sha256(f"{who}\x00{nonce}".encode()).hexdigest()
        await self._once(scope, body, send, key, path, request_hash(path, b""), False)

    async def _once(
        self, scope: Scope, body: bytes, send: Send, key: str, path: str, digest: str, expires: bool
    ) -> None:
        waited_until = time.monotonic() + settings.get().idempotency_wait  # for the first answer
        while True:
            try:
                state, row = await run_in_threadpool(_claim, key, path, digest, expires)
            except UNREACHABLE as exc:
                if not unavailable(exc):  # a fault of ours ("no such table"): a 500, logged
                    log.error("idempotency claim of %s failed", path, exc_info=exc)
                    await _error(send, 500, "internal database error; nothing was stored")
                    return
                retry = {b"retry-after": b"5"}
                await _error(send, 503, "database unavailable; nothing was stored, retry shortly", retry)
                return
            if state == "new":
                break
            assert row is not None
            if expires:
                when = "is still being answered" if state == "busy" else f"was answered {row.status}"
                await _error(
                    send,
                    409,
                    f"an identical request {when} at {row.created_at.isoformat()}; nothing more was done "
                    "(to repeat an act on purpose, send a new Idempotency-Key)",
                )
                return
            if row.request_hash != digest:
                await _error(send, 422, f"Idempotency-Key already used for another request ({row.route})")
                return
            if state == "stored":
                assert row.status is not None and row.body is not None
                if key.startswith("form:"):
                    await _replay_form(send, row.status, row.body)
                else:
                    await _answer(send, row.status, row.body.encode(), {b"idempotent-replayed": b"true"})
                return
            if time.monotonic() > waited_until or _abandoned(row):
                await _error(send, 409, _still_busy(row))
                return
            await asyncio.sleep(0.05)
        await self._act(scope, body, send, key, expires)

    async def _act(self, scope: Scope, body: bytes, send: Send, key: str, expires: bool) -> None:
        """Run the action with the body already read, keep its answer, then send it."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, _replaying(body), capture)
        except BaseException:
            await run_in_threadpool(_release, key)  # nothing was answered: a retry may act
            raise
        status, answer = int(start["status"]), b"".join(chunks)
        keep = status < 300 if expires else status < 500
        if scope["path"] == ECHOES and status >= 400:  # its page repeats what was typed: not kept
            keep = False
        kept = _envelope(start, answer) if key.startswith("form:") else answer
        try:
            if keep:
                await run_in_threadpool(_store, key, status, kept)
            else:
                await run_in_threadpool(_release, key)
        except UNREACHABLE as exc:  # the act is done: answer it; the claim stays and refuses repeats
            log.log(logging.WARNING if unavailable(exc) else logging.ERROR,
                    "answer to %s not kept (database error): %s", key, exc)  # fmt: skip
        await send(start)
        await send({"type": "http.response.body", "body": answer, "more_body": False})


def document(app: Any) -> None:
    """Declare the ``Idempotency-Key`` header of the actions in ``/openapi.json`` (read by the middleware)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            header = {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": KEY_LENGTH},
                "description": "A repeat with the same key gets the first answer and has no second effect.",
            }
            for path, operations in schema.get("paths", {}).items():
                post = operations.get("post")
                concrete = re.sub(r"\{\w+\}", "x", path)  # /api/inbox/{feedback_id}/close → …/x/close
                if post is not None and (path == FEEDBACK or ACTIONS.match(concrete)):
                    post.setdefault("parameters", []).append(header)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

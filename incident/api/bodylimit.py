"""Bounded request bodies, counted while they are read: a pure ASGI middleware, outermost.

Why counting and not only ``Content-Length``: a chunked upload has no length header, and a 400 MB
chunked POST to ``/login`` without a token used to be read whole (the API process grew by 300 MB).
Why outermost: the limit must hold before anything (authentication, routing, form parsing) reads
the body, on every route, the console's included.

A body declared over the limit is refused at once; a body that turns out over the limit while it
streams is refused as soon as the byte that crosses it arrives (413 ``{"error": …}``), and the rest of
it is never buffered: the application sees a disconnect if it keeps reading.
"""

from __future__ import annotations

import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised inside the application's ``receive`` once the body crosses the limit."""


def _refusal(limit: int) -> tuple[Message, Message]:
    body = json.dumps({"error": f"request body over {limit} bytes"}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, declared or streamed (chunked)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            for message in _refusal(self.limit):
                await send(message)
            return

        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Whatever the application makes of our exception (FastAPI turns a failed body read into
            # a 400, Starlette an unhandled one into a 500), the answer is the 413.
            nonlocal started
            if refused:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    for refusal in _refusal(self.limit):
                        await send(refusal)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(BodyTooLarge):  # answered below (or by guarded_send already)
            await self.app(scope, counting_receive, guarded_send)
        if refused and not started:
            for message in _refusal(self.limit):
                await send(message)

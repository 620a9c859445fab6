"""``GET /events``: server-sent events that tell an open board or inbox page its data changed.

Why the stream polls the database's version and not an in-process signal: incidents change in the
worker's processes (flow runs, the deadline watcher) as much as in this one, and every replica of the
service must see them. ``board.version`` is three indexed aggregates, read once a second per open
page; an unchanged version costs the browser nothing. A ``tick`` each minute moves the time left on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from incident.console import auth, board
from incident.console.render import secure

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)
POLL_SECONDS = 1.0
TICK_SECONDS = 60.0
STREAM_SECONDS = 600.0  # then the browser's EventSource reconnects by itself (retry below)


def _stopping(request: Request) -> bool:
    """True once the server is stopping (``incident serve`` sets the hook): a stream must not hold it."""
    hook = getattr(request.app.state, "stopping", None)
    return bool(hook and hook())


async def changes(request: Request) -> AsyncIterator[str]:
    seen = await run_in_threadpool(board.version)
    started = last_tick = time.monotonic()
    yield f"retry: 2000\nevent: hello\ndata: {json.dumps(list(seen))}\n\n"
    while time.monotonic() - started < STREAM_SECONDS and not await request.is_disconnected():
        if _stopping(request):
            return
        await asyncio.sleep(POLL_SECONDS)
        now = await run_in_threadpool(board.version)
        if now != seen:
            seen = now
            yield f"event: change\ndata: {json.dumps(list(now))}\n\n"
        elif time.monotonic() - last_tick >= TICK_SECONDS:
            last_tick = time.monotonic()
            yield "event: tick\ndata: {}\n\n"


@router.get("/events")
async def events(request: Request) -> StreamingResponse:
    response = StreamingResponse(changes(request), media_type="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"  # a proxy must not hold the events back
    return secure(response)

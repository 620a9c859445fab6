"""What the console asks Prefect: where each incident's run waits, and the link to its run in the UI.

Why bounded: the console must still show the incident (from our database, the source of truth) when
Prefect is slow or down; the waiting point is then shown as unknown instead of hanging the page.

Why the board keeps what it learnt for a few seconds: one batched query costs about 1 ms per run on
Prefect's side (a full flow-run object each), so for 1,000 open incidents it is about a second. The board
reuses an answer younger than ``FRESH`` seconds, otherwise starts one lookup and waits for it at most
``BUDGET`` seconds; a slower lookup finishes in the background and serves the next load, and the board
says how old its waiting points are. The incident page always asks Prefect directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from uuid import UUID

from fastapi.concurrency import run_in_threadpool
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

log = logging.getLogger(__name__)
PAGE = 200  # Prefect's API refuses larger pages (PREFECT_API_DEFAULT_LIMIT)
TIMEOUT = 3.0
FRESH = 5.0  # seconds a board lookup is reused
BUDGET = 0.5  # seconds the board waits for a new lookup before showing the last one
BACKGROUND_TIMEOUT = 30.0


def ui_run_url(flow_run_id: str | None) -> str | None:
    """``{PREFECT_UI_URL or PREFECT_API_URL without /api}/runs/flow-run/{id}``."""
    if not flow_run_id:
        return None
    base = os.environ.get("PREFECT_UI_URL") or os.environ.get("PREFECT_API_URL") or ""
    base = base.rstrip("/").removesuffix("/api")
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None


async def waiting_point(flow_run_id: str | None) -> str | None:
    """The pause key of one suspended run, None when it is not suspended or Prefect does not answer."""
    if not flow_run_id:
        return None
    from flows.waiting import pause_key

    try:
        return await asyncio.wait_for(pause_key(flow_run_id), TIMEOUT)
    except Exception as exc:  # Prefect unreachable or slow: the page still shows our facts
        log.warning("waiting point of %s unknown: %r", flow_run_id, exc)
        return None


def _lookup(ids: list[UUID]) -> dict[str, str]:
    """In a worker thread: parsing hundreds of flow runs must not hold up the event loop."""
    from flows.waiting import point_of

    found: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), PAGE):
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=ids[start : start + PAGE]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
                ),
                limit=PAGE,
            )
            found.update(
                (str(r.id), point_of(r.state.state_details.pause_key))
                for r in runs
                if r.state and r.state.state_details.pause_key
            )
    return found


async def waiting_points(flow_run_ids: list[str], timeout: float = TIMEOUT) -> dict[str, str] | None:
    """Pause keys of all suspended runs among these, one query per 200 runs; None if Prefect failed."""
    ids = [UUID(i) for i in flow_run_ids if i]
    if not ids:
        return {}
    try:
        return await asyncio.wait_for(run_in_threadpool(_lookup, ids), timeout)
    except Exception as exc:
        log.warning("waiting points unknown: %r", exc)
        return None


@dataclass
class _Known:
    points: dict[str, str] | None = None
    at: float = 0.0  # time.monotonic() of the last lookup that answered
    task: asyncio.Task[None] | None = None


_known = _Known()


async def _refresh(flow_run_ids: list[str]) -> None:
    found = await waiting_points(flow_run_ids, BACKGROUND_TIMEOUT)
    if found is not None:
        _known.points, _known.at = found, time.monotonic()


async def board_points(flow_run_ids: list[str]) -> tuple[dict[str, str] | None, float]:
    """The board's waiting points and their age in seconds (None: Prefect has not answered yet)."""
    if not any(flow_run_ids):
        return {}, 0.0
    if _known.points is None or time.monotonic() - _known.at >= FRESH:
        task = _known.task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = _known.task = asyncio.create_task(_refresh(list(flow_run_ids)))
        with contextlib.suppress(TimeoutError):  # it goes on in the background, for the next load
            await asyncio.wait_for(asyncio.shield(task), BUDGET)
    return _known.points, time.monotonic() - _known.at

"""Accepting feedback in the service: durable record first, then its own Prefect flow run.

In the API process, ``accept`` records the report (``Batcher``: the reports that arrived meanwhile in
one transaction, ``intake.record_many``: that is the durable part) and hands the feedback to the
worker process (flows/worker.py), whose ``Creator`` makes its run: at once for *urgent* feedback (it
opened an incident or raised its level; by the level), in small concurrent batches for the rest (as
many at once as the dispatcher executes runs). Why the 202 does not wait for Prefect: creating a run
is a POST to the Prefect server, which in a storm is also busy executing the runs; waiting for it
would tie intake latency to the run backlog.

The 202 carries ``flow_run_id`` when nothing else waited for its run and it was made within
``INCIDENT_INTAKE_RUN_WAIT`` seconds (a quiet service: the CLI's case), else ``null``;
``GET /api/feedback/{id}`` shows it once made. A feedback whose run was never made (the service
stopped) is found by ``unhandled()`` on the next start; the idempotency key
``<scope>:feedback:<id>`` makes re-creation return the run made before (scoped to the database,
because ids repeat across databases).
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from fastapi.concurrency import run_in_threadpool
from prefect.client.schemas.objects import FlowRun
from prefect.states import Pending
from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from flows import dispatch, runtime
from flows.feedback import handle_feedback
from flows.runtime import CLAIM, ROUTINE
from incident import intake
from models import Feedback, session_scope

log = logging.getLogger(__name__)

WAIT_SECONDS = float(os.environ.get("INCIDENT_INTAKE_RUN_WAIT", "2"))
MAX_BATCH = int(os.environ.get("INCIDENT_INTAKE_BATCH", "200"))
# Errors of the database as a whole (down, unreachable, pool exhausted): every report would fail alike.
SYSTEMIC = (OperationalError, InterfaceError, PoolTimeout)


Waiting = tuple[intake.FeedbackIn, "asyncio.Future[intake.IntakeResult]"]


class Batcher:
    """Records reports in batches: one transaction for everything that arrived while the last one ran.

    Why: recording one report costs ~7 statements and a commit, mostly Python (~8 ms CPU), and in a
    storm the reports about one batch queued on its incident's row lock one by one; ``record_many``
    does a batch in a few statements. One writer per process (replicas meet at the row locks). A
    report the database refuses (not a database that is down) fails alone: the rest are retried one
    by one.
    """

    def __init__(self) -> None:
        self._waiting: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="intake")

    async def record(self, body: intake.FeedbackIn) -> intake.IntakeResult:
        future: asyncio.Future[intake.IntakeResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((body, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            await self._record(batch)

    async def _record(self, batch: list[Waiting]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._thread, intake.record_many, [b for b, _ in batch])
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, SYSTEMIC):
                for item in batch:
                    await self._record([item])
                return
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away; the report is stored all the same
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


_batcher: Batcher | None = None


def batcher() -> Batcher:
    global _batcher
    if _batcher is None:
        _batcher = Batcher()
    return _batcher


async def create_feedback_run(feedback_id: str, priority: int = 2) -> FlowRun:
    """The feedback's ``handle_feedback`` run, created already claimed by this process (Pending)."""
    rt = runtime.current() or await runtime.start()
    async with rt.gate(priority):
        return await rt.create_run(
            handle_feedback,
            parameters={"feedback_id": feedback_id},
            name=feedback_id,
            state=Pending(message=CLAIM.message),
            idempotency_key=f"{rt.scope}:feedback:{feedback_id}",  # ids repeat across databases
        )


def _remember(pairs: list[tuple[str, str]]) -> None:
    with session_scope() as s:
        s.execute(update(Feedback), [{"id": fid, "flow_run_id": rid} for fid, rid in pairs])


class Creator:
    """Makes the runs of accepted feedback in the background, urgent ones (by level) first."""

    def __init__(self, concurrency: int) -> None:
        self._batch = max(1, concurrency)  # runs created at once: the same budget as runs executed
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[str | None]]] = asyncio.Queue()
        self._busy = 0
        self._urgent: set[asyncio.Task[None]] = set()
        self._workers = [asyncio.create_task(self._work())]

    @property
    def idle(self) -> bool:
        return self._queue.empty() and self._busy == 0 and not self._urgent

    def enqueue(self, feedback_id: str, priority: int) -> asyncio.Future[str | None]:
        """The future gives the run's id once made and recorded (None if it could not be made)."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        if priority != ROUTINE:
            task = asyncio.create_task(self._make([(feedback_id, future)], priority))
            self._urgent.add(task)
            task.add_done_callback(self._urgent.discard)
        else:
            self._queue.put_nowait((feedback_id, future))
        return future

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy += 1
            try:
                await self._make(batch, ROUTINE)
            finally:
                self._busy -= 1

    async def _make(self, batch: list[tuple[str, asyncio.Future[str | None]]], priority: int) -> None:
        made = await asyncio.gather(
            *(create_feedback_run(fid, priority) for fid, _ in batch), return_exceptions=True
        )
        pairs: list[tuple[str, str]] = []
        for (fid, _), run in zip(batch, made, strict=True):
            if isinstance(run, BaseException):
                log.error("flow run for %s not created (handled again on restart): %s", fid, run)
                continue
            pairs.append((fid, str(run.id)))
            dispatch.submit(run, priority)
        if pairs:
            try:
                await run_in_threadpool(_remember, pairs)
            except Exception:
                log.exception("could not record the flow runs of %d feedback", len(pairs))
        for (_, future), run in zip(batch, made, strict=True):
            if not future.done():
                future.set_result(None if isinstance(run, BaseException) else str(run.id))

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)


class RunMaker(Protocol):
    """What makes the runs of accepted feedback: the worker's ``Creator``, or in the API process the
    worker itself (flows/worker.py), which creates them with its own."""

    @property
    def idle(self) -> bool: ...

    def enqueue(self, feedback_id: str, priority: int) -> asyncio.Future[str | None]: ...


_maker: RunMaker | None = None


def start(concurrency: int) -> Creator:
    creator = Creator(concurrency)
    hand_to(creator)
    return creator


def hand_to(maker: RunMaker) -> None:
    global _maker
    _maker = maker


async def start_feedback_run(feedback_id: str, priority: int = 2) -> str | None:
    """Create (or find) the run now, or queue it when a maker runs; None until it exists."""
    if _maker is not None:
        future = _maker.enqueue(feedback_id, priority)
        return await asyncio.shield(future) if priority != ROUTINE else None
    run = await create_feedback_run(feedback_id, priority)
    await run_in_threadpool(_remember, [(feedback_id, str(run.id))])
    dispatch.submit(run, priority)
    return str(run.id)


async def accept(body: intake.FeedbackIn) -> dict[str, Any]:
    result = await batcher().record(body)
    urgent = result.opened or result.raised_from is not None
    priority = (result.level or 2) if urgent else ROUTINE
    flow_run_id: str | None = None
    if _maker is None:
        flow_run_id = await start_feedback_run(result.feedback_id, priority)
    else:
        wait = _maker.idle  # nobody ahead of us: Prefect keeps up, so the id comes quickly
        future = _maker.enqueue(result.feedback_id, priority)
        if wait and WAIT_SECONDS > 0:
            try:
                flow_run_id = await asyncio.wait_for(asyncio.shield(future), WAIT_SECONDS)
            except TimeoutError:
                flow_run_id = None
    return {**result.as_json(), "flow_run_id": flow_run_id}


def status(feedback_id: str) -> dict[str, Any]:
    """Where one feedback is: its incident, its flow run (once made) and whether it was handled."""
    from incident.errors import NotFound

    with session_scope() as s:
        fb = s.get(Feedback, feedback_id)
        if fb is None:
            raise NotFound(f"no feedback {feedback_id}")
        return {
            "feedback_id": fb.id,
            "incident_id": fb.incident_id,
            "kind": fb.kind,
            "category": fb.category,
            "received_at": fb.received_at.isoformat(),
            "opened_incident": fb.opened_incident,
            "raised_from": fb.raised_from,
            "flow_run_id": fb.flow_run_id,
            "handled_at": fb.handled_at.isoformat() if fb.handled_at else None,
        }


async def unhandled() -> list[str]:
    """Feedback accepted but not handled (the service stopped in between): handled again on start."""
    with session_scope() as s:
        return list(s.scalars(select(Feedback.id).where(Feedback.handled_at.is_(None)).order_by(Feedback.id)))

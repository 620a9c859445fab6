"""Accepting feedback in the service: the durable record first, then the 202.

``accept`` records the report (``Batcher``: the reports that arrived meanwhile in one transaction,
``intake.record_many``: that is the durable part) and answers. Its ``handle_feedback`` flow run is
made by a worker, which finds the row (incident/engine/queue.py), or, for a report that opens or raises
a level-1 incident, at once by the service's urgent process (``_handle_now``). Why the 202 does not wait for
Prefect: creating and executing runs is what Prefect is busy with in a storm; waiting for it would
tie intake latency to the run backlog, and a Prefect outage would refuse complaints.

When nothing else was being accepted (a quiet service: the CLI's case) the 202 waits for the feedback
to be handled, ``INCIDENT_INTAKE_RUN_WAIT`` seconds at most, and carries ``flow_run_id`` and
``incident_flow_run_id`` as far as they were made by then; else both are ``null``.
``GET /api/feedback/{id}`` shows them once made.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from incident import settings
from incident.feedback import service as intake
from incident.feedback.inputs import FeedbackIn
from models import Feedback, Incident, session_scope

# Errors of the database as a whole (down, unreachable, pool exhausted): every report would fail alike.
SYSTEMIC = (OperationalError, InterfaceError, PoolTimeout)


Waiting = tuple[FeedbackIn, "asyncio.Future[intake.IntakeResult]"]


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
        self.in_flight = 0  # reports being accepted now: one alone means a quiet service
        self._writer: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="intake")

    async def record(self, body: FeedbackIn) -> intake.IntakeResult:
        future: asyncio.Future[intake.IntakeResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((body, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        most = settings.get().intake_batch
        while self._waiting:
            batch, self._waiting = self._waiting[:most], self._waiting[most:]
            await self._record(batch)

    async def _record(self, batch: list[Waiting]) -> None:
        loop = asyncio.get_running_loop()
        bodies, claimant = [b for b, _ in batch], _claimant()
        try:
            results = await loop.run_in_executor(self._thread, intake.record_many, bodies, None, claimant)
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


def runs_of(feedback_id: str) -> tuple[bool, str | None, str | None]:
    """Handled yet, the feedback's run, and its incident's run."""
    with session_scope() as s:
        fb = s.get_one(Feedback, feedback_id)
        inc = s.get(Incident, fb.incident_id) if fb.incident_id else None
        return fb.handled_at is not None, fb.flow_run_id, inc.flow_run_id if inc else None


async def _wait_for_runs(feedback_id: str) -> tuple[str | None, str | None]:
    deadline = time.monotonic() + settings.get().intake_run_wait
    while True:
        handled, run_id, incident_run_id = await run_in_threadpool(runs_of, feedback_id)
        if handled or time.monotonic() >= deadline:
            return run_id, incident_run_id
        await asyncio.sleep(0.05)


async def accept(body: FeedbackIn) -> dict[str, Any]:
    writer = batcher()
    writer.in_flight += 1
    try:
        result = await writer.record(body)
        quiet = writer.in_flight == 1
    finally:
        writer.in_flight -= 1
    if result.claimed_by:
        await _handle_now(result)
    run_id = incident_run_id = None
    if quiet and settings.get().intake_run_wait > 0:
        run_id, incident_run_id = await _wait_for_runs(result.feedback_id)
    return {**result.as_json(), "flow_run_id": run_id, "incident_flow_run_id": incident_run_id}


_URGENT: set[asyncio.Task[bool]] = set()  # kept until done: the loop holds tasks only weakly


def _claimant() -> str:
    """In whose name a batch's level-1 reports are claimed: the urgent process once it is ready, else
    this process, which then runs them itself."""
    from incident.engine import queue, urgent

    return urgent.claimant() or queue.WORKER_ID


async def _handle_now(result: intake.IntakeResult) -> None:
    """A report that opened a level-1 incident or raised one to level 1 (the leadership must be told
    within a second) gets its ``handle_feedback`` flow run at once, instead of waiting for a worker's
    turn behind a storm's reports (the worker is niced below intake, and busy): in the service's urgent
    process (incident/engine/urgent.py), or here while that is not ready. Its row was claimed for
    either in intake's own transaction. Rare by nature (once per incident at most). If the process
    that runs it dies, a worker takes the row over at once; if the run fails, at its next poll (the
    claim is given back: ``queue.handle_here``)."""
    from incident.engine import queue, urgent

    if result.claimed_by != queue.WORKER_ID:
        urgent.wake()
        return
    job = queue.Job(result.feedback_id, result.incident_id, urgent=True)
    # in a thread with its own loop: the flow's database calls block only it
    task = asyncio.create_task(asyncio.to_thread(asyncio.run, queue.handle_here(job)))
    _URGENT.add(task)
    task.add_done_callback(_URGENT.discard)

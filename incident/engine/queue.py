"""Feedback waiting for its ``handle_feedback`` run: the database is the queue.

Why the database and not a pipe or a message broker: a feedback is accepted (202) only once its row
is committed, so the row *is* the durable job. Any worker, on any machine, takes rows that have no
run yet with a compare-and-set claim (``UPDATE … WHERE claimed_by IS <what it saw>``): two workers
never take the same row, a worker that died leaves claims that are taken over (at once on its own
host, where its pid is known to be gone; after ``INCIDENT_STALE_CLAIM_SECONDS`` elsewhere), and a
database or Prefect outage only delays the rows, which are still there when it is over. Each row is
then handled by an in-process call of the ``handle_feedback`` flow: a real Prefect flow run, without
a process to start per feedback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from incident import settings
from incident.engine.burst import LEAST, Burst, arrived
from incident.metrics.process import FEEDBACK_RUNS
from models import Feedback, Incident, session_scope, utcnow

log = logging.getLogger("incident.queue")

HOST = socket.gethostname()
WORKER_ID = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Job:
    feedback_id: str
    incident_id: str | None
    urgent: bool  # it opened an incident or raised its level: someone must be told now


def _dead_on_this_host(claimant: str) -> bool:
    host, _, rest = claimant.partition(":")
    pid = rest.partition(":")[0]
    if host != HOST or not pid.isdigit() or claimant == WORKER_ID:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return int(pid) == os.getpid()  # an earlier life of this very pid


def _free(claimant: str | None, at: datetime | None, now: datetime, mine: set[str], fid: str) -> bool:
    """May this row be taken now?"""
    if claimant is None or at is None:
        return True
    if claimant == WORKER_ID:  # ours, but its run failed: try again after a sweep period
        return fid not in mine and at < now - timedelta(seconds=settings.get().sweep_seconds)
    return _dead_on_this_host(claimant) or at < now - timedelta(seconds=settings.get().stale_claim_seconds)


def _due(urgent: bool, level: int | None, levels: int) -> bool:
    """An urgent report whose level is one of the ``levels`` most severe."""
    return urgent and (level or 3) <= levels


def claim(
    limit: int,
    running: set[str],
    now: datetime | None = None,
    routine_limit: int | None = None,
    urgent_levels: int = 3,
    young: float = 0.0,
) -> list[Job]:
    """Up to ``limit`` feedback without a run, urgent first (it opened an incident or raised one), of
    which at most ``routine_limit`` routine ones (the rows come urgent first, so it stops there). An
    urgent report that set a level below ``urgent_levels`` counts as routine (a burst holds it), even
    when a later report raised its incident further.
    Reports received less than ``young`` seconds ago wait for a later poll, but level-1 ones (``Pump``)."""
    now = now or utcnow()
    newest = now - timedelta(seconds=young)
    # the level the report itself set; a report recorded before it was kept (0015): its incident's now
    level = func.coalesce(Feedback.set_level, Incident.level)
    taken: list[Job] = []
    with session_scope() as s:
        rows = s.execute(
            select(
                Feedback.id,
                Feedback.incident_id,
                Feedback.claimed_by,
                Feedback.claimed_at,
                Feedback.opened_incident,
                Feedback.raised_from,
                level,
                Feedback.received_at,
            )
            .outerjoin(Incident, Incident.id == Feedback.incident_id)
            .where(Feedback.handled_at.is_(None))
            # urgent first and, among them, the most severe: an L1 raise before twenty L3 openings
            .order_by(
                or_(Feedback.opened_incident, Feedback.raised_from.is_not(None)).desc(),
                level,
                Feedback.id,
            )
            .limit(limit + len(running) + 50)
        ).all()
        for fid, incident_id, claimant, at, opened, raised_from, set_level, received in rows:
            urgent = bool(opened or raised_from)
            now_due = _due(urgent, set_level, urgent_levels)  # rows of one kind come level by level
            if len(taken) >= limit or (routine_limit is not None and not now_due and routine_limit <= 0):
                break
            level_1 = _due(urgent, set_level, 1)  # what a burst would start too
            too_young = young > 0 and not level_1 and received > newest  # a storm may be starting
            if fid in running or too_young or not _free(claimant, at, now, running, fid):
                continue
            seen = Feedback.claimed_by.is_(None) if claimant is None else Feedback.claimed_by == claimant
            won = s.execute(
                update(Feedback)
                .where(Feedback.id == fid, Feedback.handled_at.is_(None), seen)
                .values(claimed_by=WORKER_ID, claimed_at=now)
            ).rowcount
            if won:
                taken.append(Job(fid, incident_id, urgent))
                if routine_limit is not None and not now_due:
                    routine_limit -= 1
    return taken


def _mine_unhandled() -> ColumnElement[bool]:
    return and_(Feedback.claimed_by == WORKER_ID, Feedback.handled_at.is_(None))


def handed_over(running: set[str]) -> list[Job]:
    """The rows claimed in this process's name that it is not running: what the API handed to the
    urgent process (``intake.record_many(claimant=)``)."""
    with session_scope() as s:
        rows = s.execute(
            select(Feedback.id, Feedback.incident_id, Feedback.opened_incident, Feedback.raised_from).where(
                _mine_unhandled()
            )
        ).all()
    return [
        Job(r.id, r.incident_id, bool(r.opened_incident or r.raised_from))
        for r in rows
        if r.id not in running
    ]


def beat(feedback_ids: list[str], now: datetime | None = None) -> int:
    """Keep this process's claims on these rows fresh: a run that takes longer than
    ``INCIDENT_STALE_CLAIM_SECONDS`` is not taken over by another worker while it still runs."""
    with session_scope() as s:
        done = s.execute(
            update(Feedback)
            .where(
                Feedback.id.in_(feedback_ids), Feedback.claimed_by == WORKER_ID, Feedback.handled_at.is_(None)
            )
            .values(claimed_at=now or utcnow())
        )
        return int(done.rowcount or 0)


def release(feedback_id: str) -> bool:
    """Give this process's claim on the row back: any worker takes it at its next poll."""
    with session_scope() as s:
        done = s.execute(
            update(Feedback)
            .where(
                Feedback.id == feedback_id, Feedback.claimed_by == WORKER_ID, Feedback.handled_at.is_(None)
            )
            .values(claimed_by=None, claimed_at=None)
        )
        return bool(done.rowcount)


def beat_every() -> float:
    return settings.get().stale_claim_seconds / 4


@contextlib.asynccontextmanager
async def beating(feedback_id: str, every: float | None = None) -> AsyncIterator[None]:
    """While the block runs, ``beat`` its claim every quarter of the stale-claim time (a run that
    ends sooner, nearly all of them, never beats). A beat the database refuses is tried at the next."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every or beat_every())
            try:
                await asyncio.to_thread(beat, [feedback_id])
            except SQLAlchemyError as exc:
                log.warning("claim of %s not refreshed: %s", feedback_id, exc.__class__.__name__)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()


def warm_up() -> None:
    """Import now what a process's first ``handle_feedback`` run would import mid-run, and read the
    playbooks. Measured (py-spy of the urgent process in a storm): three quarters of a level-1 report's
    first run was this, 0.3 s of CPU while intake needed the cores; ``fastapi.encoders`` alone, which
    Prefect's ``Flow.serialize_parameters`` imports at a flow's first call, was 0.17 s."""
    import fastapi.encoders  # noqa: F401
    import prefect.flow_engine  # noqa: F401
    import prefect.utilities.visualization  # noqa: F401

    import flows.feedback  # noqa: F401
    import playbooks
    from notifiers import roster

    playbooks.load_all()
    with contextlib.suppress(roster.RosterError):  # the service logged it; each notice will too
        roster.check()  # loads apprise's plugins


async def handle(job: Job) -> bool:
    """One ``handle_feedback`` flow run, in this process, its claim kept fresh while it runs; False
    when it failed (the row stays claimed and is tried again after a sweep period, by this process
    or, once it is gone, by any worker)."""
    from prefect import tags

    from flows.feedback import handle_feedback
    from incident.engine.zombies import service_tag

    try:
        labels = [f"incident:{job.incident_id}"] if job.incident_id else []
        async with beating(job.feedback_id):
            with tags("feedback", service_tag(), *labels):
                await handle_feedback(job.feedback_id)
    except Exception:  # logged with its traceback; the row is tried again (see above)
        log.exception("feedback %s not handled; it is tried again", job.feedback_id)
        FEEDBACK_RUNS.labels("failed").inc()
        return False
    FEEDBACK_RUNS.labels("handled").inc()
    return True


async def handle_here(job: Job, give_up_after: float | None = None) -> bool:
    """``handle`` for a process that is no worker (the API, for an urgent report): when the run fails
    (Prefect or the database away) the claim is given back at once, so a worker's queue takes the row
    at its next poll instead of after ``INCIDENT_STALE_CLAIM_SECONDS``; while the database refuses even
    that, it is tried every second (until the claim would be stale anyway)."""
    if await handle(job):
        return True
    limit = asyncio.get_running_loop().time() + (give_up_after or settings.get().stale_claim_seconds)
    while True:
        try:
            await asyncio.to_thread(release, job.feedback_id)
            return False
        except SQLAlchemyError as exc:
            if asyncio.get_running_loop().time() > limit:
                log.warning("claim of %s left to go stale: %s", job.feedback_id, exc.__class__.__name__)
                return False
            await asyncio.sleep(1.0)


class Pump:
    """Keeps ``concurrency`` feedback runs going while the queue has work; idles with a short poll.

    One more slot is kept for urgent feedback (an L1 raise in a storm must not wait behind routine
    runs: its notice is due within a second); while reports arrive in a burst, routine runs wait
    (incident/engine/burst.py). The runs ship no logs to Prefect's API: two lines of
    boilerplate each, and in a storm a thousand API calls the server has better use for.
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.running: set[str] = set()
        self.routine: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.handled = 0
        self.burst = Burst()

    async def run_forever(self) -> None:
        from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

        with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: False}):  # runs started here
            await self._pump()

    async def _pump(self) -> None:
        poll, loop = settings.get().queue_poll_seconds, asyncio.get_running_loop()
        while True:
            free = self.concurrency + 1 - len(self.running)  # the extra slot: urgent only
            routine = self.concurrency - len(self.routine)
            jobs: list[Job] = []
            if free > 0:
                try:
                    levels = 3
                    if self.burst.holding(await asyncio.to_thread(arrived), loop.time()):
                        routine, levels = 0, 1  # a burst: level-1 runs only (incident/engine/burst.py)
                    young = LEAST if self.burst.rising() else 0.0  # a storm may be starting: see first
                    running = set(self.running)
                    jobs = await asyncio.to_thread(claim, free, running, None, routine, levels, young)
                except SQLAlchemyError as exc:  # the database is away: the rows wait for it
                    log.warning("feedback queue unreadable, retrying: %s", exc.__class__.__name__)
                    await asyncio.sleep(1.0)
                    continue
            for job in jobs:
                self.running.add(job.feedback_id)
                if not job.urgent:
                    self.routine.add(job.feedback_id)
                task = asyncio.create_task(self._handle(job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(jobs) < min(free, max(routine, 0) + 1) or free == 0:  # queue empty, or slots busy
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll)

    async def _handle(self, job: Job) -> None:
        try:
            self.handled += await handle(job)
        finally:
            self.running.discard(job.feedback_id)
            self.routine.discard(job.feedback_id)
            self._wake.set()

    async def finish(self, grace: float) -> int:
        """Give the runs in flight ``grace`` seconds; the number left (their rows are taken over)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        return len(self.running)

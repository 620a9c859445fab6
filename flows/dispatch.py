"""Runs our flow runs inside the service process, instead of one subprocess per run.

Why in-process: importing Prefect alone takes ~2 s on this machine, and a suspended incident run is
resumed once per human step; in-process a resume costs ~0.3 s.

Several ``incident serve`` replicas may share one Prefect server, so a run is executed only after
this process *claimed* it through Prefect's orchestration, the way Prefect's own workers do: it
proposes ``Pending`` with a message naming this process, and the server's PreventPendingTransitions
rule rejects every second claimant. Runs this process creates for its own intake are created
already Pending and claimed (one API call fewer per run); everything else (runs resumed from the
CLI, the API or Prefect's UI, runs left behind by a crash) is found Scheduled by a poll and claimed.

Priorities: runs of an incident go by its level (an L1 raise first; a person's answer to a waiting
run likewise) and never wait behind a storm of routine ``handle_feedback`` runs, which go through a
bounded pool of workers. All of them share one gate with the creation of intake runs (runtime.Gate).
Each run executes in a fresh context holding only the shared Prefect client and its run settings,
so nothing of the submitting code's context (another flow run's) leaks into it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import Pause
from prefect.flow_engine import run_flow_async
from prefect.states import Pending, Scheduled

from flows import runtime
from flows.runtime import CLAIM, ROUTINE, Claim, Gate, Runtime

log = logging.getLogger(__name__)

# Routine runs executing at once, by the database of the Prefect server. Measured (no-op runs): on
# PostgreSQL 1 → 9/s, 2 → 16/s, 4 → 16/s, 8 → 13.5/s (the server is one process: more only queues
# there); on SQLite 1 → 10-12/s, 2 → 6-9/s, 12 → 1.7/s ("database is locked" → 503 → client backoff).
CONCURRENCY = {"postgresql": 4, "sqlite": 1, "unknown": 4}


def default_limit(prefect_database: str = "unknown") -> int:
    """``INCIDENT_RUN_CONCURRENCY``, else what suits the Prefect server's database."""
    configured = os.environ.get("INCIDENT_RUN_CONCURRENCY")
    return max(1, int(configured)) if configured else CONCURRENCY.get(prefect_database, 4)


# A Running/Pending run whose claimant is another live process is taken over only after this long.
STALE_SECONDS = float(os.environ.get("INCIDENT_STALE_CLAIM_SECONDS", "900"))
CHECK_AFTER = 30.0  # runs younger than this are never looked at by the periodic sweep
CRASHED_WITHIN = timedelta(hours=1)  # the periodic sweep replays runs that crashed this recently
MAX_CRASHES = 3
SWEEP_SECONDS = 60.0


def _flows() -> dict[str, Flow[Any, Any]]:
    from flows.deadlines import watch_deadlines
    from flows.feedback import handle_feedback
    from flows.incident import incident_response

    return {f.name: f for f in (incident_response, handle_feedback, watch_deadlines)}


@dataclass
class Item:
    id: str
    run: FlowRun | None  # known already (just created or polled): saves reading it again


class Dispatcher:
    def __init__(self, rt: Runtime, limit: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.runtime = rt
        self.limit = limit
        rt.gate = Gate(limit)  # shared with the creator of intake runs
        self.flows = _flows()
        self._routine: asyncio.Queue[Item] = asyncio.Queue()
        self._known: set[str] = set()  # queued or executing here
        self._tasks: set[asyncio.Task[None]] = set()
        self._executing = 0
        self._closing = False  # finishing what runs; nothing new starts
        self._flow_names: dict[UUID, str] = {}
        self._workers = [self.loop.create_task(self._work(), context=rt.context()) for _ in range(limit)]

    # -- submitting -------------------------------------------------------------------------------

    def submit(self, run: str | UUID | FlowRun, priority: int | None = None) -> None:
        """Thread-safe: execute the run here soon, if this process can claim it.

        ``priority``: the incident's level (1 first) or ``ROUTINE``; by default the level in an
        incident run's name (``INC…-L1-…``), else 2.
        """
        item = Item(str(run.id), run) if isinstance(run, FlowRun) else Item(str(run), None)
        self.loop.call_soon_threadsafe(self._spawn, item, priority)

    def _spawn(self, item: Item, priority: int | None) -> None:
        if item.id in self._known:
            return
        self._known.add(item.id)
        if priority == ROUTINE:
            self._routine.put_nowait(item)
            return
        task = self.loop.create_task(self._execute_urgent(item, priority), context=self.runtime.context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def backlog(self) -> int:
        return len(self._known)

    # -- executing --------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            item = await self._routine.get()
            try:
                async with self.runtime.gate(ROUTINE):
                    await self._execute(item)
            finally:
                self._routine.task_done()

    async def _execute_urgent(self, item: Item, priority: int | None) -> None:
        if priority is None:
            try:
                item.run = item.run or await self.runtime.client.read_flow_run(UUID(item.id))
            except Exception:
                log.exception("flow run %s could not be read", item.id)
                self._known.discard(item.id)
                return
            level = re.search(r"-L([123])-", item.run.name or "")
            priority = int(level[1]) if level else 2
        async with self.runtime.gate(priority):
            await self._execute(item)

    async def _flow_name(self, flow_id: UUID) -> str:
        if flow_id not in self._flow_names:
            self._flow_names[flow_id] = (await self.runtime.client.read_flow(flow_id)).name
        return self._flow_names[flow_id]

    async def _claim(self, run: FlowRun) -> bool:
        """Ours to execute: created claimed by us, or Scheduled and our Pending proposal accepted."""
        state = run.state
        if state is None:
            return False
        if state.type == StateType.PENDING:
            return Claim.parse(state.message) == CLAIM
        if state.type != StateType.SCHEDULED:
            return False
        result = await self.runtime.client.set_flow_run_state(run.id, Pending(message=CLAIM.message))
        if result.status != SetStateStatus.ACCEPT or result.state is None or not result.state.is_pending():
            log.debug("run %s claimed elsewhere: %s", run.id, result.details)
            return False
        run.state = result.state
        return True

    async def _execute(self, item: Item) -> None:
        name, run = "", item.run
        try:
            run = run or await self.runtime.client.read_flow_run(UUID(item.id))
            name = await self._flow_name(run.flow_id)
            flow = self.flows.get(name)
            if flow is None or self._closing or not await self._claim(run):
                return
            self._executing += 1
            try:
                await self.loop.create_task(self._run(flow, run), context=self.runtime.context(name))
            finally:
                self._executing -= 1
        except Exception:
            log.exception("flow run %s (%s) could not be executed", item.id, name)
        finally:
            self._known.discard(item.id)
        incident_id = run.parameters.get("incident_id") if run else None
        if name == "incident_response" and incident_id:
            from flows.waiting import nudge

            await nudge(incident_id)  # an answer that came while it ran

    async def _run(self, flow: Flow[Any, Any], run: FlowRun) -> None:
        try:
            await run_flow_async(flow, flow_run=run, parameters=run.parameters, return_type="state")
        except Pause:
            pass
        except Exception:
            log.exception("flow run %s (%s) raised", run.id, flow.name)

    # -- finding work -----------------------------------------------------------------------------

    async def _runs(
        self,
        states: list[StateType],
        due_only: bool,
        untagged: bool = False,
        ended_after: datetime | None = None,
    ) -> list[FlowRun]:
        """Our flows' runs in these states: of this product database, or (``untagged``) of nobody's."""
        tags = FlowRunFilterTags(is_null_=True) if untagged else FlowRunFilterTags(all_=[self.runtime.scope])
        run_filter = FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states)), tags=tags
        )
        if due_only:
            run_filter.expected_start_time = FlowRunFilterExpectedStartTime(before_=datetime.now(UTC))
        if ended_after:
            run_filter.end_time = FlowRunFilterEndTime(after_=ended_after)
        return await self.runtime.client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(self.flows))),
            flow_run_filter=run_filter,
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )

    async def poll_once(self, untagged: bool = False) -> int:
        """Scheduled runs that are due: claimed here unless another replica is faster.

        ``untagged``: runs made without our scope tag (Prefect's UI, older versions); looked for less often.
        """
        runs = await self._runs([StateType.SCHEDULED], due_only=True, untagged=untagged)
        for run in runs:
            name = await self._flow_name(run.flow_id)
            self._spawn(Item(str(run.id), run), ROUTINE if name == "handle_feedback" else None)
        return len(runs)

    async def _claimant(self, run: FlowRun) -> Claim | None:
        assert run.state is not None
        if run.state.type == StateType.PENDING:
            return Claim.parse(run.state.message)
        states = await self.runtime.client.read_flow_run_states(run.id)
        pending = [s for s in states if s.type == StateType.PENDING]
        return Claim.parse(pending[-1].message) if pending else None

    async def recover(self, startup: bool = False) -> int:
        """Reschedule Running/Pending runs whose executor is gone; they replay safely.

        Gone means: claimed by a dead process on this host (known at once), or claimed elsewhere (or
        by nobody) and unchanged for ``INCIDENT_STALE_CLAIM_SECONDS``. A live replica's runs are
        left alone, so a replica starting never steals what another is executing.
        """
        now = datetime.now(UTC)
        rescheduled = 0
        candidates = [
            *await self._runs([StateType.RUNNING, StateType.PENDING], due_only=False),
            *await self._runs([StateType.RUNNING, StateType.PENDING], due_only=False, untagged=True),
        ]
        for run in candidates:
            assert run.state is not None
            age = (now - run.state.timestamp).total_seconds()
            if str(run.id) in self._known or (not startup and age < CHECK_AFTER):
                continue
            claim = await self._claimant(run)
            if claim == CLAIM:
                stale = age >= CHECK_AFTER  # ours but lost track of it
            else:
                stale = (claim is not None and claim.is_dead()) or age > STALE_SECONDS
            if stale:
                await self.runtime.client.set_flow_run_state(run.id, Scheduled(), force=True)
                rescheduled += 1
        return rescheduled + await self._retry_crashed(None if startup else now - CRASHED_WITHIN)

    async def _retry_crashed(self, ended_after: datetime | None) -> int:
        """Runs that Crashed (the process under them went away: a worker stopped mid-run, the Prefect
        server unreachable) are replayed, up to ``MAX_CRASHES`` times each; a run that *Failed* raised
        in our code and is left for a person to look at."""
        retried = 0
        for run in await self._runs([StateType.CRASHED], due_only=False, ended_after=ended_after):
            if str(run.id) in self._known:
                continue
            states = await self.runtime.client.read_flow_run_states(run.id)
            if sum(1 for state in states if state.type == StateType.CRASHED) >= MAX_CRASHES:
                continue
            await self.runtime.client.set_flow_run_state(run.id, Scheduled(), force=True)
            retried += 1
        return retried

    async def poll_forever(self, interval: float) -> None:
        swept = asyncio.get_running_loop().time()
        while True:
            try:
                await self.poll_once()
                if self.loop.time() - swept > SWEEP_SECONDS:
                    swept = self.loop.time()
                    await self.recover()
                    await self.poll_once(untagged=True)
            except Exception:
                log.exception("dispatcher poll failed")
            await asyncio.sleep(interval)

    async def finish(self, grace: float) -> int:
        """Start nothing more and give the runs executing here ``grace`` seconds to end; the number
        still executing after it (they end Crashed and are replayed by ``recover``). What is queued
        stays claimed by this process: once it is gone, the next dispatcher's recovery takes it."""
        self._closing = True
        deadline = self.loop.time() + grace
        while self._executing and self.loop.time() < deadline:
            await asyncio.sleep(0.1)
        return self._executing


_current: Dispatcher | None = None


async def start(prefect_database: str = "unknown") -> Dispatcher:
    """The process's dispatcher, with its shared Prefect client (see flows/runtime.py)."""
    global _current
    rt = runtime.current() or await runtime.start()
    rt.enter()
    _current = Dispatcher(rt, default_limit(prefect_database))
    return _current


def current() -> Dispatcher | None:
    return _current


_link: Callable[[str | UUID | FlowRun, int | None], None] | None = None


def hand_over(link: Callable[[str | UUID | FlowRun, int | None], None]) -> None:
    """This process executes no runs: ``submit`` passes them to its worker (flows/worker.py)."""
    global _link
    _link = link


def submit(run: str | UUID | FlowRun, priority: int | None = None) -> None:
    """Run it here if this process dispatches, else in its worker; failing both, a poll finds it."""
    if _current is not None:
        _current.submit(run, priority)
    elif _link is not None:
        _link(run, priority)

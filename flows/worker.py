"""The worker: the process of ``incident serve`` that talks to Prefect and executes the flow runs.

Why a process of its own: a 202 from ``POST /api/feedback`` is what a caller waits for, while a flow
run is Python work (the Prefect engine, records rendered, notices). In one process the two shared
one GIL and one event loop, and in a storm of 200 reports/s the runs pushed intake's p99 to
seconds. So the API process records the reports, and this process creates their runs and executes
them, at a lower scheduling priority (``INCIDENT_BACKGROUND_NICE``, as the Prefect server that
``incident serve`` starts): when the cores are busy, intake goes first; when they are not, the runs
get all that is left. Creating and executing stay in one process on purpose: on an SQLite Prefect
server two writers at once collide ("database is locked" → 503 → the client backs off for seconds),
so they take turns at one ``runtime.Gate``. The deadline watcher and the recovery after a crash run
here too.

Two pipes, one JSON object a line. The API process writes to this process's stdin: a feedback whose
run to make (``{"feedback", "priority"}``), or a run to execute (``{"id", "priority", "run"}``: a run
resumed by a person). This process answers on the reply pipe: ``{"ready": true}`` once it takes
work, then ``{"feedback", "flow_run_id"}`` as each run is made. Work handed over while this process
was down is found by the next one's recovery (feedback without a run; runs claimed by a dead process).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun

if TYPE_CHECKING:
    from flows.dispatch import Dispatcher
    from flows.intake_runs import Creator

log = logging.getLogger("incident.worker")
WATCH_SECONDS = float(os.environ.get("INCIDENT_WATCH_SECONDS", "5"))
POLL_SECONDS = float(os.environ.get("INCIDENT_POLL_SECONDS", "2"))
REPLY_FD = "INCIDENT_WORKER_REPLY_FD"
FINISH_SECONDS = 10.0  # on stop, the runs executing get this long to end; nothing new starts
# Importing Prefect and our flows takes ~5 s here. The API waits for it: a report accepted before the
# worker runs would wait that long for its run (measured: a storm's L1 notice, at once after start).
READY_TIMEOUT = 120.0


# -- in the API process -----------------------------------------------------------------------------


class Worker:
    """The API process's side: starts the worker, hands it work, starts another if it dies."""

    def __init__(self, prefect_db: str, preexec: Callable[[], None]) -> None:
        """``preexec``: run in the child before it starts (dies with the API process; nice)."""
        self.prefect_db, self.preexec = prefect_db, preexec
        self.proc: subprocess.Popen[bytes] | None = None
        self._to_worker: asyncio.WriteTransport | None = None
        self._replies: asyncio.StreamReader | None = None
        self._made: dict[str, asyncio.Future[str | None]] = {}  # feedback handed over, run not made yet
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        from flows import dispatch, intake_runs

        reply_r, reply_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flows.worker"],
            env={**os.environ, "INCIDENT_PREFECT_DB": self.prefect_db, REPLY_FD: str(reply_w)},
            stdin=subprocess.PIPE,
            pass_fds=(reply_w,),
            preexec_fn=self.preexec,
        )
        os.close(reply_w)
        assert self.proc.stdin is not None
        loop = asyncio.get_running_loop()
        self._to_worker, _ = await loop.connect_write_pipe(asyncio.Protocol, self.proc.stdin)
        self._replies = asyncio.StreamReader()
        reader = asyncio.StreamReaderProtocol(self._replies)
        await loop.connect_read_pipe(lambda: reader, os.fdopen(reply_r, "rb"))
        try:
            ready = await asyncio.wait_for(self._replies.readline(), READY_TIMEOUT)
        except TimeoutError:
            ready = b""
        if not ready.startswith(b'{"ready"'):
            self.proc.kill()
            raise RuntimeError(f"the flow worker did not start within {READY_TIMEOUT:.0f} s; see the log")
        dispatch.hand_over(self.submit)
        intake_runs.hand_to(self)
        self._tasks = [
            asyncio.create_task(self._read_replies()),
            asyncio.create_task(self._restart_when_gone()),
        ]
        log.info("worker started (pid %d)", self.proc.pid)

    # -- handing work over ------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No feedback waits for its run: a new one's run comes at once (the CLI waits for its id)."""
        return not self._made

    def enqueue(self, feedback_id: str, priority: int) -> asyncio.Future[str | None]:
        """Have the worker make the feedback's run; the future gives its id (None if not made now)."""
        future = self._made.get(feedback_id) or asyncio.get_running_loop().create_future()
        if self._send({"feedback": feedback_id, "priority": priority}):
            self._made[feedback_id] = future
        elif not future.done():
            future.set_result(None)  # no worker right now: the next one's recovery makes the run
        return future

    def submit(self, run: str | UUID | FlowRun, priority: int | None) -> None:
        """Have the worker execute a run; a run already read goes whole (saves reading it again)."""
        if isinstance(run, FlowRun):
            self._send({"id": str(run.id), "priority": priority, "run": run.model_dump(mode="json")})
        else:
            self._send({"id": str(run), "priority": priority})

    def _send(self, message: dict[str, Any]) -> bool:
        """False while no worker runs (it is starting again); what it misses, its recovery finds."""
        if self._to_worker is None or self._to_worker.is_closing():
            return False
        self._to_worker.write(json.dumps(message).encode() + b"\n")  # buffered: never blocks
        return True

    async def _read_replies(self) -> None:
        assert self._replies is not None
        while line := await self._replies.readline():
            reply = json.loads(line)
            future = self._made.pop(reply.get("feedback", ""), None)
            if future is not None and not future.done():
                future.set_result(reply.get("flow_run_id"))

    # -- its life ---------------------------------------------------------------------------------

    async def _restart_when_gone(self) -> None:
        assert self.proc is not None
        while self.proc.poll() is None:
            await asyncio.sleep(1)
        log.error("worker exited (%s); starting another, which recovers its work", self.proc.returncode)
        if self._to_worker is not None:
            self._to_worker.close()
        self._forget()
        await self.start()

    def _forget(self) -> None:
        """Feedback handed to a worker that is gone: the next one's recovery makes their runs."""
        for future in self._made.values():
            if not future.done():
                future.set_result(None)
        self._made.clear()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._forget()
        if self._to_worker is not None:
            self._to_worker.close()  # end of input: the worker stops
        if self.proc is not None:
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# -- in the worker process --------------------------------------------------------------------------


def main() -> None:
    from incident.server import _loop_factory

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _warm_up()
    gc.collect()
    gc.freeze()  # the imports live on: a full collection then skips them
    prefect_db = os.environ.get("INCIDENT_PREFECT_DB", "unknown")
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_work(prefect_db))


def _warm_up() -> None:
    """Import now what the first runs need: an import inside a run stalls the event loop, and with it
    every run (measured: the first seconds of a storm went to imports, the L1 notice among them)."""
    import contextlib

    import prefect.flow_engine  # noqa: F401
    import prefect.task_engine  # noqa: F401

    import flows.deadlines  # noqa: F401
    import flows.incident  # noqa: F401
    import incident.documents.dossier  # noqa: F401
    import incident.documents.render  # noqa: F401
    from notifiers import roster

    with contextlib.suppress(roster.RosterError):  # the API process logged it; each notice will too
        roster.check()  # loads apprise's plugins


async def _work(prefect_db: str) -> None:
    from flows import dispatch, intake_runs

    dispatcher = await dispatch.start(prefect_db)  # from here on this task and its children share a client
    creator = intake_runs.start(dispatcher.limit)
    log.info("Prefect server database: %s; %d routine runs at once", prefect_db, dispatcher.limit)
    loop = asyncio.get_running_loop()
    reply_fd = int(os.environ.pop(REPLY_FD))
    replies, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(reply_fd, "wb"))
    background = [
        asyncio.create_task(_logged(_recover(), "recovery")),
        asyncio.create_task(dispatcher.poll_forever(POLL_SECONDS)),
        asyncio.create_task(_watch(WATCH_SECONDS), context=dispatcher.runtime.context("watch_deadlines")),
    ]
    replies.write(b'{"ready": true}\n')
    taking = asyncio.create_task(_take_work(dispatcher, creator, replies))
    loop.add_signal_handler(signal.SIGTERM, taking.cancel)  # the API process is gone (PR_SET_PDEATHSIG)
    try:
        await taking
    except asyncio.CancelledError:
        pass
    finally:
        left = await dispatcher.finish(FINISH_SECONDS)
        for task in background:
            task.cancel()
        log.info("worker stopped: %d runs cut short, %d queued; the next start replays them",
                 left, dispatcher.backlog - left)  # fmt: skip


async def _take_work(dispatcher: Dispatcher, creator: Creator, replies: asyncio.WriteTransport) -> None:
    """Do what the API process hands over, until it closes our stdin (or is gone)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(feedback_id: str, made: asyncio.Future[str | None]) -> None:
        run_id = None if made.cancelled() else made.result()
        replies.write(json.dumps({"feedback": feedback_id, "flow_run_id": run_id}).encode() + b"\n")

    while line := await reader.readline():
        try:
            work = json.loads(line)
            if "feedback" in work:
                made = creator.enqueue(work["feedback"], work.get("priority") or 2)
                made.add_done_callback(lambda f, fid=work["feedback"]: reply(fid, f))
            else:
                run = FlowRun.model_validate(work["run"]) if work.get("run") else work["id"]
                dispatcher.submit(run, work.get("priority"))
        except (ValueError, KeyError) as exc:
            log.error("not work for the worker: %r (%s)", line[:200], exc)


async def _recover() -> None:
    """After a crash: runs whose executor is gone are rescheduled, feedback without a run gets one.

    Feedback runs are queued with the creator (routine lane), not made here one by one: a crash in a
    storm can leave hundreds.
    """
    from sqlalchemy import select

    from flows import dispatch
    from flows.feedback import start_incident_run
    from flows.intake_runs import start_feedback_run, unhandled
    from flows.runtime import ROUTINE
    from models import Feedback, Incident, session_scope

    dispatcher = dispatch.current()
    assert dispatcher is not None
    rescheduled = await dispatcher.recover(startup=True)
    with session_scope() as s:
        pending = {
            f.id: f.flow_run_id for f in s.scalars(select(Feedback).where(Feedback.id.in_(await unhandled())))
        }
        orphans = list(
            s.scalars(select(Incident.id).where(Incident.status != "closed", Incident.flow_run_id.is_(None)))
        )
    for incident_id in orphans:
        await start_incident_run(incident_id)
    requeued = [feedback_id for feedback_id, flow_run_id in pending.items() if flow_run_id is None]
    for feedback_id in requeued:
        await start_feedback_run(feedback_id, ROUTINE)
    log.info(
        "recovered: %d runs rescheduled, %d feedback re-queued, %d incident runs created",
        rescheduled,
        len(requeued),
        len(orphans),
    )


async def _logged(work: Awaitable[None], what: str) -> None:
    try:
        await work
    except Exception:
        log.exception("%s failed", what)


async def _watch(interval: float) -> None:
    from fastapi.concurrency import run_in_threadpool
    from prefect import tags

    from flows.deadlines import due_work, watch_deadlines
    from flows.runtime import scope_tag

    while True:
        try:
            if await run_in_threadpool(due_work):
                with tags(scope_tag()):  # only services on this database recover it
                    await watch_deadlines()
        except Exception:
            log.exception("deadline watcher failed")
        await asyncio.sleep(interval)


if __name__ == "__main__":
    main()

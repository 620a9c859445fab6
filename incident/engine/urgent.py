"""The urgent process: a level-1 report's ``handle_feedback`` flow run, at once, beside intake.

Why a process of its own. A report that opens a level-1 incident or raises one to level 1 must reach
the leadership within a second, in the middle of the storm that raised it. Where its run executed
decided which target a storm missed (``bench/storm.py``, 500 reports at 200/s, README "Benchmark"):

- in the API process, the run's Python (Prefect's engine, the records, the notice: about half a second
  of one interpreter) took the GIL from intake: every 202 of that half second waited, intake's p99 was
  ~200 ms (11× a single report on an idle service), the notice came in 0.5 s;
- in the worker, behind the storm's routine runs in one event loop and niced below intake, intake's
  p99 was 99 ms (5.7×) and the notice came 2.9 s after the 202.

Here it has an interpreter of its own, not niced, in a session of its own: intake keeps its cores and
its GIL, and the notice comes as soon as Prefect answers.

How a report is handed over: the API's intake claims the feedback's row in this process's name (its
claimant, which it writes to its ready file) in the transaction that records the report, then sends
it SIGUSR1; the process runs every row claimed in its name that it is not running yet. The database
stays the queue: if this process is gone, the worker on this host takes its claims over at once
(``queue._dead_on_this_host``); a run that fails here gives its claim back, and a worker takes the row
at its next poll; while the process is not ready (its first seconds), the API claims the row for
itself and runs the flow there. Its runs are counted in the database-derived
series (``/metrics``), not in a process endpoint of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from incident import settings
from incident.engine.signals import STOP, Signals

if TYPE_CHECKING:
    from incident.engine.process import WorkerProcess

log = logging.getLogger("incident.urgent")
FINISH_SECONDS = 10.0  # on stop, the runs in flight get this long (what is cut short is taken over)

_process: WorkerProcess | None = None  # in the API process: the urgent process it started


def use(process: WorkerProcess | None) -> None:
    """In the API process: hand level-1 reports to this process from now on (None: run them here)."""
    global _process
    _process = process


def claimant() -> str | None:
    """The name to claim an urgent report's row in, when the urgent process runs and is ready."""
    info = _process.info() if _process is not None else None
    return str(info["claimant"]) if info else None


def wake() -> None:
    """Tell the urgent process a row is claimed in its name. Gone meanwhile: the worker on this host
    takes the claim over at its next poll (the claimant's pid is no longer alive)."""
    info = _process.info() if _process is not None else None
    if info:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(info["pid"]), signal.SIGUSR1)


def main() -> None:
    from incident.engine import queue, tls
    from incident.engine.logfilter import use_in_prefect

    tls.skip_unused_bundle(settings.home())  # before Prefect reads its settings
    use_in_prefect()
    __import__("incident.logs").logs.configure("urgent")
    queue.warm_up()  # now, not in the first level-1 report's run
    gc.collect()
    gc.freeze()
    Signals((*STOP, signal.SIGUSR1)).run(serve)  # its runs off the main thread: see signals.py


async def serve(signals: Signals) -> None:
    """Run what is handed over until stopped; then give the runs in flight ``FINISH_SECONDS``."""
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    from incident.engine import queue
    from incident.engine.process import say_ready

    wake_up, stopping = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    signals.on(signal.SIGUSR1, wake_up.set)
    for sig in STOP:
        signals.on(sig, stopping.set)
    running: dict[str, asyncio.Task[bool]] = {}
    say_ready({"pid": os.getpid(), "claimant": queue.WORKER_ID})
    log.info("urgent process ready (claims as %s)", queue.WORKER_ID)
    with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: False}):  # as the worker's runs
        while not stopping.is_set():
            wake_up.clear()
            try:
                jobs = await asyncio.to_thread(queue.handed_over, set(running))
            except SQLAlchemyError as exc:  # the database is away: the claims wait, tried every second
                log.warning("urgent rows unreadable, retrying: %s", exc.__class__.__name__)
                loop.call_later(1.0, wake_up.set)
                jobs = []
            for job in jobs:
                task = running[job.feedback_id] = asyncio.create_task(queue.handle_here(job))
                task.add_done_callback(lambda _, fid=job.feedback_id: running.pop(fid, None))
            waits = [asyncio.create_task(e.wait()) for e in (wake_up, stopping)]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiting in pending:
                waiting.cancel()
        if running:
            await asyncio.wait(set(running.values()), timeout=FINISH_SECONDS)
    log.info("urgent process stopped: %d runs cut short (the worker takes them over)", len(running))


if __name__ == "__main__":  # the urgent process ``incident serve`` starts (incident/engine/process.py)
    main()

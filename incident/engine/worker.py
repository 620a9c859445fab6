"""``incident worker``: executes the flow runs, on Prefect's own machinery.

One process (``incident serve`` starts one; start more, on more machines, with ``incident worker``
against the same Prefect server and product database) does these things:

- serves the deployment ``incident_response/<INCIDENT_DEPLOYMENT>`` with Prefect's ``Runner`` (what
  ``flow.serve`` uses): it polls Prefect for the deployment's scheduled runs (a new incident, a run
  resumed by a person or from Prefect's UI, a Retry or Run click) and executes each in a process of
  its own; several workers share the runs through Prefect's own claim (a run goes Pending once);
- handles the feedback: rows without a run are claimed from the database and each becomes an
  in-process ``handle_feedback`` flow run (incident/engine/queue.py);
- sweeps every ``INCIDENT_SWEEP_SECONDS`` (incident/engine/sweep.py);
- watches the deadlines every ``INCIDENT_WATCH_SECONDS`` (flows/deadlines.py), and as often sends the
  progress updates owed to customers (incident/response/updates.py);
- enrols on its deployment's roll before it serves (incident/engine/roll.py: how the sweep tells a
  run whose claimant died before starting it);
- turns Prefect's heartbeats on and keeps the automation that marks silent runs Crashed
  (incident/engine/zombies.py), which the sweep then reschedules;
- serves its own ``/metrics`` (incident/metrics/process.py) on ``INCIDENT_WORKER_METRICS_HOST``:
  ``INCIDENT_WORKER_METRICS_PORT``, bound first: a taken port is one line before anything starts.

Why the incident runs in a process each and the feedback in-process: an incident run is resumed a
handful of times over days and may render documents for seconds; a runner's process is what Prefect
gives it (cancel, crash detection, logs) at ~2 s of start-up per step. Feedback comes by the
thousand in a storm: a process each would cost that 2 s a thousand times.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from incident import settings
from incident.engine.signals import STOP, Signals

if TYPE_CHECKING:
    from prefect.runner import Runner

log = logging.getLogger("incident.worker")
FINISH_SECONDS = 10.0  # on stop, the feedback runs in flight get this long; nothing new starts
SAME_SIGNAL_SECONDS = 1.0  # a stop signal this soon after the first is the same one (_bound_the_stop)


class WorkerError(RuntimeError):
    """The worker cannot start; the message says why in one line (exit 2)."""


def main() -> None:
    from incident.engine import tls, zombies
    from incident.engine.logfilter import use_in_prefect

    metrics_url = _serve_metrics()
    tls.skip_unused_bundle(settings.home())  # before Prefect reads its settings; the runs inherit it
    zombies.enable_heartbeats()  # before Prefect reads its settings; the runner's processes inherit it

    use_in_prefect()
    __import__("incident.logs").logs.configure("worker")  # INCIDENT_LOG_FORMAT=text|json
    _warm_up()
    gc.collect()
    gc.freeze()  # the imports live on: a full collection then skips them
    log.info("worker metrics on %s", metrics_url)
    Signals(STOP).run(lambda signals: work(signals, settings.get().prefect_db, metrics_url))


def _serve_metrics() -> str:
    """The worker's ``/metrics`` endpoint, started before anything else; its URL."""
    from incident.metrics.process import serve_worker_metrics

    host, port = settings.get().worker_metrics_host, settings.get().worker_metrics_port
    try:
        bound = serve_worker_metrics(host, port)
    except OSError as exc:
        why = exc.strerror or exc
        msg = f"cannot serve the worker's metrics on {host}:{port} (INCIDENT_WORKER_METRICS_PORT): {why}"
        raise WorkerError(msg) from exc
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{bound}/metrics"


def _warm_up() -> None:
    """Import now what the first runs need: an import inside a run stalls the event loop, and with it
    every run (measured: the first seconds of a storm went to imports, the L1 notice among them)."""
    import flows.deadlines  # noqa: F401
    import flows.incident  # noqa: F401
    import incident.records.documents.dossier  # noqa: F401
    import incident.records.documents.render  # noqa: F401
    from incident.engine import queue

    queue.warm_up()  # the feedback runs'


class IncidentRuns:
    """Prefect's ``Runner`` serving ``incident_response``, served again when it gives up.

    Why again: the runner's poll loop ends after three failed polls in a row (each one retried by
    Prefect's client for about a minute), so a Prefect outage of a few minutes ended the runner and,
    with it, the worker, which the service then replaced. Now the worker waits for Prefect to answer and
    serves with a new ``Runner``; its feedback queue, sweep and deadline watcher go on meanwhile. The runs
    the old runner was executing ended with it (Prefect could not be told): the sweep starts each again
    (``flows.waiting.orphaned``; Crashed ones are rescheduled).
    """

    def __init__(self) -> None:
        self.runner: Runner | None = None
        self.serving: asyncio.Task[None] | None = None  # the runner's start(): serving, or starting
        self.stopping = False
        self.served = 0  # runners that served: 1, plus one per outage ridden out

    async def _new_runner(self) -> UUID:
        from prefect.runner import Runner
        from prefect.types.entrypoint import EntrypointType

        from flows.incident import incident_response

        runner = Runner(
            name=f"incident-worker-{os.getpid()}-{self.served + 1}",
            query_seconds=settings.get().poll_seconds,
            limit=settings.get().incident_runs,
            pause_on_shutdown=False,
        )
        deployment_id = await runner.aadd_flow(
            incident_response,
            name=settings.get().deployment,
            description="One incident walked through the playbook of its category and level.",
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        self.runner = runner
        return deployment_id

    async def first(self) -> UUID:
        """The deployment, made or updated by the first runner (Prefect must answer at start-up)."""
        return await self._new_runner()

    async def serve(self) -> None:
        """Serve until ``stop``; when the runner gives up, serve again once Prefect answers."""
        while not self.stopping:
            assert self.runner is not None
            self.serving = asyncio.create_task(self.runner.start())  # off the main thread: no signal handler
            self.served += 1
            try:
                await self.serving
            except Exception as exc:  # Prefect unreachable for longer than the runner tolerates
                log.warning("Prefect's runner stopped (%s); serving again once Prefect answers", exc)
            while not self.stopping:
                try:
                    await self._new_runner()
                    log.warning("serving incident_response again (runner %d)", self.served + 1)
                    break
                except Exception as exc:  # Prefect still away: logged, tried again
                    log.warning("Prefect not answering yet (%s); trying again", exc.__class__.__name__)
                    await asyncio.sleep(settings.get().sweep_seconds)

    async def stop(self) -> None:
        """Stop the runner; one still starting is cancelled instead.

        Why: Prefect's ``astop`` refuses a runner that has not finished starting (it "has not yet
        started"), which then went on to start and serve, and the worker waited for it until its stop's
        clock killed it (a service SIGKILLed seconds after it started, on a loaded machine: 30 s). A
        runner still starting executes nothing yet, so nothing is cut short by cancelling it."""
        self.stopping = True
        if self.runner is not None and self.runner.started:
            await self.runner.astop()
        elif self.serving is not None:
            self.serving.cancel()


async def work(signals: Signals, prefect_db: str, metrics_url: str | None = None) -> None:
    from incident.engine.process import say_ready
    from incident.engine.queue import Pump

    stopping = asyncio.Event()
    for sig in STOP:
        signals.on(sig, stopping.set)
    runs = IncidentRuns()
    deployment_id = await runs.first()
    await _until_done(lambda: _enrol(deployment_id), "enrolment on the workers' roll")  # before serving
    runner_task = asyncio.create_task(runs.serve())
    pump = Pump(settings.run_concurrency(prefect_db))
    background = [
        asyncio.create_task(pump.run_forever()),
        asyncio.create_task(_every(settings.get().sweep_seconds, lambda: _sweep(deployment_id), "sweep")),
        asyncio.create_task(_every(settings.get().sweep_seconds, _integrations, "integrations' sweep")),
        asyncio.create_task(_every(settings.get().watch_seconds, _watch, "deadline watcher")),
        asyncio.create_task(_every(settings.get().watch_seconds, _tell_customers, "customer updates")),
    ]
    # done once (its end must not end the worker, unlike the loops above)
    setup = asyncio.create_task(_until_done(lambda: _zombie_automation(deployment_id), "zombie automation"))
    log.info(
        "worker serving incident_response/%s; %d feedback runs at once (Prefect database: %s)",
        settings.get().deployment, pump.concurrency, prefect_db,
    )  # fmt: skip
    say_ready({"pid": os.getpid(), "metrics_url": metrics_url})
    waiter = asyncio.create_task(stopping.wait())
    await asyncio.wait([waiter, runner_task, *background], return_when=asyncio.FIRST_COMPLETED)
    _bound_the_stop(signals, settings.get().worker_stop_seconds)
    for task in (*background, setup):
        task.cancel()
    left = await pump.finish(FINISH_SECONDS)
    await runs.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await runner_task
    log.info("worker stopped: %d feedback runs cut short (another worker takes them over)", left)


def _bound_the_stop(signals: Signals, seconds: float) -> None:
    """From here the worker is leaving: a second signal ends it at once, and so does the clock.

    A signal within ``SAME_SIGNAL_SECONDS`` of the stop is the same one again, not a second: the kernel
    sends the parent-death signal (``incident serve``'s children ask for SIGTERM) once for each thread of
    the dying service as it exits (seen with strace: four SIGTERMs within 30 ms), and taking the second
    of those for an operator's left the runs' processes killed and their runs Pending.

    Why a thread and ``os._exit``: the orderly stop tells Prefect and the database, and with both gone
    (``incident serve`` SIGKILLed takes its Prefect server along, and the worker gets SIGTERM from the
    kernel) it waited for them for good: workers were found hours later holding port 9470. A timer
    thread fires whatever the event loop is stuck in, asyncio.run's wait for executor threads included.
    Nothing is lost by leaving: the runs in flight are taken over (claims expire, the sweep restarts
    orphaned runs).
    """

    def leave(why: str) -> None:
        runs = _children()
        log.error("worker leaving without finishing its stop (%s); %d run processes killed", why, len(runs))
        for pid in runs:  # Prefect's runner would have stopped them; their runs are crashed, then redone
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Not logging.shutdown(): it flushes Prefect's APILogHandler too, whose drain waits for a lock
        # and for the Prefect API; a second signal handled inside the first drain waited for good (a
        # worker found minutes after a storm, holding port 9470). Our lines are written as they come.
        sys.stderr.flush()
        os._exit(1)

    began = time.monotonic()

    def again() -> None:
        if time.monotonic() - began > SAME_SIGNAL_SECONDS:
            leave("a second stop signal")

    for sig in STOP:  # on the main thread at once: the loop may be what is stuck
        signals.on(sig, again, in_loop=False)
    late = f"still stopping after {seconds:.0f} s (INCIDENT_WORKER_STOP_SECONDS)"
    timer = threading.Timer(seconds, leave, [late])
    timer.daemon = True  # it never holds the process up: a stop that ends in time simply exits
    timer.start()


def _children() -> list[int]:
    """This process's children (the runner's run processes), from /proc."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == me:
                found.append(int(stat.parent.name))
    return found


async def _every(seconds: float, work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``work`` every ``seconds``; a failed pass is logged and the next one tries again. Each pass
    is counted (``incident_worker_loop_passes_total{loop, outcome}``)."""
    from incident.metrics.process import LOOP_PASSES

    loop = what.replace(" ", "_")
    while True:
        try:
            await work()
            LOOP_PASSES.labels(loop, "ok").inc()
        except Exception:  # the database or Prefect away: logged, and the next pass tries again
            LOOP_PASSES.labels(loop, "failed").inc()
            log.exception("%s failed; trying again in %.0f s", what, seconds)
        await asyncio.sleep(seconds)


async def _until_done(work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``work`` once; while Prefect or the database is away, try again every sweep interval."""
    while True:
        try:
            await work()
            return
        except Exception:  # Prefect away at start-up: logged, and tried again
            log.exception("%s failed; trying again in %.0f s", what, settings.get().sweep_seconds)
        await asyncio.sleep(settings.get().sweep_seconds)


async def _enrol(deployment_id: UUID) -> None:
    from incident.engine import roll

    await asyncio.to_thread(roll.enrol, deployment_id)


async def _zombie_automation(deployment_id: UUID) -> None:
    from incident.engine.zombies import ensure_automation

    await ensure_automation(deployment_id)


async def _sweep(deployment_id: UUID) -> None:
    from incident.engine.sweep import sweep_once

    counts = await sweep_once(deployment_id)
    if any(counts.values()):
        log.info("sweep: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))


async def _integrations() -> None:
    from incident.engine.sweep import integrations_once

    counts = await integrations_once()
    if any(counts.values()):
        log.info("integrations: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))


async def _watch() -> None:
    from flows.deadlines import due_work, watch_deadlines

    if await asyncio.to_thread(due_work):
        await watch_deadlines()


async def _tell_customers() -> None:
    from incident.response.updates import send_owed

    counts = await send_owed()
    if any(counts.values()):
        log.info("customer updates: %d sent, %d failed", counts["sent"], counts["failed"])


if __name__ == "__main__":  # the worker ``incident serve`` starts (incident/engine/process.py)
    try:
        main()
    except WorkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

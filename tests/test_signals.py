"""A process running Prefect flows in-process takes its stop signal once, and lets the runs finish
(incident/engine/signals.py).

Two real processes each run an async flow that takes 3 s and get SIGTERM in the middle of it: one
with its loop off the main thread (``Signals.run``, as the worker and the urgent process now run), one
with its loop on the main thread (as they ran before). Prefect's engine puts its own SIGTERM handler in
place only on the main thread, and there it cuts the run short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import asyncio, sys
from prefect import flow
from incident.engine.signals import STOP, Signals


@flow
async def three_seconds() -> str:
    print("running", flush=True)
    await asyncio.sleep(3)
    return "finished"


async def until_stopped(on: object) -> None:
    stopping, seen = asyncio.Event(), []
    for sig in STOP:
        on(sig, lambda: (seen.append(sig), stopping.set()))
    try:
        result = await three_seconds()
    except BaseException as exc:  # what the signal did to the run
        result = type(exc).__name__
    await stopping.wait()
    print(result, len(seen), flush=True)


if sys.argv[1] == "off-main":
    Signals(STOP).run(lambda signals: until_stopped(signals.on))
else:
    async def on_main() -> None:
        await until_stopped(asyncio.get_running_loop().add_signal_handler)

    asyncio.run(on_main())
"""


def _stopped_mid_run(script: Path, mode: str, prefect_api: str) -> tuple[int, str]:
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    proc = subprocess.Popen(
        [sys.executable, str(script), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "running":
            break
    proc.send_signal(signal.SIGTERM)
    said = proc.stdout.read().strip()
    return proc.wait(60), said


def test_a_stop_signal_during_an_in_process_run_is_taken_once_and_the_run_finishes(
    prefect_api: str, tmp_path: Path
) -> None:
    script = tmp_path / "stop_mid_run.py"
    script.write_text(SCRIPT)
    assert _stopped_mid_run(script, "off-main", prefect_api) == (0, "finished 1")
    # The loop on the main thread, as before: Prefect's handler raised into the run and cut it short.
    code, said = _stopped_mid_run(script, "on-main", prefect_api)
    assert not said.startswith("finished"), (code, said)


LEAVING = """
import time
from prefect.logging.handlers import APILogHandler, APILogWorker
from incident.engine import worker
from incident.engine.signals import STOP, Signals

handler = APILogHandler()  # a handler logging knows of, as Prefect's logging configuration makes one
APILogWorker._instance_lock.acquire()  # Prefect's log shipping stuck: its drain never gets the lock
worker._bound_the_stop(Signals(STOP), 0.2)  # the stop's clock, run out at once
time.sleep(60)
"""


def test_a_worker_leaving_does_not_wait_for_prefects_log_shipping(tmp_path: Path) -> None:
    """Leaving (the stop's clock, or a second stop signal) ends the worker whatever Prefect's log shipping
    is doing. It used to flush every logging handler first, Prefect's ``APILogHandler`` among them, whose
    drain takes a lock: a worker whose service and Prefect server stopped after a storm was found minutes
    later holding port 9470 (py-spy: the second stop signal, handled on the main thread in the middle of
    the first drain, waited for the lock that drain held)."""
    script = tmp_path / "leaving.py"
    script.write_text(LEAVING)
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # nothing there
    started = time.monotonic()
    left = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=50)
    assert left.returncode == 1 and "worker leaving without finishing its stop" in left.stderr, left.stderr
    assert time.monotonic() - started < 30  # Python and Prefect's import, then at once


STARTING = """
import asyncio, time
from incident.engine.worker import IncidentRuns


async def main() -> None:
    runs = IncidentRuns()
    await runs.first()  # the deployment made: Prefect answers
    serving = asyncio.create_task(runs.serve())
    await asyncio.sleep(0)  # its runner's start() has begun: connecting, not serving yet
    print("starting" if not runs.runner.started else "started", flush=True)
    await runs.stop()
    began = time.monotonic()
    await asyncio.wait({serving}, timeout=20)
    print(f"stopped in {time.monotonic() - began:.1f} s" if serving.done() else "still serving", flush=True)


asyncio.run(main())
"""


def test_a_worker_stopped_while_its_runner_starts_stops(prefect_api: str, tmp_path: Path) -> None:
    """A stop that comes while Prefect's runner is still starting ends it. Prefect's ``astop`` refuses
    a runner not started yet, and the worker skipped it: the runner went on to start and serve, and the
    worker waited for it until its stop's clock killed it, 30 s on (``test_crash`` under load: the
    service SIGKILLed seconds after it started; "the worker outlived the service it worked for")."""
    script = tmp_path / "starting.py"
    script.write_text(STARTING)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "INCIDENT_DEPLOYMENT": "stopped-while-starting"}
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=90)
    said = ran.stdout.split("\n")
    assert ran.returncode == 0 and said[0] == "starting", (said, ran.stderr[-2000:])
    assert said[1].startswith("stopped in "), (said, ran.stderr[-2000:])

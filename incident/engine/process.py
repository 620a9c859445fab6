"""The worker that ``incident serve`` starts beside its API, in a process of its own.

Why a process of its own: a 202 from ``POST /api/feedback`` is what a caller waits for, while a
flow run is Python work (the Prefect engine, records rendered, notices); in one process the two
shared one GIL and one event loop, and in a storm the runs pushed intake's p99 to seconds. The
worker runs at a lower scheduling priority (``INCIDENT_BACKGROUND_NICE``): when the cores are busy
intake goes first. Nothing passes between the two processes but the database and Prefect, so more
workers (``incident worker``) can join from other machines, and one that dies loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable

from incident import settings

log = logging.getLogger("incident.serve")
READY_TIMEOUT = 120.0  # importing Prefect and our flows takes ~5 s here; the API waits for it


class WorkerStartError(RuntimeError):
    pass


class WorkerProcess:
    def __init__(self, prefect_db: str, preexec: Callable[[], None]) -> None:
        """``preexec``: run in the child before it starts (dies with the service; nice)."""
        self.prefect_db, self.preexec = prefect_db, preexec
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_file = settings.home() / "worker.ready"
        self._stopping = False

    async def start(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        env = {**os.environ, "INCIDENT_PREFECT_DB": self.prefect_db,
               "INCIDENT_WORKER_READY_FILE": str(self.ready_file)}  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "incident.engine.worker"],
            env=env,
            preexec_fn=self.preexec,
            start_new_session=True,  # a session of its own, so that its nice counts (server._yield_cores)
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise WorkerStartError(f"the flow worker exited with code {code} (see the log)")
            if time.monotonic() > deadline:
                self.proc.kill()
                msg = f"the flow worker did not start within {READY_TIMEOUT:.0f} s (see the log)"
                raise WorkerStartError(msg)
            await asyncio.sleep(0.1)
        log.info("worker started (pid %d)", self.proc.pid)

    async def watch(self) -> None:
        """Start another worker when this one dies; the new one takes over its claims at once."""
        while not self._stopping:
            await asyncio.sleep(1)
            if self.proc is not None and self.proc.poll() is not None and not self._stopping:
                log.error("worker exited (%s); starting another", self.proc.returncode)
                try:
                    await self.start()
                except WorkerStartError as exc:
                    log.error("%s; trying again", exc)

    async def stop(self) -> None:
        self._stopping = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:  # the worker bounds its own stop (and stops its runs); this kill is for a worker that can't
            await asyncio.to_thread(self.proc.wait, settings.get().worker_stop_seconds + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

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
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from incident import settings
from incident.environ import write_whole

log = logging.getLogger("incident.serve")
READY_TIMEOUT = 120.0  # importing Prefect and our flows takes ~5 s here; the API waits for it


class WorkerStartError(RuntimeError):
    pass


def say_ready(info: dict[str, object]) -> None:
    """In the child: what the service (and a test) reads of it (``WorkerProcess.info``), written to
    ``INCIDENT_WORKER_READY_FILE`` whole or not at all; nothing when no file is named."""
    ready = settings.get().worker_ready_file
    if ready:
        write_whole(Path(ready), json.dumps(info))


class WorkerProcess:
    """A child of the service that says it is ready in a file: the worker, or the urgent process."""

    def __init__(
        self, prefect_db: str, preexec: Callable[[], None], module: str = "incident.engine.worker",
        what: str = "flow worker", wait: bool = True,
    ) -> None:  # fmt: skip
        """``preexec``: run in the child before it starts (dies with the service; nice). ``wait``: the
        API waits for it to be ready (the worker) or goes on meanwhile (the urgent process)."""
        self.prefect_db, self.preexec, self.module = prefect_db, preexec, module
        self.what, self.wait = what, wait
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_file = settings.home() / f"{module.rpartition('.')[2]}.ready"
        self._info: dict[str, object] | None = None
        self._stopping = False

    async def start(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        self._info = None
        env = {**os.environ, "INCIDENT_PREFECT_DB": self.prefect_db,
               "INCIDENT_WORKER_READY_FILE": str(self.ready_file)}  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=env,
            preexec_fn=self.preexec,
            start_new_session=True,  # a session of its own, so that its nice counts (server._yield_cores)
        )
        if self.wait:
            await self._until_ready()

    async def _until_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise WorkerStartError(f"the {self.what} exited with code {code} (see the log)")
            if time.monotonic() > deadline:
                self.proc.kill()
                msg = f"the {self.what} did not start within {READY_TIMEOUT:.0f} s (see the log)"
                raise WorkerStartError(msg)
            await asyncio.sleep(0.1)
        log.info("%s started (pid %d)", self.what, self.proc.pid)

    def info(self) -> dict[str, object] | None:
        """What the child wrote to its ready file, once it is ready and while it runs; else None."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        if self._info is None and self.ready_file.exists():
            self._info = json.loads(self.ready_file.read_text())
        return self._info

    async def watch(self) -> None:
        """Start another when this one dies; the new one's host takes over its claims at once."""
        while not self._stopping:
            await asyncio.sleep(1)
            if self.proc is not None and self.proc.poll() is not None and not self._stopping:
                log.error("%s exited (%s); starting another", self.what, self.proc.returncode)
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

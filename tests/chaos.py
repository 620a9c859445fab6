"""Tools of the chaos suite: faults the tests cause, a storm that counts, and the five figures.

- ``Proxy`` stands between the service and PostgreSQL (127.0.0.1 only): ``cut()`` drops every open
  connection and refuses new ones, as a network partition or a database restart would look to the
  service, and ``restore()`` lets them through again.
- ``PortHolder`` keeps a killed server's port taken (every connection reset at once), so the service
  cannot start it again until the test lets go: an outage as long as the test wants.
- ``Storm`` posts reports at a steady rate and keeps what was accepted, refused, or lost in transport.
- ``measure`` computes the figures every case must hold, from the service's own database (so other
  tests' incidents, whose ids repeat across homes, never count): 202s without a row, feedback never
  handled, answers never delivered, duplicate notices (from the delivery log: one incident, notice,
  role and title sent twice) and incidents per batch. ``FIGURES`` collects them for the terminal
  summary (tests/conftest.py prints the table, green runs included).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from tests.conftest import Service


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        started.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        def drop() -> None:
            self._open = False
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self.loop.call_soon_threadsafe(drop)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(setattr, self, "_open", True)

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        self.cut()
        asyncio.run_coroutine_threadsafe(shut(), self.loop)
        self._thread.join(5)


class PortHolder:
    """Listens on a port and resets every connection at once: to a client the server there is down,
    and a server started meanwhile cannot bind it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the killed one's TIME_WAITs
        deadline = time.monotonic() + 10
        while True:  # the killed server's socket closes once the kernel has reaped it
            try:
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refuse, daemon=True)
        self._thread.start()

    def _refuse(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
            conn.close()

    def release(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@dataclass
class Storm:
    """Reports sent at a steady rate from a thread pool; what was accepted, refused, or lost in
    transport (``errors``: a timeout or a reset connection, which a 503 must never become)."""

    url: str
    token: str
    accepted: list[str] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)  # of the 202s, as they came

    def incident(self, timeout: float = 30) -> str:
        """The incident the storm's reports opened (waiting for the first 202 that names it)."""
        deadline = time.monotonic() + timeout
        while not self.incidents:
            assert time.monotonic() < deadline, "no report of the storm was accepted"
            time.sleep(0.05)
        return self.incidents[0]

    def send(
        self, bodies: list[dict[str, object]], rate: float, during: Callable[[int], None] | None = None
    ) -> None:
        lock = threading.Lock()
        client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

        def post(body: dict[str, object]) -> None:
            try:
                response = client.post("/api/feedback", json=body)
            except httpx.HTTPError as exc:
                with lock:
                    self.errors.append(f"{exc.__class__.__name__}: {exc}")
                return
            with lock:
                if response.status_code == 202:
                    self.accepted.append(response.json()["feedback_id"])
                    if response.json().get("incident_id"):
                        self.incidents.append(response.json()["incident_id"])
                else:
                    self.refused[response.status_code] = self.refused.get(response.status_code, 0) + 1

        start = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            for i, body in enumerate(bodies):
                if during is not None:
                    during(i)
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(post, body)
        client.close()


def storm_bodies(batch: str, n: int) -> list[dict[str, Any]]:
    """``n`` reports of one product batch from ``n`` customers: one incident, whose level rises."""
    return [
        {
            "category": "product_quality",
            "summary": f"屏幕闪烁 {i}",
            "customer": f"客户{i}",
            "product_model": "X9",
            "batch": batch,
        }  # fmt: skip
        for i in range(n)
    ]


@dataclass
class Answer:
    """A person's answer given during or just before a fault, and the point its run must reach."""

    incident_id: str
    action: str
    next_point: str
    status: int = 0
    delivery: str | None = None
    seconds: float = 0.0

    @property
    def stored(self) -> bool:
        return self.status == 200


def waiting_incident(service: Service, region: str) -> str:
    """An incident (a missed installation, level 3) reported now; its run goes to ``contact``."""
    body = {"category": "service_failure", "summary": "师傅没来", "service": "install", "region": region,
            "customer": "李雷"}  # fmt: skip
    response = service.api("POST", "/api/feedback", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["incident_id"])


def answer(service: Service, incident_id: str, action: str = "contact", next_point: str = "measure",
           body: dict[str, Any] | None = None) -> Answer:  # fmt: skip
    """Give the answer (a key of its own, as the CLI sends); a transport error leaves status 0."""
    given = Answer(incident_id, action, next_point)
    started = time.monotonic()
    try:
        response = service.api("POST", f"/api/incidents/{incident_id}/{action}", json=body or {"by": "王芳"},
                               headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    except httpx.HTTPError:
        return given
    given.status, given.seconds = response.status_code, time.monotonic() - started
    if response.status_code == 200:
        given.delivery = response.json().get("delivery")
    return given


def db_url(service: Service) -> str:
    return service.env.get("INCIDENT_DB_URL") or f"sqlite:///{service.home / 'incident.db'}"


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def wait_handled(url: str, accepted: list[str], timeout: float) -> None:
    """Until no feedback of this service waits for its run (or ``timeout``: the figures then say so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not query(url, "SELECT COUNT(*) FROM feedback WHERE handled_at IS NULL")[0][0]:
            return
        time.sleep(0.5)


def wait_delivered(service: Service, answers: list[Answer], timeout: float) -> int:
    """How many stored answers did not bring their run to its next point within ``timeout``."""
    deadline = time.monotonic() + timeout
    waiting = [a for a in answers if a.stored]
    while waiting and time.monotonic() < deadline:
        waiting = [a for a in waiting if not _reached(service, a)]
        if waiting:
            time.sleep(0.5)
    return len(waiting)


def _reached(service: Service, given: Answer) -> bool:
    try:
        return service.show(given.incident_id).get("waiting_for") == given.next_point
    except httpx.HTTPError:
        return False


def duplicate_notices(url: str) -> list[tuple[Any, ...]]:
    """Notices sent twice: the same incident, notice, role and title more than once in the delivery log
    (each with how many times it was sent)."""
    sent = "SELECT incident_id, notice, role, title, COUNT(*) FROM deliveries WHERE status = 'sent' "
    return query(url, sent + "GROUP BY incident_id, notice, role, title HAVING COUNT(*) > 1")


@dataclass
class Figures:
    case: str
    accepted: int
    refused: dict[int, int]
    no_row: int  # 202s without a row
    never_handled: int
    undelivered: int  # answers never delivered
    duplicates: int  # duplicate notices
    incidents_per_batch: int
    answers: int
    seconds: float = 0.0
    notes: str = ""

    def holds(self) -> bool:
        zero = (self.no_row, self.never_handled, self.undelivered, self.duplicates)
        return zero == (0, 0, 0, 0) and self.incidents_per_batch == 1


FIGURES: list[Figures] = []


def measure(
    case: str, service: Service, storm: Storm, batch: str, answers: list[Answer], started: float,
    handled_within: float = 120, delivered_within: float = 90, notes: str = "", db: str | None = None,
) -> Figures:  # fmt: skip
    """The five figures of one case (waiting first for the work to be done, within bounds), printed
    and kept for the summary table; ``db``: the database as the test reaches it (not through a proxy)."""
    url = db or db_url(service)
    wait_handled(url, storm.accepted, handled_within)
    undelivered = wait_delivered(service, answers, delivered_within)
    rows = dict(query(url, "SELECT id, handled_at FROM feedback"))
    twice = duplicate_notices(url)
    if twice:  # which ones, for the table's notes
        which = [f"sent {n}×: {i} {kind} to {role}" for i, kind, role, _, n in twice]
        notes = "; ".join(filter(None, [notes, *which]))
    figures = Figures(
        case=case,
        accepted=len(storm.accepted),
        refused=dict(storm.refused),
        no_row=len([f for f in storm.accepted if f not in rows]),
        never_handled=len([f for f in storm.accepted if f in rows and rows[f] is None]),
        undelivered=undelivered,
        duplicates=sum(row[-1] - 1 for row in twice),
        incidents_per_batch=query(
            url, "SELECT COUNT(DISTINCT incident_id) FROM feedback WHERE batch = :b", b=batch
        )[0][0],
        answers=len(answers),
        seconds=round(time.monotonic() - started, 1),
        notes=notes,
    )
    FIGURES.append(figures)
    print(f"\nchaos: {figures}")
    return figures


def assert_holds(figures: Figures, storm: Storm, answers: list[Answer]) -> None:
    """What every case must hold: the five figures, every answer taken (200), no transport errors."""
    assert figures.holds(), figures
    assert not storm.errors, storm.errors[:5]
    assert all(a.stored for a in answers), [(a.incident_id, a.status) for a in answers]


def children_of(pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()


def descendants_of(pid: int) -> list[str]:
    found = children_of(pid)
    return found + [d for child in found for d in descendants_of(int(child))]


def _alive(pid: str) -> bool:
    """Running (not exited; an exited process nobody has reaped yet is a zombie, not alive)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def gone(pids: list[str], timeout: float = 30, reaped: bool = False) -> bool:
    """Whether these processes ended within ``timeout``; ``reaped``: and their parent has waited for
    them (no zombie left: e.g. Prefect's runner forgets a run's process only then)."""

    def left() -> list[str]:
        return [pid for pid in pids if (Path(f"/proc/{pid}").exists() if reaped else _alive(pid))]

    deadline = time.monotonic() + timeout
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not left()


def worker_of(service: Service, module: str = "incident.engine.worker") -> str:
    """The pid of the worker process ``incident serve`` started (its child running incident.engine.worker),
    or of its urgent process (``module="incident.engine.urgent"``)."""
    for pid in children_of(service.proc.pid):
        with contextlib.suppress(FileNotFoundError):  # a child that ended meanwhile
            if module.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    raise AssertionError(f"the service has no {module} process")


def kill_all(*services: Service) -> None:
    """The end of a case: each service and every process under it SIGKILLed at once (the graceful stop,
    which cancels the runs through Prefect, takes seconds per run and is tested on its own)."""
    for service in services:
        for pid in [str(service.proc.pid), *descendants_of(service.proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        service.proc.wait(10)

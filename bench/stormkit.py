"""The parts of bench/storm.py: databases, the service, the webhook receiver, the complaints, the client.

Kept apart so storm.py reads as the measurement it is. Nothing here is imported by the product.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
ROLES = [
    *("leadership", "duty_manager", "cs_director", "cs_manager", "dept_head", "customer_service"),
    *("technical_support", "quality_control", "logistics", "pr", "legal"),
]


def create_databases(*names: str, trgm: str | None = None) -> None:
    """Fresh PostgreSQL databases; ``trgm`` names the one a Prefect server will use (pg_trgm)."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")
    if trgm:
        with psycopg.connect(PG_ADMIN.replace("dbname=postgres", f"dbname={trgm}"), autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")


def drop_databases(*names: str) -> None:
    if not names:
        return
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


RECEIVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
out = open(sys.argv[1], "a", buffering=1)
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        at = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = {}
        out.write(json.dumps([at, self.path.strip("/"), data.get("title", "")]) + "\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Receiver:
    """A local webhook (apprise ``json://``) in its own process: every notice with its arrival time.

    Its own process, so the storm client's work in this one cannot delay the moment it notes
    (``time.perf_counter`` is CLOCK_MONOTONIC: the same clock in every process on the machine).
    """

    def __init__(self) -> None:
        self.log = Path(tempfile.mkstemp(prefix="storm-notices-", suffix=".jsonl")[1])
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, str(self.log)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def notices(self) -> list[tuple[float, str, str]]:
        return [tuple(json.loads(line)) for line in self.log.read_text().splitlines() if line]  # type: ignore[misc]

    def first(self, predicate: Any) -> float | None:
        times = [at for at, _, title in self.notices() if predicate(title)]
        return min(times) if times else None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.unlink(missing_ok=True)


@dataclass
class Stage:
    """A temporary INCIDENT_HOME, its databases and the environment the service runs with."""

    db: str
    home: Path
    env: dict[str, str]
    app_url: str
    databases: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, db: str, receiver: Receiver, extra_env: dict[str, str] | None = None) -> Stage:
        home = Path(tempfile.mkdtemp(prefix=f"storm-{db}-"))
        roster = home / "roster.yaml"
        roster.write_text(
            "urls:\n"
            + "".join(f"  - json://127.0.0.1:{receiver.port}/{r}:\n      - tag: {r}\n" for r in ROLES)
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PREFECT_API_", "INCIDENT_", "PREFECT_HOME"))
        }
        env.update(
            INCIDENT_HOME=str(home),
            INCIDENT_API_TOKEN="storm",
            INCIDENT_NOTIFY_CONFIG=str(roster),
            INCIDENT_LANG="en",
            DO_NOT_TRACK="1",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
        )
        env.update(extra_env or {})  # --env: the service's settings to try (INCIDENT_RUN_CONCURRENCY=6)
        stage = cls(db, home, env, f"sqlite:///{home / 'incident.db'}")
        if db == "postgres":
            tag = uuid.uuid4().hex[:8]
            app, prefect = f"storm_{tag}_app", f"storm_{tag}_prefect"
            create_databases(app, prefect, trgm=prefect)
            stage.databases = [app, prefect]
            stage.app_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{app}"
            env["INCIDENT_DB_URL"] = stage.app_url
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
                f"postgresql+asyncpg://postgres@127.0.0.1:5432/{prefect}"
            )
        return stage

    def cleanup(self, keep: bool) -> None:
        if keep:
            print(f"kept {self.home} and databases {self.databases}")
            return
        shutil.rmtree(self.home, ignore_errors=True)
        drop_databases(*self.databases)


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    url: str
    prefect_api: str

    @classmethod
    def start(cls, stage: Stage, timeout: float = 180) -> Service:
        log = (stage.home / "serve.log").open("ab")
        # A session of its own, as systemd starts it: with Linux's autogroup scheduling a session shares
        # the cores with other sessions as an equal, and the bench's client is not the service's.
        proc = subprocess.Popen(
            [sys.executable, "-m", "incident.cli", "serve", "--port", "0"],
            env=stage.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=stage.home,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = json.loads((stage.home / "service.json").read_text())
                if httpx.get(info["url"] + "/healthz", timeout=2).status_code == 200:
                    return cls(proc, info["url"], info["prefect_api_url"])
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.3)
        proc.kill()
        raise SystemExit(f"incident serve did not start; see {stage.home / 'serve.log'}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def served(
    db: str, extra_env: dict[str, str] | None = None, keep: bool = False
) -> Iterator[tuple[Receiver, Stage, Service]]:
    """A webhook receiver, a stage and ``incident serve`` on it; all gone afterwards, also when the
    service did not start (a bench that failed there left its receiver running)."""
    receiver = Receiver()
    try:
        stage = Stage.create(db, receiver, extra_env)
        try:
            service = Service.start(stage)
            try:
                yield receiver, stage, service
            finally:
                service.stop()
        finally:
            stage.cleanup(keep)
    finally:
        receiver.stop()


def complaints(n: int, batch_customers: int, problems: int, seed: int = 7) -> list[dict[str, Any]]:
    """``batch_customers`` distinct customers about batch STORM-B1, the rest over ``problems`` others."""
    rng = random.Random(seed)
    bodies = [
        {
            "category": "product_quality",
            "summary": f"battery swelling, customer {i}",
            "product_model": "P50",
            "batch": "STORM-B1",
            "contact": f"1380{i:07d}",
            "channel": rng.choice(["phone", "app", "web", "social"]),
        }
        for i in range(min(batch_customers, n))
    ]
    for i in range(n - len(bodies)):
        p = i % problems
        bodies.append(
            {
                "category": "service_failure",
                "summary": f"delivery {p} late again",
                "service": f"delivery-{p}",
                "region": f"region-{p % 5}",
                "contact": f"1390{i:07d}",
                "channel": "app",
            }
            if p % 2
            else {
                "category": "product_quality",
                "summary": f"fridge model {p} not cooling",
                "product_model": f"F{p}",
                "batch": f"OTHER-{p}",
                "contact": f"1370{i:07d}",
                "channel": "phone",
            }
        )
    rng.shuffle(bodies)
    return bodies


@dataclass
class Sent:
    body: dict[str, Any]
    due: float  # when it was meant to go (open loop) or went (closed loop)
    sent: float
    done: float = 0.0
    status: int = 0
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def latency(self) -> float:
        """From when it was meant to go: a slow service delays the next sends, and that counts."""
        return self.done - self.due


async def post_all(
    url: str, bodies: list[dict[str, Any]], concurrency: int, rate: float | None, budget: float
) -> list[Sent]:
    """Closed loop (``concurrency`` in flight, as fast as answered) or open loop at ``rate``/s.

    aiohttp, not httpx: on this machine httpx's async pool costs ~3.5 ms of CPU per request with 64
    connections, aiohttp ~0.2 ms; the client shares the two cores with the service it measures.
    """
    import aiohttp

    headers = {"Authorization": "Bearer storm"}
    gate = asyncio.Semaphore(concurrency)
    results: list[Sent] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=budget)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector, timeout=timeout) as http:

        async def connect() -> None:
            async with http.get("/healthz") as response:
                await response.read()

        # The pool's connections opened before the clock starts: a client pool in service is warm.
        await asyncio.gather(*(connect() for _ in range(concurrency)))
        # The schedule starts once every request's task exists (making 1,000 tasks takes a while,
        # and the client being late is not the service being slow).
        start = time.perf_counter() + 0.2

        async def one(i: int, body: dict[str, Any]) -> None:
            due = start + i / rate if rate else 0.0
            if rate:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            async with gate:
                sent = time.perf_counter()
                item = Sent(body, due or sent, sent)
                try:
                    async with http.post("/api/feedback", json=body) as response:
                        item.status, item.answer = response.status, await response.json(content_type=None)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    item.answer = {"error": repr(exc)}
                item.done = time.perf_counter()
                results.append(item)

        await asyncio.wait_for(asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))), budget)
    return results

"""What each Prefect-native way of running one unit of work per feedback costs, on one Prefect server.

Why: issue 10 asks feedback to be handled at 3x stock Prefect's no-op flow runs, and to measure the
alternatives where the flow-run path can't get there. This starts its own ``prefect server start``
(PostgreSQL by default, as ``bench/storm.py``) and times, in one run, ``-n`` no-ops each way:

- ``flow, in process``: an async ``@flow`` called directly, ``--concurrency`` at a time (the stock
  baseline of bench/storm.py; ``handle_feedback`` runs this way in the worker);
- ``task, .delay()``: an async ``@task`` submitted with ``.delay()`` and executed by a task worker
  (``prefect.task_worker.serve``, its own process), the client waiting for every result.

A feedback must stay a flow run of its own (the product's card), so the second is the measure of
what giving that up would buy, not a path the product takes.

    python bench/prefect_paths.py [--db postgres|sqlite] [-n 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stormkit import create_databases, drop_databases  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: str, home: Path) -> tuple[subprocess.Popen[bytes], str, str | None]:
    """A Prefect server of its own: the environment for every process of this bench is set here."""
    port, database = free_port(), None
    os.environ.update(
        PREFECT_HOME=str(home), PREFECT_API_URL=f"http://127.0.0.1:{port}/api", DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )  # fmt: skip
    if db == "postgres":
        database = f"paths_{uuid.uuid4().hex[:8]}"
        create_databases(database, trgm=database)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
        os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = url
    log = (home / "server.log").open("wb")
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc, os.environ["PREFECT_API_URL"], database
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the Prefect server did not start; see {home / 'server.log'}")


def noop_task():  # type: ignore[no-untyped-def]
    from prefect import task

    @task(name="paths-noop-task")
    async def noop(i: int) -> int:
        return i

    return noop


async def flows(n: int, concurrency: int) -> float:
    from prefect import flow

    @flow(name="paths-noop-flow")
    async def noop(i: int) -> int:
        return i

    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            assert await noop(i) == i

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start


def tasks(n: int) -> float:
    """``.delay()`` n no-ops and wait for every result (the task worker runs in its own process)."""
    worker = subprocess.Popen([sys.executable, __file__, "--serve-tasks"])
    try:
        time.sleep(8)  # the worker's import and its websocket subscription
        noop = noop_task()
        start = time.perf_counter()
        futures = [noop.delay(i) for i in range(n)]
        assert [f.result(timeout=600) for f in futures] == list(range(n))
        return time.perf_counter() - start
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--serve-tasks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_tasks:
        from prefect.task_worker import serve

        asyncio.run(serve(noop_task(), limit=args.concurrency * 4))
        return
    home = Path(tempfile.mkdtemp(prefix="prefect-paths-"))
    server, api, database = start_server(args.db, home)
    try:
        flow_s = asyncio.run(flows(args.n, args.concurrency))
        task_s = tasks(args.n)
    finally:
        server.terminate()
        server.wait(30)
        if database:
            drop_databases(database)
    table = Table(title=f"{args.n} no-ops each way, one Prefect server ({args.db}), {api}")
    for column in ("path", "seconds", "per second", "x flow runs"):
        table.add_column(column, justify="right")
    for name, seconds in (("flow, in process", flow_s), ("task, .delay() + task worker", task_s)):
        table.add_row(name, f"{seconds:.1f}", f"{args.n / seconds:.1f}", f"{flow_s / seconds:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()

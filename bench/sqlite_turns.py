"""How long a SQLite writer waits for its turn while another process writes as intake does in a storm.

A hammer process (the API's intake: a short write transaction every few milliseconds) and, in this
process, a waiter (the worker's poll, the level-1 run's writes): ``--tries`` transactions, one every
50 ms, each timed from BEGIN to its first write done. Two ways of waiting, on one database file:

- ``sqlite``: SQLite's own busy timeout (30 s) around ``BEGIN IMMEDIATE``, as the product did until
  2026-12-07: its handler sleeps 1, 2, 5, 10 … 100 ms between tries;
- ``product``: ``models.base`` (a try every few milliseconds, ``TURN_MS``).

Both processes wait the same way in each row. Prints one table: the waiter's p50/p95/max and the
hammer's transactions per second.

    python bench/sqlite_turns.py [--tries 60] [--hold-ms 3] [--gap-ms 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, event, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def engine(url: str, mode: str) -> Engine:
    if mode == "product":
        from models.base import get_engine

        return get_engine(url)
    plain = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})

    @event.listens_for(plain, "connect")
    def _pragmas(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[attr-defined]
        dbapi_connection.execute("PRAGMA busy_timeout=30000")  # type: ignore[attr-defined]

    @event.listens_for(plain, "begin")
    def _begin(conn: object) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]

    return plain


def hammer(url: str, mode: str, seconds: float, hold: float, gap: float) -> None:
    """Intake's pattern: hold the lock ``hold`` seconds, let go for ``gap``; prints transactions/s."""
    eng, done = engine(url, mode), 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with eng.begin() as c:
            c.execute(text("INSERT INTO turns VALUES ('hammer')"))
            time.sleep(hold)
        done += 1
        time.sleep(gap)
    print(done / seconds, flush=True)


def waiter(url: str, mode: str, tries: int) -> list[float]:
    eng, waits = engine(url, mode), []
    for _ in range(tries):
        time.sleep(0.05)
        started = time.perf_counter()
        with eng.begin() as c:
            c.execute(text("INSERT INTO turns VALUES ('waiter')"))
            waits.append(time.perf_counter() - started)
    return waits


def one(mode: str, args: argparse.Namespace, folder: Path) -> tuple[list[float], float]:
    url = f"sqlite:///{folder / f'{mode}.db'}"
    with engine(url, mode).begin() as c:
        c.execute(text("CREATE TABLE turns (who TEXT)"))
    seconds = args.tries * 0.06 + 3
    cmd = [sys.executable, __file__, "--hammer", url, mode, str(seconds), str(args.hold_ms), str(args.gap_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the hammer is writing
    waits = waiter(url, mode, args.tries)
    out, _ = proc.communicate(timeout=seconds + 60)
    return waits, float(out.strip() or 0)


def main() -> None:
    if sys.argv[1:2] == ["--hammer"]:
        url, mode, seconds, hold, gap = sys.argv[2:7]
        hammer(url, mode, float(seconds), float(hold) / 1000, float(gap) / 1000)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=60)
    parser.add_argument("--hold-ms", type=float, default=3.0)
    parser.add_argument("--gap-ms", type=float, default=1.0)
    args = parser.parse_args()
    table = Table(title=f"A writer's turn beside a hammer ({args.hold_ms} ms held, {args.gap_ms} ms free)")
    for column in ("waiting", "waiter p50", "p95", "max", "hammer tx/s"):
        table.add_column(column, justify="right" if column != "waiting" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("sqlite", "product"):
            waits, rate = one(mode, args, Path(tmp))
            q = statistics.quantiles(waits, n=20)
            ms = [f"{1000 * v:.1f} ms" for v in (statistics.median(waits), q[18], max(waits))]
            table.add_row(mode, *ms, f"{rate:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()

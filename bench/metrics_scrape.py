"""What one Prometheus scrape of ``/metrics`` costs as history grows (``prometheus.exposition()``).

Why: every number of ``/metrics`` is read from the database at scrape time, and a scrape every 15 s
for years must not grow with the history. Seeds a fresh database with ``--incidents`` incidents (each
with its ``identified`` event, a level raise on one in five, deadlines, deliveries, an improvement
action on one in ten) and ``--feedback`` handled feedback rows, then times ``--runs`` scrapes and
records the Python memory a scrape allocates at its peak (tracemalloc). Prints one line per database:

    scrape sqlite incidents=5000 feedback=50000: p50 41.2 ms, max 44.0 ms, peak 0.3 MB

SQLite in a temporary folder always; PostgreSQL too when 127.0.0.1:5432 answers (user postgres,
trust auth; a database made and dropped for the run).

    python bench/metrics_scrape.py [--incidents 5000] [--feedback 50000] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

CATEGORIES = ("product_quality", "service_failure", "special_scenario")
ADMIN = "host=127.0.0.1 user=postgres dbname=postgres connect_timeout=2"
NOTICES = ("incident_opened", "level_raised", "deadline_warning", "deadline_missed")


def _incident(n: int, now: datetime) -> dict[str, Any]:
    iid, at, level, closed = f"INC2025{n:08d}", now - timedelta(minutes=n), 3 - n % 3, n % 4 != 0
    return {
        "id": iid,
        "category": CATEGORIES[n % 3],
        "level": level,
        "status": "closed" if closed else "handling",
        "correlation_key": iid,
        "open_key": None if closed else iid,
        "summary": "s",
        "customers": 1,
        "level_reasons": [],
        "identified_at": at,
        "first_contact_at": at + timedelta(minutes=n % 90),
        "solution_round": 1,
        "follow_up_round": 1,
        "recurrence_of": None if n % 7 else "INC000",
    }


def _around(incident: dict[str, Any], n: int) -> dict[str, list[dict[str, Any]]]:
    """The rows an incident leaves: its events, a deadline, deliveries, maybe an improvement action."""
    iid, at, level = incident["id"], incident["identified_at"], incident["level"]
    event = {"incident_id": iid, "at": at, "by": "app"}
    rows: dict[str, list[dict[str, Any]]] = {
        "events": [{**event, "event": "identified", "detail": f"L{level}"}],
        "deadlines": [
            {
                "incident_id": iid,
                "kind": "contact",
                "due_at": at + timedelta(minutes=30),
                "created_at": at,
                "state": "missed" if n % 6 == 0 else "met",
            }
        ],  # fmt: skip
        "deliveries": [
            {
                "incident_id": iid,
                "notice": notice,
                "role": "customer_service",
                "url": "json://x",
                "attempts": 1,
                "status": "sent" if k % 5 else "failed",
                "title": "t",
                "created_at": at,
            }
            for k, notice in enumerate(NOTICES[: 1 + n % 4])
        ],  # fmt: skip
        "actions": [],
    }
    if n % 5 == 0 and level > 1:
        rows["events"].append({**event, "event": "level_raised", "detail": f"L{level} → L{level - 1}"})
    if n % 10 == 0:
        rows["actions"].append(
            {"id": f"ACT{n:08d}", "incident_id": iid, "kind": "preventive", "text": "t", "owner": "cs",
             "due_at": at + timedelta(days=7), "status": "open" if n % 20 else "done", "created_at": at,
             "created_by": "x"}
        )  # fmt: skip
    return rows


def _feedback(n: int, incidents: int, now: datetime) -> dict[str, Any]:
    received = now - timedelta(seconds=n)
    return {
        "id": f"FB2025{n:09d}",
        "incident_id": f"INC2025{n % incidents:08d}",
        "kind": "complaint",
        "channel": ("app", "phone", "web")[n % 3],
        "summary": "s",
        "customer_key": f"c{n}",
        "customers": 1,
        "received_at": received,
        "handled_at": received + timedelta(milliseconds=200 + n % 5000),
    }


def seed(url: str, incidents: int, feedback: int) -> None:
    import models
    from models import Deadline, Delivery, Feedback, ImprovementAction, Incident, TimelineEvent
    from models.migrate import upgrade

    upgrade(url)
    now = models.utcnow()
    tables: dict[Any, list[dict[str, Any]]] = {m: [] for m in (Incident, TimelineEvent, Deadline, Delivery)}
    tables[ImprovementAction] = []
    for n in range(incidents):
        tables[Incident].append(row := _incident(n, now))
        around = _around(row, n)
        tables[TimelineEvent] += around["events"]
        tables[Deadline] += around["deadlines"]
        tables[Delivery] += around["deliveries"]
        tables[ImprovementAction] += around["actions"]
    tables[Feedback] = [_feedback(n, incidents, now) for n in range(feedback)]
    with models.get_engine(url).begin() as conn:
        for model, rows in tables.items():
            for start in range(0, len(rows), 5000):
                conn.execute(insert(model), rows[start : start + 5000])


def measure(url: str, runs: int) -> tuple[list[float], float]:
    import models
    from incident.metrics import prometheus

    os.environ["INCIDENT_DB_URL"] = url
    models.reset_engine()
    prometheus.exposition()  # warm: the engine, the playbooks, the compiled statements
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        prometheus.exposition()
        took.append(time.perf_counter() - started)
    tracemalloc.start()
    prometheus.exposition()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return took, peak


def report(name: str, args: argparse.Namespace, took: list[float], peak: float) -> None:
    print(
        f"scrape {name} incidents={args.incidents} feedback={args.feedback}: "
        f"p50 {statistics.median(took) * 1000:.1f} ms, max {max(took) * 1000:.1f} ms, "
        f"peak {peak / 1e6:.1f} MB"
    )


def postgres(args: argparse.Namespace) -> None:
    try:
        import psycopg

        admin = psycopg.connect(
            "host=127.0.0.1 user=postgres dbname=postgres connect_timeout=2", autocommit=True
        )
    except Exception as exc:  # noqa: BLE001 (a benchmark: no PostgreSQL here is a line, not a failure)
        print(f"scrape postgresql: skipped ({type(exc).__name__})")
        return
    name = f"bench_scrape_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
            seed(url, args.incidents, args.feedback)
            report("postgresql", args, *measure(url, args.runs))
        finally:
            import models

            models.reset_engine()
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--feedback", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["INCIDENT_HOME"] = home
        url = f"sqlite:///{home}/incident.db"
        seed(url, args.incidents, args.feedback)
        report("sqlite", args, *measure(url, args.runs))
    postgres(args)


if __name__ == "__main__":
    main()

"""A complaint storm through a real ``incident serve``, and stock Prefect for comparison. Prints one table.

Starts the service on loopback in a temporary INCIDENT_HOME with its own Prefect server: with
``--db postgres`` (default) fresh PostgreSQL databases for the product and for Prefect's server
(PREFECT_API_DATABASE_CONNECTION_URL, pg_trgm); with ``--db sqlite`` the embedded default (SQLite
for both). A local webhook receiver is the apprise target of every role and notes arrival times.

Posts ``-n`` complaints (default 1,000: 500 distinct customers about batch STORM-B1, the rest over 20
other problems, shuffled), ``--concurrency`` at a time as fast as answered, or at ``--rate`` per second
(open loop: latency counts from when a request was due, so a stalled service cannot hide). Then waits
until every ``handle_feedback`` flow run is Completed in Prefect, checks the database, and runs the
baseline: as many bare no-op Prefect flow runs (async, stock settings, ``--baseline-concurrency`` at a
time) on the same Prefect server, in this process.

    python bench/storm.py [--db postgres|sqlite] [-n 1000] [--rate 200] [--no-baseline] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stormkit import Sent, complaints, post_all, served  # noqa: E402

BATCH = "storm-b1"


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> dict[str, int]:
    """The service's children by what they are: ``prefect`` (its Prefect server), ``worker`` and
    ``urgent`` (the process that runs level-1 reports' flows)."""
    found = {}
    try:
        pids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return {}
    for child in pids:
        try:
            args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        worker = b"incident.engine.worker" in args or b"flows.worker" in args
        kind = "worker" if worker else "urgent" if b"incident.engine.urgent" in args else str(child)
        kind = "prefect" if b"prefect" in args else kind
        found[kind] = child
    return found


def tree(pid: int) -> dict[int, float]:
    """CPU seconds of this process and of all its descendants (the incident runs' processes among them)."""
    found = {pid: cpu_seconds(pid)}
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in children.read_text().split():
                found.update(tree(int(child)))
    return found


async def settle(pid: int, quiet: float = 0.1, budget: float = 180.0) -> float:
    """Wait until the service's processes (API, worker, urgent process, Prefect server, the incident
    runs' processes) used under ``quiet`` of a core over a second: what start-up or the idle probe set
    going is over. Seconds waited. Why: each incident the probe opened starts a run process (~2.5 s of
    CPU importing Prefect); with a fixed pause they were still starting when the storm began."""
    start = time.perf_counter()
    while time.perf_counter() - start < budget:
        before = tree(pid)
        await asyncio.sleep(1.0)
        after = tree(pid)
        if sum(cpu - before.get(p, 0.0) for p, cpu in after.items()) < quiet:
            break
    return time.perf_counter() - start


async def count_runs(api: str, states: list[str]) -> int:
    body = {
        "flows": {"name": {"any_": ["handle_feedback"]}},
        "flow_runs": {"state": {"type": {"any_": states}}},
    }
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{api}/flow_runs/count", json=body)
        response.raise_for_status()
        return int(response.json())


def unhandled(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("select count(*) from feedback where handled_at is null")).scalar_one()
            )
    finally:
        engine.dispose()


async def wait_runs(api: str, db_url: str, n: int, budget: float) -> tuple[float | None, int, int, int]:
    """Until ``n`` handle_feedback runs are Completed: (when, completed, failed, handled).

    Progress is watched in our database (``handled_at``, set as a run's last step) so the watching
    costs the Prefect server nothing; Prefect's own count decides, polled only once that is done.
    ``handled``: the feedback whose run had finished its work when the budget ran out (all, if it
    did not), so a storm that outlasts the budget still gives its rate over the budget.
    """
    deadline = time.perf_counter() + budget
    completed = failed = 0
    left = n
    while time.perf_counter() < deadline:
        left = await asyncio.to_thread(unhandled, db_url)
        if left == 0:
            completed = await count_runs(api, ["COMPLETED"])
            failed = await count_runs(api, ["FAILED", "CRASHED", "CANCELLED"])
            if completed + failed >= n:
                return (time.perf_counter() if completed >= n else None), completed, failed, n
        await asyncio.sleep(0.2)
    return None, completed, failed, n - left


def check_database(url: str, accepted: list[Sent]) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ids = {r[0] for r in conn.execute(text("select id from feedback"))}
            incidents = conn.execute(
                text("select id, customers, level from incidents where correlation_key like :k"),
                {"k": f"%{BATCH}%"},
            ).all()
            unhandled = conn.execute(text("select count(*) from feedback where handled_at is null")).scalar()
    finally:
        engine.dispose()
    lost = [s.answer["feedback_id"] for s in accepted if s.answer["feedback_id"] not in ids]
    return {"lost": len(lost), "rows": len(ids), "incidents": incidents, "unhandled": unhandled}


async def baseline(api: str, n: int, concurrency: int, budget: float) -> tuple[int, float]:
    """Stock Prefect: ``n`` no-op async flows called directly, ``concurrency`` at a time."""
    os.environ["PREFECT_API_URL"] = api
    from prefect import flow

    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):  # quiet console, stock API logs
        for handler in logging.getLogger(name).handlers:
            if type(handler).__name__ != "APILogHandler":
                handler.setLevel(logging.WARNING)

    @flow(name="storm-baseline-noop")
    async def noop(i: int) -> int:
        return i

    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        async with gate:
            await noop(i)
            done += 1

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    _, pending = await asyncio.wait(tasks, timeout=budget)
    elapsed = time.perf_counter() - start
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return done, elapsed


def write_latencies(path: Path, sent: list[Sent]) -> None:
    """One CSV row per request: when it was due (seconds into the storm), its latency, its answer."""
    start = min(s.due for s in sent)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["due_s", "latency_ms", "client_lag_ms", "status", "due_monotonic"])
        for s in sorted(sent, key=lambda s: s.due):
            lag = (s.sent - s.due) * 1000  # the client's own lateness in sending it
            row = [f"{s.due - start:.3f}", f"{s.latency * 1000:.1f}", f"{lag:.1f}", s.status, f"{s.due:.3f}"]
            writer.writerow(row)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("[green]yes[/]" if ok else "[red]NO[/]")


async def storm(args: argparse.Namespace) -> None:
    # The 202 of a quiet service waits for the feedback's run id (the CLI's case); here it should not,
    # so that the idle reports measure intake alone, like the storm's.
    extra = {"INCIDENT_INTAKE_RUN_WAIT": "0", **dict(kv.split("=", 1) for kv in args.env)}
    console = Console()
    with served(args.db, extra, args.keep) as (receiver, stage, service):
        bodies = complaints(args.n, args.batch_customers, args.problems)
        kids = children(service.proc.pid)
        service_pids = [service.proc.pid, kids.get("worker", 0), kids.get("urgent", 0)]
        prefect_pid = kids.get("prefect", 0)
        waited = await settle(service.proc.pid)
        # the probe: 20 customers about one batch of its own (one incident, one incident-run process)
        one = {"category": "product_quality", "product_model": "P50", "batch": "IDLE-PROBE", "channel": "app"}
        probe = [{**one, "summary": f"idle probe {i}", "contact": f"1370{i:07d}"} for i in range(20)]
        idle = sorted(s.latency for s in await post_all(service.url, probe, 1, 2.0, args.timeout))
        waited += await settle(service.proc.pid)
        console.print(f"[bold]storm[/]: {args.n} complaints, db={args.db}, service {service.url}"
                      f" (idle after {waited:.0f} s of waiting)")  # fmt: skip
        cpu0 = sum(map(cpu_seconds, service_pids)), cpu_seconds(prefect_pid)
        sent = await post_all(service.url, bodies, args.concurrency, args.rate, args.timeout)
        accepted = [s for s in sent if s.status == 202]
        if args.latencies:
            write_latencies(args.latencies, sent)
        first_sent = min(s.sent for s in sent)
        last_done = max(s.done for s in sent)
        finished, completed, failed, handled = await wait_runs(
            service.prefect_api, stage.app_url, len(accepted) + len(probe), args.timeout
        )
        stopped_waiting = time.perf_counter()
        handled -= len(probe)  # the storm's own (the probe's were handled before it)
        cpu1 = sum(map(cpu_seconds, service_pids)), cpu_seconds(prefect_pid)
        await asyncio.sleep(0.5)  # the last notices
        db = check_database(stage.app_url, accepted)

        batch = [s for s in accepted if s.body.get("batch") == "STORM-B1"]
        batch_incidents = {s.answer["incident_id"] for s in batch}
        hundredth = [s for s in batch if s.answer.get("raised_from") == 2 and s.answer.get("level") == 1]
        incident = next(iter(batch_incidents), "?")

        def l1_notice(title: str) -> bool:
            return incident in title and ("to L1" in title or title.startswith("[L1]"))

        notice_at = receiver.first(l1_notice)
        latencies = sorted(s.latency for s in accepted)
        base_done, base_elapsed = (0, 0.0)
        if args.baseline:
            console.print(
                f"baseline: {args.n} stock no-op flow runs, {args.baseline_concurrency} at a time …"
            )
            base_done, base_elapsed = await baseline(
                service.prefect_api, args.n, args.baseline_concurrency, args.baseline_timeout
            )

    post_s = last_done - first_sent
    ours = len(accepted) / (finished - first_sent) if finished else None
    # Not all done within the budget: the rate over it, an upper bound of the rate for all.
    over_budget = handled / (stopped_waiting - first_sent) if not finished else None
    stock = base_done / base_elapsed if base_elapsed else None
    table = Table(
        title=f"Complaint storm: {args.db}, {args.n} complaints" + (f" at {args.rate}/s" if args.rate else "")
    )
    for column in ("measure", "value", "target", "met"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row(
        "accepted (202) / sent", f"{len(accepted)} / {len(sent)}", "all", verdict(len(accepted) == len(sent))
    )
    refused = Counter(str(s.status or s.answer.get("error", "?"))[:40] for s in sent if s.status != 202)
    if refused:
        table.add_row("not accepted, by answer", ", ".join(f"{k}: {n}" for k, n in refused.items()), "", None)
    table.add_row("accepted/s", f"{len(accepted) / post_s:.0f}", "", None)
    p50, p99 = statistics.median(latencies), latencies[max(0, int(len(latencies) * 0.99) - 1)]
    idle_p50 = statistics.median(idle)
    table.add_row("single report on an idle service, p50 of 20", ms(idle_p50), "", None)
    table.add_row("intake latency p50", ms(p50), "", None)
    table.add_row(
        "intake latency p99",
        f"{ms(p99)} ({p99 / idle_p50:.1f}× idle p50)",
        "≤ 5× idle p50",
        verdict(p99 <= 5 * idle_p50),
    )
    table.add_row("lost feedback (202 without a row)", str(db["lost"]), "0", verdict(db["lost"] == 0))
    table.add_row(
        "incidents opened for the batch", str(len(db["incidents"])), "1", verdict(len(db["incidents"]) == 1)
    )
    if db["incidents"]:
        _, customers, level = db["incidents"][0]
        table.add_row(
            "batch incident: customers, level",
            f"{customers}, L{level}",
            f"{args.batch_customers}, L1",
            verdict((customers, level) == (args.batch_customers, 1)),
        )
    t100 = hundredth[0].done if len(hundredth) == 1 else None
    table.add_row(
        "L1 in the 202 of the 100th distinct customer",
        "yes (same transaction)" if t100 else "no",
        "yes",
        verdict(t100 is not None),
    )
    if t100:
        table.add_row("  its intake latency", ms(hundredth[0].latency), "", None)
    l1 = notice_at - t100 if notice_at and t100 else None
    table.add_row(
        "L1 notice at the webhook after the 100th customer's 202",
        f"{l1:.2f} s" if l1 is not None else "never",
        "< 1 s",
        verdict(l1 is not None and l1 < 1),
    )
    table.add_row(
        "all feedback flow runs Completed (from first post)",
        f"{finished - first_sent:.1f} s" if finished else f"no: {handled} handled in {args.timeout:.0f} s",
        "< 60 s",
        verdict(bool(finished) and finished - first_sent < 60),
    )
    rate = f"{ours:.1f}" if ours else f"under {over_budget:.1f} (not all done)" if over_budget else "-"
    table.add_row("feedback flow runs/s", rate, "", None)
    table.add_row(
        "CPU s during storm: service (API, worker, urgent) / Prefect server",
        f"{cpu1[0] - cpu0[0]:.0f} / {cpu1[1] - cpu0[1]:.0f}",
        "",
        None,
    )
    if args.baseline:
        table.add_row(
            "stock Prefect: no-op flow runs/s",
            f"{stock:.1f} ({base_done} in {base_elapsed:.0f} s)" if stock else "-",
            "",
            None,
        )
        ratio = ours / stock if ours and stock else None
        bound = over_budget / stock if over_budget and stock else None
        table.add_row(
            "ratio (ours / stock)",
            f"{ratio:.2f}×" if ratio else f"under {bound:.2f}×" if bound else "-",
            "≥ 3×",
            verdict(ratio is not None and ratio >= 3),
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("-n", type=int, default=1000, help="complaints to post")
    parser.add_argument("--batch-customers", type=int, default=500)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--rate", type=float, help="open loop: requests per second")
    parser.add_argument("--timeout", type=float, default=600, help="bound on each phase, seconds")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument("--baseline-concurrency", type=int, default=50)
    parser.add_argument("--baseline-timeout", type=float, default=400)
    parser.add_argument("--keep", action="store_true", help="keep the home and databases")
    parser.add_argument("--latencies", type=Path, help="write each request's latency to this CSV")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="a setting for the service"
    )
    asyncio.run(storm(parser.parse_args()))


if __name__ == "__main__":
    main()

"""How long the console's board (``GET /``) takes with 1,000 open incidents.

Why measure it: the board is the duty manager's home page and reloads itself every minute; it must stay
fast however many incidents are open. It reads the incidents in two queries (deadlines eager-loaded) and
asks Prefect what the runs wait for in one batched query per 200 runs, never once per row.

What it does: a temporary SQLite database gets N incidents through ``incident.feedback.service.record``
(the real
intake: ids, grading, deadlines), spread over the last three hours so that some are overdue; the real web
app (``incident.api.web.create_web_app``) is served by uvicorn on a free port; ``GET /`` is timed over HTTP.
Two scenarios: the incidents without flow runs (database only), and each with a suspended Prefect run on a
``prefect_test_harness`` server (so the batched waiting-point lookup is part of the time). It also times
the three parts in-process: the database rows, the Prefect lookup, the template.

Usage::

    /tmp/venv/bin/python bench/board_render.py [--incidents 1000] [--repeat 7] [--no-prefect]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

TOKEN = "bench-token"
CATEGORIES = ("product_quality", "service_failure", "special_scenario")
POINTS = ("contact", "measure", "cause", "proposal-1", "approval-1", "confirmation-1", "survey-1")


def seed(count: int) -> float:
    """N open incidents of all levels and categories; returns the seconds it took."""
    from incident.feedback import service as intake
    from incident.feedback.inputs import FeedbackIn
    from models import utcnow

    start, now = time.perf_counter(), utcnow()
    for i in range(count):
        level_fields: dict[str, Any] = (
            {"customers": 150, "media": True}
            if i % 10 == 0
            else {"customers": 20}
            if i % 3 == 1
            else {"customers": 1 + i % 9}
        )
        body = FeedbackIn(
            category=CATEGORIES[i % 3],
            summary=f"bench case {i}: 电池鼓包 <b>not bold</b> {{{{ 7*7 }}}}",
            product_model=f"M{i}",
            batch=f"B{i}",
            service=f"s{i}",
            region=f"r{i}",
            cause=f"c{i}",
            **level_fields,
        )
        intake.record(body, now=now - timedelta(minutes=(i * 7) % 180))
    return time.perf_counter() - start


async def suspended_runs(count: int) -> list[str]:
    """N flow runs in Prefect's Suspended state, each at one of the incident flow's waiting points."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Suspended

    @flow(name="bench_board")
    def placeholder() -> None:
        """Only its runs are used: they stand for suspended incident runs."""

    limit = asyncio.Semaphore(16)
    async with get_client() as client:

        async def one(i: int) -> str:
            async with limit:
                run = await client.create_flow_run(
                    placeholder, name=f"bench-{i}", state=Suspended(pause_key=POINTS[i % len(POINTS)])
                )
                return str(run.id)

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def attach_runs(run_ids: list[str]) -> None:
    from sqlalchemy import select

    from models import Incident, session_scope

    with session_scope() as s:
        for incident, run_id in zip(s.scalars(select(Incident).order_by(Incident.id)), run_ids, strict=False):
            incident.flow_run_id = run_id


def serve() -> tuple[str, Callable[[], None]]:
    """The real web app on a free port, in a thread that keeps this context's Prefect settings."""
    import httpx
    import uvicorn

    from incident.api.web import create_web_app
    from incident.server import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_web_app(TOKEN), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return url, stop


def time_board(url: str, repeat: int) -> dict[str, Any]:
    """The first GET (nothing cached, templates compiled), then ``repeat`` timed GETs."""
    import httpx

    def get(client: httpx.Client) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = client.get("/")
        assert response.status_code == 200, response.status_code
        return (time.perf_counter() - start) * 1000, response

    with httpx.Client(base_url=url, cookies={"incident_token": TOKEN}, timeout=60) as client:
        first, _ = get(client)
        time.sleep(2)  # let a background Prefect lookup started by the first GET finish
        timed = [get(client) for _ in range(repeat)]
    times = [t for t, _ in timed]
    html = timed[-1][1].text
    return {
        "first": first,
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "kb": len(timed[-1][1].content) / 1024,
        "shown": html.count("data-incident="),
        "waiting": html.count("data-waiting="),
    }


def parts(repeat: int) -> dict[str, float]:
    """Median milliseconds of the board's three parts, in-process."""
    from incident.console import board
    from incident.console.prefect_runs import waiting_points
    from incident.console.render import environment

    def median_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
        samples, result = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            result = fn()
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples), result

    rows_ms, rows = median_ms(board.open_rows)
    ids = [r["flow_run_id"] for r in rows if r["flow_run_id"]]
    lookup_ms, waiting = median_ms(lambda: asyncio.run(waiting_points(ids)))
    template = environment().get_template("board.html.j2")
    context = {
        "rows": rows,
        "counts": board.counts(rows),
        "waiting": waiting,
        "stale": False,
        "waiting_age": 0,
    }
    render_ms, _ = median_ms(
        lambda: template.render(**context, flash=None, csrf="", logged_in=True, path="/")
    )
    return {"rows": rows_ms, "prefect": lookup_ms, "template": render_ms}


def scenario(name: str, count: int, runs: int, repeat: int) -> dict[str, Any]:
    url, stop = serve()
    try:
        timed = time_board(url, repeat)
    finally:
        stop()
    assert timed["shown"] == count, f"the board shows {timed['shown']} incidents, expected {count}"
    return {"scenario": name, "incidents": count, "runs": runs, **timed, **parts(repeat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-prefect", action="store_true", help="skip the scenario with Prefect runs")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="board-bench-"))
    os.environ.update(INCIDENT_HOME=str(home), INCIDENT_DB_URL=f"sqlite:///{home / 'incident.db'}")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from models.migrate import upgrade

    upgrade()
    seconds = seed(args.incidents)
    print(
        f"seeded {args.incidents} incidents through incident.feedback.service.record in {seconds:.1f} s",
        file=sys.stderr,
    )
    results = [scenario("database only", args.incidents, 0, args.repeat)]
    if not args.no_prefect:
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            start = time.perf_counter()
            run_ids = asyncio.run(suspended_runs(args.incidents))
            attach_runs(run_ids)
            print(
                f"created {len(run_ids)} suspended runs in {time.perf_counter() - start:.1f} s",
                file=sys.stderr,
            )
            results.append(scenario("with Prefect waiting points", args.incidents, len(run_ids), args.repeat))

    print(f"\nGET / with {args.incidents} open incidents: the first request, then {args.repeat} timed (ms)\n")
    head = (
        f"{'scenario':<28} {'runs':>5} {'first':>6} {'median':>7} {'min':>5} {'max':>5} {'KB':>5} "
        f"{'waiting':>7} | {'rows':>5} {'prefect':>7} {'template':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['scenario']:<28} {r['runs']:>5} {r['first']:>6.0f} {r['median']:>7.0f} {r['min']:>5.0f} "
            f"{r['max']:>5.0f} {r['kb']:>5.0f} {r['waiting']:>7} | {r['rows']:>5.0f} {r['prefect']:>7.0f} "
            f"{r['template']:>8.0f}"
        )
    print(
        "\nfirst: nothing cached yet; waiting: rows showing their run's waiting point on the last page;"
        "\nrows / prefect / template: the board's parts timed in-process (median ms; prefect = the batched"
        "\nlookup of every run, which the board reuses for 5 s and otherwise awaits for at most 0.5 s)."
    )


if __name__ == "__main__":
    main()

"""Human-step latency: a person's answer → the incident's run at its next waiting point, notices sent.

Starts a real ``incident serve`` (as bench/storm.py does) and walks ``--incidents`` L3 service-failure
incidents through five steps each (contact, measure, cause, propose, approve): 50 steps by default.
For each step it times, from just before the action's POST, until Prefect shows the run suspended at
the next waiting point and, for the steps that send one (propose → approval requested, approve →
approval decided), the notice has reached the local webhook. Prints p50/p95/max per step and overall.

    python bench/human_step.py [--db sqlite|postgres] [--incidents 10] [--env INCIDENT_HOT_WAIT_SECONDS=0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stormkit import Receiver, served  # noqa: E402

# Each step as the person who does it (issue 11): the service token may not approve.
PEOPLE = {"王芳": ["customer_service", "cs_manager"], "李部长": ["dept_head"]}
STEPS: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("contact", {"by": "王芳"}, "measure", None),
    ("measure", {"kind": "expedite"}, "cause", None),
    ("cause", {"root": "dispatch skipped", "direct": "no reminder", "stage": "service"}, "proposal-1", None),
    ("propose", {"solution": "fix_process"}, "approval-1", "approval needed"),
    ("approve", {"by": "李部长", "role": "dept_head"}, "confirmation-1", "approved"),
]


def waiting_at(prefect: httpx.Client, run_id: str) -> str | None:
    """The waiting point the run is paused at (a pause key ``approval-1-retry-…`` waits at ``approval-1``)."""
    state = prefect.get(f"/flow_runs/{run_id}").json()["state"]
    key = state["state_details"].get("pause_key") if state["type"] == "PAUSED" else None
    return key.split("-retry-")[0] if key else None


PHASES = ("to pick-up", "process start", "replay + step")


def phases(prefect: httpx.Client, run_id: str, since: datetime) -> dict[str, float]:
    """Where a step's time went, from the run's own states since the answer: resumed → Pending (the
    runner's poll), Pending → Running (a new process), Running → Paused (the replay and the step)."""
    states = prefect.get("/flow_run_states/", params={"flow_run_id": run_id}).json()
    seen = sorted((datetime.fromisoformat(st["timestamp"]), st["type"]) for st in states)
    seen = [(at, kind) for at, kind in seen if at >= since]
    first = {kind: at for at, kind in reversed(seen)}
    if "RUNNING" not in first or "PAUSED" not in first:
        return {}
    resumed = seen[0][0]
    pending = first.get("PENDING", first["RUNNING"])
    return {
        "to pick-up": (pending - resumed).total_seconds(),
        "process start": (first["RUNNING"] - pending).total_seconds(),
        "replay + step": (first["PAUSED"] - first["RUNNING"]).total_seconds(),
    }


def until(check: Any, timeout: float = 120) -> float:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.02)
    return time.perf_counter()


def people(api: httpx.Client) -> dict[str, str]:
    """The bench's people and their tokens (made with the service token, as an administrator would)."""
    made = {}
    for name, roles in PEOPLE.items():
        response = api.post("/api/people", json={"name": name, "roles": roles})
        response.raise_for_status()
        made[name] = response.json()["token"]
    return made


def walk(
    api: httpx.Client, prefect: httpx.Client, receiver: Receiver, region: str, tokens: dict[str, str]
) -> dict[str, float]:
    body = {"category": "service_failure", "summary": "technician never came", "service": "install",
            "region": region, "customer": "李雷"}  # fmt: skip
    incident_id = api.post("/api/feedback", json=body).json()["incident_id"]
    until(lambda: api.get(f"/api/incidents/{incident_id}").json()["flow_run_id"] is not None)
    run_id = api.get(f"/api/incidents/{incident_id}").json()["flow_run_id"]
    until(lambda: waiting_at(prefect, run_id) == "contact")
    took: dict[str, float] = {}
    for name, answer, next_key, notice in STEPS:
        since = datetime.now(UTC)
        start = time.perf_counter()
        person = tokens[answer.get("by", "王芳")]
        response = api.post(
            f"/api/incidents/{incident_id}/{name}", json=answer, headers={"Authorization": f"Bearer {person}"}
        )
        response.raise_for_status()
        at_point = until(lambda k=next_key: waiting_at(prefect, run_id) == k)
        if notice:
            heard = until(
                lambda n=notice: receiver.first(lambda t: incident_id in t and n in t.lower()) is not None
            )
            at_point = max(at_point, heard)
        took[name] = at_point - start
        for phase, seconds in phases(prefect, run_id, since).items():
            took[f"{name}:{phase}"] = seconds
    return took


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="sqlite")
    parser.add_argument("--incidents", type=int, default=10)
    parser.add_argument("--env", action="append", default=[], help="a service setting: NAME=VALUE")
    args = parser.parse_args()
    results: list[dict[str, float]] = []
    with served(args.db, dict(item.split("=", 1) for item in args.env)) as (receiver, _, service):
        api = httpx.Client(base_url=service.url, headers={"Authorization": "Bearer storm"}, timeout=60)
        prefect = httpx.Client(base_url=service.prefect_api, timeout=30)
        tokens = people(api)
        for i in range(args.incidents):
            results.append(walk(api, prefect, receiver, f"HS-{i}", tokens))
    table = Table(
        title=f"Human step → next waiting point with its notices ({args.db}, {len(results)} incidents"
        + "".join(f", {item}" for item in args.env)
        + ")"
    )
    for column in ("step", "n", "p50", "p95", "max"):
        table.add_column(column, justify="left" if column == "step" else "right")

    def row(label: str, values: list[float]) -> None:
        values = sorted(values)
        p95 = values[max(0, int(round(len(values) * 0.95)) - 1)]
        table.add_row(label, str(len(values)), f"{statistics.median(values):.2f} s", f"{p95:.2f} s",
                      f"{values[-1]:.2f} s")  # fmt: skip

    for name, *_ in STEPS:
        row(name, [r[name] for r in results])
    row("all steps", [r[name] for r in results for name, *_ in STEPS])
    for phase in PHASES:  # from the run's state timestamps (Prefect's clock), every step
        values = [v for r in results for k, v in r.items() if k.endswith(f":{phase}")]
        if values:
            row(f"  of which {phase}", values)
    Console().print(table)


if __name__ == "__main__":
    main()

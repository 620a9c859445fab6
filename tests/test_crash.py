"""SIGKILL of ``incident serve`` mid-storm, with incidents waiting for approval and a deadline about
to pass: after a restart nothing accepted is lost, waiting runs continue, the miss escalates once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml

import playbooks
from tests.conftest import Inbox, Service, start_service, stop_service


def drill_playbooks(folder: Path) -> Path:
    """The shipped playbooks, but a level-3 special scenario must be contacted within 12 s."""
    folder.mkdir()
    for path in Path(playbooks.__file__).parent.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    target = folder / "special_scenario.yaml"
    data = yaml.safe_load(target.read_text())
    data["levels"][3].update(contact_within="12s", warn_before="4s")
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    return folder


def to_approval(service: Service, batch: str) -> str:
    inc = service.cli_json(
        "report",
        "--category",
        "product_quality",
        "--summary",
        "hot battery",
        "--media",
        "--product-model",
        "K1",
        "--batch",
        batch,
        "--contact",
        "13511112222",
    )["incident_id"]
    for command in (
        ["contact", "--by", "A"],
        ["measure", "--kind", "spare_product"],
        ["cause", "--root", "cell", "--direct", "heat", "--stage", "production"],
        ["propose", "--solution", "replace"],
    ):
        service.cli_json(command[0], inc, *command[1:])
    service.wait_for_point(inc, "approval-1")
    return inc


def test_sigkill_then_restart_loses_nothing(prefect_api: str, inbox: Inbox, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"INCIDENT_PLAYBOOKS": str(drill_playbooks(tmp_path / "books"))}
    first = start_service(home, prefect_api, inbox, env)
    waiting = [to_approval(first, f"CRASH-{i}") for i in range(2)]
    late = first.cli_json(
        "report",
        "--category",
        "special_scenario",
        "--summary",
        "flooded road",
        "--cause",
        "flood",
        "--region",
        "crash-zone",
    )
    assert late["level"] == 3
    due = datetime.fromisoformat(late["contact_deadline"])

    accepted: list[str] = []
    guard = threading.Lock()
    headers = {"Authorization": f"Bearer {first.token}"}

    def post(i: int) -> None:
        body = {
            "category": "product_quality",
            "summary": f"swollen #{i}",
            "product_model": "S9",
            "batch": "STORM-CRASH",
            "contact": f"1370000{i:04d}",
            "channel": "app",
        }
        try:
            response = httpx.post(first.url + "/api/feedback", json=body, headers=headers, timeout=10)
        except httpx.HTTPError:
            return
        if response.status_code == 202:
            with guard:
                accepted.append(response.json()["feedback_id"])

    worker = children_of(first.proc.pid)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(post, i) for i in range(150)]
        while len(accepted) < 40:
            time.sleep(0.01)
        os.kill(first.proc.pid, signal.SIGKILL)
        for future in futures:
            future.result()
    first.proc.wait(10)
    assert 40 <= len(accepted) < 150
    assert worker and gone(worker), "the worker outlived the service it worked for"

    wait = (due - datetime.now(due.tzinfo)).total_seconds() + 2
    if wait > 0:
        time.sleep(wait)  # the contact deadline passes while nobody serves
    second = start_service(home, prefect_api, inbox, env)
    try:
        db = sqlite3.connect(home / "incident.db")
        present = {row[0] for row in db.execute("select id from feedback")}
        assert set(accepted) <= present  # every 202 is still there
        assert (
            db.execute(
                "select count(*) from incidents where correlation_key like '%storm-crash%'"
            ).fetchone()[0]
            == 1
        )
        deadline = time.monotonic() + 90
        while db.execute("select count(*) from feedback where handled_at is null").fetchone()[0]:
            assert time.monotonic() < deadline, "feedback accepted before the crash was not handled after it"
            time.sleep(0.5)

        for inc in waiting:
            second.wait_for_point(inc, "approval-1")
            assert second.cli_json("approve", inc, "--by", "陈总", "--role", "leadership")["approved"]
            second.wait_for_point(inc, "confirmation-1")

        escalated = second.wait_until(
            late["incident_id"], lambda s: any(e["event"] == "escalated" for e in s["timeline"]), "escalation"
        )
        time.sleep(3)  # a few more watcher ticks
        timeline = [e["event"] for e in second.show(late["incident_id"])["timeline"]]
        assert timeline.count("escalated") == 1 and timeline.count("deadline_missed") == 1
        assert [d["state"] for d in escalated["deadlines"] if d["kind"] == "contact"] == ["missed"]
        told = [m for m in inbox.for_incident(late["incident_id"]) if m["role"] == "cs_director"]
        assert (
            len(
                [
                    m
                    for m in told
                    if "12" in m["message"] or "contact" in m["message"].lower() or "联系" in m["message"]
                ]
            )
            >= 1
        )
        print(
            f"accepted before SIGKILL: {len(accepted)}, present after restart: "
            f"{len(set(accepted) & present)}, feedback rows: {len(present)}"
        )
    finally:
        stop_service(second)


def test_a_killed_worker_is_replaced_and_the_incidents_go_on(
    prefect_api: str, inbox: Inbox, tmp_path: Path
) -> None:
    """The worker process (it executes the runs) dies alone: the service starts another at once."""
    service = start_service(tmp_path / "home", prefect_api, inbox)
    try:
        inc = to_approval(service, "WORKER-1")
        [worker] = children_of(service.proc.pid)
        os.kill(int(worker), signal.SIGKILL)
        assert gone([worker])
        # Typed while no worker runs: the report is stored, the approval resumes the suspended run.
        reported = service.cli_json(
            "report", "--category", "service_failure", "--summary", "no technician",
            "--service", "install", "--region", "WORKER-1", "--customer", "李雷",
        )  # fmt: skip
        assert service.cli_json("approve", inc, "--by", "陈总", "--role", "leadership")["approved"]
        service.wait_for_point(inc, "confirmation-1")
        service.wait_for_point(reported["incident_id"], "contact")  # its run was made by the new worker
        assert children_of(service.proc.pid) not in ([], [worker])
    finally:
        stop_service(service)


@pytest.mark.parametrize("signal_name", ["SIGTERM"])
def test_graceful_stop_leaves_no_prefect_server_behind(tmp_path: Path, signal_name: str) -> None:
    """Without PREFECT_API_URL the service runs its own Prefect server; it and the worker must die with
    the service."""

    home = tmp_path / "own"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "INCIDENT_"))}
    env.update(INCIDENT_HOME=str(home), INCIDENT_API_TOKEN="t", INCIDENT_WORKER_METRICS_PORT="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "incident.cli", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (home / "service.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    children = children_of(proc.pid)
    assert len(children) == 2, "the service should run a Prefect server of its own and its worker"
    # Its UI talks to its own API (the random port), not to Prefect's default 127.0.0.1:4200.
    api_url = json.loads((home / "service.json").read_text())["prefect_api_url"]
    ui = httpx.get(api_url.removesuffix("/api") + "/ui-settings", timeout=10).json()
    assert ui["api_url"] == api_url and not api_url.endswith(":4200/api"), ui
    proc.send_signal(getattr(signal, signal_name))
    proc.wait(30)
    assert gone(children)  # the Prefect server shuts down gracefully: it is given time


def children_of(pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()


def gone(pids: list[str], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while [pid for pid in pids if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
        time.sleep(0.5)
    return not [pid for pid in pids if Path(f"/proc/{pid}").exists()]

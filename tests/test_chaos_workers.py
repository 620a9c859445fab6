"""Chaos: the workers. One SIGKILLed mid-storm with the runs it executes; and scale-out, two services
and a standalone ``incident worker`` on one PostgreSQL and one Prefect server.

Runs are counted in Prefect, this test's only (the session's Prefect server holds every test's runs,
whose names repeat across homes): feedback runs by this service's tag, incident runs by this test's
deployment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import (
    Answer,
    Storm,
    answer,
    assert_holds,
    db_url,
    descendants_of,
    gone,
    kill_all,
    measure,
    query,
    storm_bodies,
    waiting_incident,
    worker_of,
)
from tests.conftest import Inbox, Service, fresh_postgres, prefect_call, start_service

pytestmark = pytest.mark.chaos


def _runs(prefect_api: str, flow: str, **where: Any) -> list[dict[str, Any]]:
    """Every run of ``flow`` matching the filter (``tags`` and/or ``deployment``), page by page."""
    runs: dict[str, Any] = {}
    if "tags" in where:
        runs["tags"] = {"all_": where["tags"]}
    body: dict[str, Any] = {"flows": {"name": {"any_": [flow]}}, "flow_runs": runs, "limit": 200}
    if "deployment" in where:
        body["deployments"] = {"name": {"any_": [where["deployment"]]}}
    found: list[dict[str, Any]] = []
    while True:
        response = prefect_call(
            "POST", f"{prefect_api}/flow_runs/filter", json={**body, "offset": len(found)}
        )
        response.raise_for_status()
        found += response.json()
        if len(response.json()) < 200:
            return found


def _states(prefect_api: str, run_id: str) -> list[str]:
    """The run's state types, oldest first."""
    response = prefect_call("GET", f"{prefect_api}/flow_run_states/", params={"flow_run_id": run_id})
    response.raise_for_status()
    return [state["type"] for state in sorted(response.json(), key=lambda state: state["timestamp"])]


def _executions(states: list[str]) -> int:
    """How many times a process began executing the run: a Running right after a Pending (a runner's
    claim; Prefect's runner writes two Pending states, Pending and Submitting, for one). A resume from
    a pause is a Running after Paused: the same execution goes on."""
    return sum(
        1 for before, now in zip(states, states[1:], strict=False) if (before, now) == ("PENDING", "RUNNING")
    )


def _feedback_runs(prefect_api: str, service: Service) -> Counter[str]:
    """Completed ``handle_feedback`` runs per feedback id, of this service's runs (its tag)."""
    tag = f"incident-service:{service.env['INCIDENT_DEPLOYMENT']}"
    runs = _runs(prefect_api, "handle_feedback", tags=[tag])
    return Counter(run["name"] for run in runs if run["state_type"] == "COMPLETED")


CUT_SHORT = "SELECT id FROM feedback WHERE claimed_by LIKE :worker AND handled_at IS NOT NULL"


def test_worker_sigkilled_mid_storm(prefect_api: str, inbox: Inbox, tmp_path: Path) -> None:
    """The worker and the runs it executes are SIGKILLed (its machine dies) at report 15 of 40 while
    an incident waits in its process; the contact is typed at once: the service starts another worker,
    which finishes the work, and the answer moves the run on (its pause's process is known gone)."""
    started = time.monotonic()
    service = start_service(tmp_path / "home", prefect_api, inbox, {"INCIDENT_HOT_WAIT_SECONDS": "120"})
    try:
        waiting = waiting_incident(service, "KILLW-WAIT")
        service.wait_for_point(waiting, "contact")
        worker, answers, doomed = worker_of(service), [], []

        def during(i: int) -> None:
            if i == 15:
                doomed.extend([worker, *descendants_of(int(worker))])
                for pid in doomed:
                    os.kill(int(pid), signal.SIGKILL)
                assert gone(doomed, 10)
                answers.append(answer(service, waiting))  # while no worker runs

        storm = Storm(service.url, service.token)
        storm.send(storm_bodies("KILLW-1", 40), rate=20, during=during)
        figures = measure("worker SIGKILLed with its runs mid-storm", service, storm, "KILLW-1", answers,
                          started, notes=f"killed {len(doomed)} processes")  # fmt: skip
        assert len(doomed) >= 2, "the worker and the incident run it executed"
        assert_holds(figures, storm, answers)
        assert not storm.refused
        runs = _feedback_runs(prefect_api, service)
        # One completed run each, but where the kill fell after a run's last commit (the row handled)
        # and before Prefect was told: that run is left Running (then Crashed), and the row, handled,
        # is rightly not run again (seen once in CI).
        handled_by_the_dead = {f for (f,) in query(db_url(service), CUT_SHORT, worker=f"%:{worker}:%")}
        odd = [f for f in storm.accepted if runs[f] != 1 and not (runs[f] == 0 and f in handled_by_the_dead)]
        assert odd == [], "each feedback has one completed run"
        assert worker_of(service) != worker, "the worker was replaced"
    finally:
        kill_all(service)


LEVEL_1 = {"category": "product_quality", "summary": "电池起火", "injury": True, "product_model": "URG-P1"}


def _level_1(service: Service, batch: str) -> tuple[str, str]:
    """A report that opens a level-1 incident: its feedback and its incident."""
    response = service.api("POST", "/api/feedback", json={**LEVEL_1, "batch": batch})
    body = response.json()
    assert response.status_code == 202 and body["level"] == 1 and body["opened"], body
    return body["feedback_id"], body["incident_id"]


def _run_by(service: Service, feedback_id: str, timeout: float = 60) -> str:
    """Who executed the feedback's flow run (its row's claim), once it is handled."""
    deadline = time.monotonic() + timeout
    while True:
        sql = "SELECT claimed_by, handled_at FROM feedback WHERE id = :f"
        [(claimant, handled)] = query(db_url(service), sql, f=feedback_id)
        if handled is not None:
            return str(claimant)
        assert time.monotonic() < deadline, f"{feedback_id} not handled within {timeout} s"
        time.sleep(0.2)


def _urgent_ready(service: Service, not_pid: int | None = None, timeout: float = 120) -> dict[str, Any]:
    """What the service's urgent process wrote once ready (pid, claimant): one other than ``not_pid``."""
    ready, deadline = service.home / "urgent.ready", time.monotonic() + timeout
    while True:
        with contextlib.suppress(FileNotFoundError):
            info: dict[str, Any] = json.loads(ready.read_text())
            if info["pid"] != not_pid:
                return info
        assert time.monotonic() < deadline, "no urgent process got ready"
        time.sleep(0.2)


def _noticed(inbox: Inbox, incident_id: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not inbox.for_incident(incident_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_level_1_runs_in_the_urgent_process_which_may_die(
    prefect_api: str, inbox: Inbox, tmp_path: Path
) -> None:
    """A level-1 report's flow run is executed by the service's urgent process (claimed in its name, its
    notice sent). That process SIGKILLed: the next level-1 report is still run and noticed (by the API or
    the worker: the check can fail, as a claim left in a dead process's name would never be run), and
    the service starts another urgent process, which runs the report after."""
    service = start_service(tmp_path / "home", prefect_api, inbox)
    try:
        first = _urgent_ready(service)
        feedback, incident = _level_1(service, "URG-1")
        assert _run_by(service, feedback) == first["claimant"] and _noticed(inbox, incident)
        os.kill(first["pid"], signal.SIGKILL)
        feedback, incident = _level_1(service, "URG-2")
        assert _run_by(service, feedback).split(":")[1] != str(first["pid"]) and _noticed(inbox, incident)
        second = _urgent_ready(service, not_pid=first["pid"])
        feedback, incident = _level_1(service, "URG-3")
        assert _run_by(service, feedback) == second["claimant"] and _noticed(inbox, incident)
        assert worker_of(service, "incident.engine.urgent") == str(second["pid"])
    finally:
        kill_all(service)


def _standalone_worker(home: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``incident worker``, as on another machine: the same Prefect server and database, a home of its own."""
    home.mkdir(parents=True)
    ready = home / "worker.ready"
    worker_env = {**env, "INCIDENT_HOME": str(home), "INCIDENT_WORKER_READY_FILE": str(ready)}
    proc = subprocess.Popen([sys.executable, "-m", "incident.cli", "worker"], env=worker_env,
                            stdout=(home / "worker.log").open("ab"), stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, (home / "worker.log").read_text()[-2000:]
        time.sleep(0.2)
    return proc


def _storm_both(first: Service, second: Service) -> tuple[Storm, list[Answer]]:
    """15 reports to each API at once; the batch incident's contact typed into the second one during
    its storm (its run is one of the workers')."""
    storms, answers = [Storm(first.url, first.token), Storm(second.url, second.token)], []
    bodies = storm_bodies("TWO-1", 30)

    def during(i: int) -> None:
        if i == 5:
            deadline = time.monotonic() + 30
            while not (storms[0].incidents or storms[1].incidents) and time.monotonic() < deadline:
                time.sleep(0.05)
            answers.append(answer(second, (storms[0].incidents + storms[1].incidents)[0]))

    threads = [
        threading.Thread(target=storms[0].send, args=(bodies[0::2], 10.0)),
        threading.Thread(target=storms[1].send, args=(bodies[1::2], 10.0, during)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    both = Storm(first.url, first.token)
    for one in storms:
        both.accepted += one.accepted
        both.errors += one.errors
        for status, n in one.refused.items():
            both.refused[status] = both.refused.get(status, 0) + n
    return both, answers


def test_two_services_share_one_database_and_prefect(prefect_api: str, inbox: Inbox, tmp_path: Path) -> None:
    """Scale-out: two services (two API processes, two workers) and a standalone ``incident worker`` on
    one PostgreSQL and one Prefect server; a storm posted to both APIs, the contact of its incident
    typed into the second."""
    started = time.monotonic()
    with fresh_postgres() as url:
        deployment = f"incident-shared-{uuid.uuid4().hex[:8]}"
        shared = {"INCIDENT_DB_URL": url, "INCIDENT_DEPLOYMENT": deployment}
        shared["INCIDENT_HOT_WAIT_SECONDS"] = "120"  # every incident run stays in one execution
        first = start_service(tmp_path / "a", prefect_api, inbox, shared)  # it migrates the database
        with ThreadPoolExecutor(2) as pool:  # then the other two start together
            starting = pool.submit(start_service, tmp_path / "b", prefect_api, inbox, shared)
            standalone = pool.submit(_standalone_worker, tmp_path / "c", {**first.env, **shared}).result()
            second = starting.result()
        try:
            storm, answers = _storm_both(first, second)
            workers = {worker_of(first): "a", worker_of(second): "b", str(standalone.pid): "standalone"}
            case = "two services + a standalone worker, one PostgreSQL and Prefect"
            # Up to 240 s: this case's Prefect server is the session's SQLite harness, which answers 503
            # while another writer holds its file, and Prefect's client retries a call 5 times with 2–32 s
            # back-off. Seen once in a full serial run: one run's start waited out that chain (> 120 s)
            # while its claim was kept fresh; it is a wait, not a loss, and still fails here if it lasts.
            figures = measure(case, first, storm, "TWO-1", answers, started, handled_within=240)
            urgent = {worker_of(service, "incident.engine.urgent") for service in (first, second)}
            handled_by = _handled_by(url, {str(first.proc.pid), str(second.proc.pid), *urgent})
            share = ", ".join(f"{workers.get(pid, pid)} {n}" for pid, n in handled_by.items())
            figures.notes = "; ".join(filter(None, [f"feedback per worker: {share}", figures.notes]))
            assert_holds(figures, storm, answers)
            _every_run_executed_once(prefect_api, deployment, storm.accepted, url)
            assert set(handled_by) <= set(workers), handled_by  # only workers (API claims left out)
            assert str(standalone.pid) in handled_by and len(handled_by) >= 2, figures.notes
        finally:
            standalone.kill()
            standalone.wait(10)
            kill_all(first, second)


def _handled_by(url: str, api_pids: set[str]) -> Counter[str]:
    """Feedback per worker process (its claim's pid), the urgent claims of the API processes and their
    urgent processes left out."""
    claims = Counter(row[0].split(":")[1] for row in query(url, "SELECT claimed_by FROM feedback") if row[0])
    return Counter({pid: n for pid, n in claims.items() if pid not in api_pids})


def _every_run_executed_once(prefect_api: str, deployment: str, accepted: list[str], url: str) -> None:
    """Each feedback: one ``handle_feedback`` run, Running once. Each incident: one ``incident_response``
    run of this deployment, executed once (its hot wait outlasts the test: no suspension, no replay)."""
    feedback_runs = _runs(prefect_api, "handle_feedback", tags=[f"incident-service:{deployment}"])
    per_feedback = Counter(run["name"] for run in feedback_runs)
    assert [f for f in accepted if per_feedback[f] != 1] == [], per_feedback
    running = {run["name"]: _states(prefect_api, run["id"]).count("RUNNING") for run in feedback_runs}
    assert {f: n for f, n in running.items() if n != 1} == {}, running
    incident_runs = _runs(prefect_api, "incident_response", deployment=deployment)
    incidents = [row[0] for row in query(url, "SELECT id FROM incidents")]
    assert Counter(run["parameters"]["incident_id"] for run in incident_runs) == Counter(incidents)
    executions = {run["id"]: _executions(_states(prefect_api, run["id"])) for run in incident_runs}
    assert set(executions.values()) == {1}, executions

"""A run left ``Running`` by a process that vanished is marked ``Crashed`` by Prefect's automation and
rescheduled by the sweep (incident/engine/zombies.py).

The zombie is made with Prefect's public API, as a lost machine leaves one: a run of the service's
deployment put straight into ``Running`` with no process behind it, so no heartbeat and no state
change ever follows. The service runs with ``INCIDENT_ZOMBIE_SECONDS=10`` (Prefect's least) so the test
waits seconds, not minutes; the automation, the triggers service that fires it and the sweep are the
real ones.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flows import waiting
from incident.engine import roll
from tests.chaos import db_url, kill_all, query, worker_of
from tests.conftest import Inbox, dead_pid, prefect_call, start_service, stop_service


def _states(prefect_api: str, run_id: str) -> list[dict[str, Any]]:
    answer = prefect_call("GET", f"{prefect_api}/flow_run_states/", params={"flow_run_id": run_id})
    answer.raise_for_status()
    return sorted(answer.json(), key=lambda s: s["timestamp"])


def _automations(prefect_api: str) -> set[str]:
    answer = prefect_call("POST", f"{prefect_api}/automations/filter", json={}, timeout=30)
    answer.raise_for_status()
    return {a["name"] for a in answer.json()}


def _deployment_run(
    prefect_api: str, deployment: dict[str, Any], incident_id: str, state: str = "RUNNING"
) -> str:
    """A run of the service's deployment put straight into ``state``, with no process behind it."""
    created = prefect_call(
        "POST",
        f"{prefect_api}/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": {"incident_id": incident_id}, "state": {"type": state}},
        timeout=30,
    )
    created.raise_for_status()
    return str(created.json()["id"])


def _feedback_zombie(prefect_api: str, tag: str) -> str:
    """A ``handle_feedback`` run left Running, as a SIGKILLed worker leaves one (no deployment)."""
    flow = prefect_call("POST", f"{prefect_api}/flows/", json={"name": "handle_feedback"}, timeout=30)
    flow.raise_for_status()
    created = prefect_call(
        "POST",
        f"{prefect_api}/flow_runs/",
        json={"flow_id": flow.json()["id"], "name": "FB19990101999", "tags": ["feedback", tag],
              "state": {"type": "RUNNING"}},
        timeout=30,
    )  # fmt: skip
    created.raise_for_status()
    return str(created.json()["id"])


def test_a_silent_running_run_is_crashed_then_rescheduled(
    prefect_api: str, inbox: Inbox, tmp_path: Path
) -> None:
    service = start_service(tmp_path / "home", prefect_api, inbox, {"INCIDENT_ZOMBIE_SECONDS": "10"})
    try:
        name = service.env["INCIDENT_DEPLOYMENT"]
        automation = f"incident: crash silent runs of incident_response/{name}"
        deadline = time.monotonic() + 60
        while automation not in _automations(prefect_api):
            assert time.monotonic() < deadline, "the worker did not create the zombie automation"
            time.sleep(1)
        deployment = prefect_call("GET", f"{prefect_api}/deployments/name/incident_response/{name}").json()
        run_id = _deployment_run(prefect_api, deployment, "INC19990101999")
        feedback_run = _feedback_zombie(prefect_api, f"incident-service:{name}")
        started = time.monotonic()
        deadline = started + 90
        while True:
            kinds = [s["type"] for s in _states(prefect_api, run_id)]
            if "CRASHED" in kinds and kinds.index("CRASHED") < len(kinds) - 1:
                break  # crashed, and something came after it
            assert time.monotonic() < deadline, f"the zombie was not crashed and rescheduled: {kinds}"
            time.sleep(1)
        states = _states(prefect_api, run_id)
        crashed = next(s for s in states if s["type"] == "CRASHED")
        after = [s for s in states if s["timestamp"] > crashed["timestamp"]]
        print(f"\nzombie: Crashed after {crashed['timestamp']}, then {[s['type'] for s in after]}")
        assert "no heartbeat for 10 s" in crashed["message"]
        assert after[0]["type"] == "SCHEDULED" and "rescheduled by the sweep" in after[0]["message"]
        # A feedback run (in the worker's process, no deployment) is crashed too, and left Crashed: its
        # feedback row is taken over by another run, never by rescheduling this one. (Its trigger fires
        # on its own: it may come a moment after the incident run's.)
        while (kinds := [s["type"] for s in _states(prefect_api, feedback_run)])[-1] != "CRASHED":
            assert time.monotonic() < deadline, f"the feedback zombie was not crashed: {kinds}"
            time.sleep(1)
        time.sleep(3)  # the sweep's period: a rescheduling would come now
        assert [s["type"] for s in _states(prefect_api, feedback_run)][-1] == "CRASHED"
        # A run that waits for a person (Paused, maybe Suspended: no process by design) is no zombie.
        paused = _deployment_run(prefect_api, deployment, "INC19990101998")
        _set_state(prefect_api, paused, {"type": "PAUSED", "name": "Suspended"})
        time.sleep(15)
        assert [s["type"] for s in _states(prefect_api, paused)][-1] == "PAUSED"
    finally:
        stop_service(service)


def test_a_running_run_whose_process_here_is_gone_is_rescheduled_without_waiting_for_the_window(
    prefect_api: str, inbox: Inbox, tmp_path: Path
) -> None:
    """A restarted service finds the runs its killed worker was running: each names its process in its
    ``HOLDER`` label, in the Running state it runs in, and a pid gone from this host is known gone at
    once. The sweep crashes and reschedules such a run within seconds, long before the zombie window
    (90 s here). A label written in an earlier state is no evidence: a new execution names its process
    a moment after it is Running (seconds, under load), and until then the label names the process
    before. Such a run is left to its new process (it was crashed under it once, in CI)."""
    service = start_service(tmp_path / "home", prefect_api, inbox)
    try:
        name = service.env["INCIDENT_DEPLOYMENT"]
        deployment = prefect_call("GET", f"{prefect_api}/deployments/name/incident_response/{name}").json()

        def held(incident_id: str, holder: str, state: str = "RUNNING") -> str:
            run_id = _deployment_run(prefect_api, deployment, incident_id, state)
            labels = {waiting.HOLDER: holder, waiting.HELD_IN: _states(prefect_api, run_id)[-1]["id"]}
            prefect_call("PATCH", f"{prefect_api}/flow_runs/{run_id}/labels", json=labels).raise_for_status()
            return run_id

        lost = held("INC19990101997", f"{waiting.HOST}:{dead_pid()}")
        alive = held("INC19990101996", waiting.holder())  # this test's process: still here
        # labelled by a process now gone, then Running in a new execution that has not named its own yet
        stale = held("INC19990101992", f"{waiting.HOST}:{dead_pid()}", "PENDING")
        _set_state(prefect_api, stale, {"type": "RUNNING"})
        started = time.monotonic()
        while "SCHEDULED" not in (kinds := [s["type"] for s in _states(prefect_api, lost)]):
            assert time.monotonic() < started + 45, f"the lost run was not rescheduled: {kinds}"
            time.sleep(0.5)
        print(f"\nlost run: rescheduled {time.monotonic() - started:.1f} s after it was left Running")
        crashed = next(s for s in _states(prefect_api, lost) if s["type"] == "CRASHED")
        assert "is gone" in crashed["message"] and "no heartbeat" not in crashed["message"]
        time.sleep(max(0.0, started + 16 - time.monotonic()))  # the old 10-s grace and three sweeps more
        assert [s["type"] for s in _states(prefect_api, alive)] == ["RUNNING"]  # its process lives
        assert [s["type"] for s in _states(prefect_api, stale)] == ["PENDING", "RUNNING"]
    finally:
        stop_service(service)


def _set_state(prefect_api: str, run_id: str, state: dict[str, str]) -> None:
    """The run put into ``state`` through Prefect's API, forced (no process behind it)."""
    url, body = f"{prefect_api}/flow_runs/{run_id}/set_state", {"state": state, "force": True}
    prefect_call("POST", url, json=body, timeout=30).raise_for_status()


def test_runs_a_killed_worker_had_claimed_but_not_started_are_started_again_at_the_restart(
    prefect_api: str, inbox: Inbox, tmp_path: Path
) -> None:
    """``incident serve`` SIGKILLed, process tree and all, while its runner had claimed two runs whose
    processes named nobody yet: one still Pending, one Running without a ``HOLDER``. Prefect knows no
    claimant; the workers' roll does (incident/engine/roll.py): the restarted service's first sweeps
    start both again, instead of after ``STUCK_PENDING`` (5 min) and the zombie window (90 s). A run
    Pending since the new worker serves is left to it."""
    home = tmp_path / "home"
    first = start_service(home, prefect_api, inbox)
    name = first.env["INCIDENT_DEPLOYMENT"]
    deployment = prefect_call("GET", f"{prefect_api}/deployments/name/incident_response/{name}").json()

    enrolled = "SELECT pid, pgid FROM workers WHERE deployment_id = :d"
    pid = int(worker_of(first))
    assert query(db_url(first), enrolled, d=deployment["id"]) == [(pid, pid)]  # its process group's leader
    pending = _deployment_run(prefect_api, deployment, "INC19990101995", "PENDING")
    running = _deployment_run(prefect_api, deployment, "INC19990101994")  # Running, no HOLDER label
    claimed_at = time.monotonic()
    kill_all(first)
    # A worker started within roll.SKEW of a claim could have made it (clocks differ between hosts).
    time.sleep(max(0.0, roll.SKEW.total_seconds() + 1 - (time.monotonic() - claimed_at)))
    second = start_service(home, prefect_api, inbox)
    try:
        # the new worker, alive, could have claimed this one
        later = _deployment_run(prefect_api, deployment, "INC19990101993", "PENDING")
        started = time.monotonic()

        def again(run_id: str) -> bool:
            return "SCHEDULED" in [s["type"] for s in _states(prefect_api, run_id)]

        while not (again(pending) and again(running)):
            assert time.monotonic() < started + 60, "the runs of the killed worker were not started again"
            time.sleep(0.5)
        print(f"\nstarted again {time.monotonic() - started:.1f} s after the restart was up")
        crashed = next(s for s in _states(prefect_api, running) if s["type"] == "CRASHED")
        assert "its worker is gone" in crashed["message"], crashed
        pending_states = [s["type"] for s in _states(prefect_api, pending)]
        assert pending_states[:2] == ["PENDING", "SCHEDULED"], pending_states  # no crash counted
        time.sleep(5)  # more sweeps
        assert [s["type"] for s in _states(prefect_api, later)] == ["PENDING"]
    finally:
        kill_all(second)

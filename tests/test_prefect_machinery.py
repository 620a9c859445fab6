"""What a Prefect user sees works: the deployment is Ready, the Resume form says what it waits for,
Resume / Retry / Cancel / Run from Prefect's UI, API and CLI do what they say to the incident, and a
suspension is logged at INFO (real runs on the session's server; Prefect's own CLI in a subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from playbooks.vocabulary import label
from tests.chaos import descendants_of, gone
from tests.conftest import Service, prefect_call


def refused_resume(shown: dict[str, Any]) -> bool:
    return any(e["event"] == "resume_refused" for e in shown["timeline"])


def _report(service: Service, region: str) -> dict[str, Any]:
    return service.cli_json(
        "report", "--category", "service_failure", "--summary", "师傅没来",
        "--service", "install", "--region", region, "--customer", "韩梅梅",
    )  # fmt: skip


def _prefect(prefect_api: str, method: str, path: str, **kwargs: Any) -> Any:
    response = prefect_call(method, prefect_api + path, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def _run_input(prefect_api: str, flow_run_id: str, key: str) -> Any:
    """A paused run's input (its description): Prefect sets the Paused state with the input's keys first
    and saves the input after (``prefect.flow_runs.pause_flow_run``), so on a busy machine a reader
    between the two gets a 404 for a moment."""
    deadline = time.monotonic() + 15
    while (
        response := prefect_call("GET", f"{prefect_api}/flow_runs/{flow_run_id}/input/{key}")
    ).status_code == 404:
        assert time.monotonic() < deadline, f"no input {key} for {flow_run_id}"
        time.sleep(0.2)
    response.raise_for_status()
    return response.json()


def _deployment(service: Service, prefect_api: str) -> dict[str, Any]:
    name = service.env["INCIDENT_DEPLOYMENT"]
    return _prefect(prefect_api, "GET", f"/deployments/name/incident_response/{name}")


def _state(prefect_api: str, flow_run_id: str) -> str:
    return _prefect(prefect_api, "GET", f"/flow_runs/{flow_run_id}")["state"]["type"]


def test_deployment_ready_and_the_resume_form_says_what_it_waits_for(
    service: Service, prefect_api: str
) -> None:
    incident_id = _report(service, "UI-1")["incident_id"]
    shown = service.wait_for_point(incident_id, "contact")
    assert _deployment(service, prefect_api)["status"] == "READY"
    for _ in range(2):  # waiting in its process (paused-…) or suspended (suspended-…): the same form
        state = _prefect(prefect_api, "GET", f"/flow_runs/{shown['flow_run_id']}")["state"]
        key = state["state_details"]["run_input_keyset"]["description"]
        description = _run_input(prefect_api, shown["flow_run_id"], key)
        assert incident_id in description and "联系客户" in description
        deadline = time.monotonic() + 60
        while state["name"] != "Suspended" and time.monotonic() < deadline:
            time.sleep(0.5)
            state = _prefect(prefect_api, "GET", f"/flow_runs/{shown['flow_run_id']}")["state"]
    assert state["name"] == "Suspended"  # after INCIDENT_HOT_WAIT_SECONDS (5 s in the tests)
    assert "First contact with the customer" in description and "由 / by: 客服组" in description
    # The suspension, in the log of the process that ran it (the worker's runner streams it into the
    # service's log): at INFO, not the ERROR Prefect's engine gives every run not ending Completed.
    run_name = _prefect(prefect_api, "GET", f"/flow_runs/{shown['flow_run_id']}")["name"]
    deadline = time.monotonic() + 30
    while not (lines := _log_lines(service, run_name, "Finished in state Suspended")):
        assert time.monotonic() < deadline, "the suspension is not in the service's log"
        time.sleep(0.5)
    assert all(re.search(r"\| INFO +\|", line) for line in lines), lines


def _log_lines(service: Service, run_name: str, text: str) -> list[str]:
    log = (service.home / "serve.log").read_text(errors="replace")
    return [line for line in log.splitlines() if f"Flow run {run_name!r}" in line and text in line]


def _walk(service: Service, incident_id: str, *steps: tuple[str, dict[str, Any]]) -> None:
    for action, body in steps:
        answer = service.api("POST", f"/api/incidents/{incident_id}/{action}", json=body)
        assert answer.status_code == 200, (action, answer.text)


TO_APPROVAL = (
    ("contact", {"by": "王芳"}),
    ("measure", {"kind": "spare_product"}),
    ("cause", {"root": "cell defect", "direct": "heat", "stage": "production"}),
    ("propose", {"solution": "replace"}),
)


def _product_incident(service: Service, batch: str) -> str:
    body = {"category": "product_quality", "summary": "hot battery", "media": True, "product_model": "K1",
            "batch": batch, "contact": "13511112222"}  # fmt: skip
    accepted = service.api("POST", "/api/feedback", json=body)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["incident_id"])


def test_the_resume_form_at_approval_says_which_round_and_which_solution(
    service: Service, prefect_api: str
) -> None:
    incident_id = _product_incident(service, f"R-{uuid.uuid4().hex[:6]}")
    service.wait_for_point(incident_id, "contact")
    _walk(service, incident_id, *TO_APPROVAL)
    run_id = service.wait_for_point(incident_id, "approval-1")["flow_run_id"]
    deadline = time.monotonic() + 60
    while True:  # the run pauses at approval-1 a moment after the incident says it waits there
        state = _prefect(prefect_api, "GET", f"/flow_runs/{run_id}")["state"]
        if state["type"] == "PAUSED" and "approval-1" in state["state_details"]["pause_key"]:
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.3)
    key = state["state_details"]["run_input_keyset"]["description"]
    description = _run_input(prefect_api, run_id, key)
    assert incident_id in description and label("duty", "approval", "zh") in description
    assert "第 1 轮 / round 1" in description and "方案 / solution: `replace`" in description
    assert "incident approve" in description  # and how to record it


def _timeline_and_notices(service: Service, incident_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    shown = service.show(incident_id)
    logged = service.api("GET", f"/api/incidents/{incident_id}/notifications").json()["deliveries"]
    events = [(e["event"], e.get("detail") or "") for e in shown["timeline"]]
    return events, sorted(f"{d['notice']}:{d['role']}:{d['status']}" for d in logged)


def _suspended(prefect_api: str, run_id: str, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        state = _prefect(prefect_api, "GET", f"/flow_runs/{run_id}")["state"]
        if state["name"] == "Suspended" and key in (state["state_details"].get("pause_key") or ""):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.5)


def _run_processes(service: Service) -> list[str]:
    """The processes Prefect's runner (in the service's worker) executes runs in: multiprocessing spawns."""
    found = []
    for pid in descendants_of(service.proc.pid):
        with contextlib.suppress(OSError):  # one that ended meanwhile
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def test_retry_from_prefect_replays_to_the_same_point_without_duplicates(
    service: Service, prefect_api: str
) -> None:
    """A Failed incident run retried as Prefect's UI does (state AwaitingRetry, forced) is executed
    again by a worker's runner from the top: it finds the answers given so far in the database and
    waits again where it waited, with no record, timeline event or notice twice."""
    incident_id = _report(service, "UI-RETRY")["incident_id"]
    run_id = service.wait_for_point(incident_id, "contact")["flow_run_id"]
    _walk(service, incident_id, ("contact", {"by": "王芳"}))
    service.wait_for_point(incident_id, "measure")
    _suspended(prefect_api, run_id, "measure")
    before = _timeline_and_notices(service, incident_id)
    _prefect(prefect_api, "POST", f"/flow_runs/{run_id}/set_state",
             json={"state": {"type": "FAILED", "message": "failed for the test"}, "force": True})  # fmt: skip
    retry = {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the UI"}
    _prefect(prefect_api, "POST", f"/flow_runs/{run_id}/set_state", json={"state": retry, "force": True})
    _suspended(prefect_api, run_id, "measure")  # executed again (a new process), suspended again
    history = _prefect(prefect_api, "GET", f"/flow_run_states/?flow_run_id={run_id}")
    names = [s["name"] for s in sorted(history, key=lambda s: s["timestamp"])]
    retried = names.index("AwaitingRetry")
    assert "Running" in names[retried:], names  # executed again after the retry
    assert _timeline_and_notices(service, incident_id) == before  # nothing twice
    shown = service.show(incident_id)
    assert shown["flow_run_id"] == run_id and shown["waiting_for"] == "measure"
    _walk(service, incident_id, ("measure", {"kind": "expedite"}))
    service.wait_for_point(incident_id, "cause")  # and it goes on from there


def _prefect_cli(prefect_api: str, *args: str) -> subprocess.CompletedProcess[str]:
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    return subprocess.run([prefect, *args], env=env, capture_output=True, text=True, timeout=120)


def _closed_by_cancel(service: Service, incident_id: str, run_id: str) -> dict[str, Any]:
    shown = service.wait_until(incident_id, lambda s: s["status"] == "closed", "closed after the cancel", 60)
    cancelled = [e for e in shown["timeline"] if e["event"] == "run_cancelled"]
    assert len(cancelled) == 1 and run_id in cancelled[0]["detail"], shown["timeline"]
    assert [e["event"] for e in shown["timeline"]][-1] == "closed"
    refused = service.api("POST", f"/api/incidents/{incident_id}/contact", json={"by": "王芳"})
    assert refused.status_code == 409  # a closed incident takes no more actions
    return shown


def test_cancel_from_prefects_cli_closes_a_suspended_incident(service: Service, prefect_api: str) -> None:
    """``prefect flow-run cancel`` sets Cancelling; a suspended run has no process for a Runner to stop,
    so the sweep finishes the cancel, records it and closes the incident. A Run click afterwards finds
    the incident closed and ends at once."""
    incident_id = _report(service, "UI-CANCEL")["incident_id"]
    run_id = service.wait_for_point(incident_id, "contact")["flow_run_id"]
    _suspended(prefect_api, run_id, "contact")
    done = _prefect_cli(prefect_api, "flow-run", "cancel", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _state(prefect_api, run_id) in ("CANCELLING", "CANCELLED")
    shown = _closed_by_cancel(service, incident_id, run_id)
    assert _state(prefect_api, run_id) == "CANCELLED"
    deployment = _deployment(service, prefect_api)
    again = _prefect(
        prefect_api, "POST", f"/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": {"incident_id": incident_id}},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while _state(prefect_api, again["id"]) != "COMPLETED":
        assert time.monotonic() < deadline, "the Run click's run never ended"
        time.sleep(0.5)
    assert service.show(incident_id)["timeline"] == shown["timeline"]  # still closed, nothing added


def test_a_cancel_no_runner_finishes_is_finished_by_the_sweep(service: Service, prefect_api: str) -> None:
    """A run left Cancelling with no process to stop (in life, a run whose worker died as it was
    cancelled; here, a Failed one forced to Cancelling: Prefect's server cancels a suspended or
    scheduled one at once itself) is set Cancelled by the sweep after three sweep periods, and its
    incident closes with that reason."""
    incident_id = _report(service, "UI-LOSTCANCEL")["incident_id"]
    run_id = service.wait_for_point(incident_id, "contact")["flow_run_id"]
    executing = _run_processes(service)  # this run's among them: it waits in its process for a while
    _suspended(prefect_api, run_id, "contact")
    # Suspended comes a moment before its process ends, and until then the runner would stop it itself
    assert gone(executing, 60, reaped=True), "the processes that executed runs have ended"
    for state in ({"type": "FAILED"}, {"type": "CANCELLING"}):
        _prefect(prefect_api, "POST", f"/flow_runs/{run_id}/set_state", json={"state": state, "force": True})
    assert _state(prefect_api, run_id) == "CANCELLING"
    shown = _closed_by_cancel(service, incident_id, run_id)
    [cancelled] = [e for e in shown["timeline"] if e["event"] == "run_cancelled"]
    assert "no process was left to stop" in cancelled["detail"]
    assert _state(prefect_api, run_id) == "CANCELLED"


def test_cancel_of_a_run_waiting_in_its_process_closes_the_incident(
    service: Service, prefect_api: str
) -> None:
    """Prefect's cancel (Cancelling, as its CLI and UI set it) of a run that waits in its process (the
    first INCIDENT_HOT_WAIT_SECONDS): the worker's Runner stops the process and sets Cancelled, the
    sweep records it and closes the incident."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import State, StateType

    incident_id = _report(service, "UI-HOTCANCEL")["incident_id"]
    run_id = service.wait_for_point(incident_id, "contact")["flow_run_id"]
    deadline = time.monotonic() + 30
    while (state := _prefect(prefect_api, "GET", f"/flow_runs/{run_id}")["state"])["name"] != "Paused":
        assert state["name"] != "Suspended" and time.monotonic() < deadline, state  # still in its process
        time.sleep(0.1)

    async def cancel() -> str:  # what `prefect flow-run cancel` sends (its CLI spends seconds importing)
        async with get_client() as client:
            result = await client.set_flow_run_state(uuid.UUID(run_id), State(type=StateType.CANCELLING))
            return str(result.status.value)

    assert asyncio.run(cancel()) == "ACCEPT"
    _closed_by_cancel(service, incident_id, run_id)
    history = _prefect(prefect_api, "GET", f"/flow_run_states/?flow_run_id={run_id}")
    names = [s["name"] for s in sorted(history, key=lambda s: s["timestamp"])]
    assert names[-3:] == ["Paused", "Cancelling", "Cancelled"], names  # stopped by its Runner, not suspended


def test_a_stopping_runner_cancels_with_the_message_the_sweep_knows(prefect_api: str) -> None:
    """The sweep tells a run its worker's Runner cancelled on stopping (started again) from an operator's
    cancel (the incident closes) by that Cancelled state's message (no public field says it: see
    incident/engine/sweep.py). Prefect's own Runner, stopped while it executes a run: if Prefect words
    the message otherwise, this fails, and RUNNER_STOPPED must follow."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun, StateType
    from prefect.runner import Runner
    from prefect.types.entrypoint import EntrypointType

    from incident.engine.sweep import RUNNER_STOPPED
    from tests.prefect_probe import linger

    async def stopped_while_running() -> FlowRun:
        runner = Runner(name=f"probe-{uuid.uuid4().hex[:8]}", query_seconds=1, pause_on_shutdown=False)
        deployment_id = await runner.aadd_flow(
            linger, name=runner.name, entrypoint_type=EntrypointType.MODULE_PATH
        )
        serving = asyncio.create_task(runner.start())
        async with get_client() as client:
            run = await client.create_flow_run_from_deployment(deployment_id)
            deadline = time.monotonic() + 90
            while (await client.read_flow_run(run.id)).state_type != StateType.RUNNING:
                assert time.monotonic() < deadline and not serving.done(), "the probe run never ran"
                await asyncio.sleep(0.5)
            await runner.astop()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            return await client.read_flow_run(run.id)

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        run = asyncio.run(stopped_while_running())
    finally:
        for sig, handler in handlers.items():  # the Runner installs its own
            signal.signal(sig, handler)
    assert run.state is not None and run.state.type.value == "CANCELLED", run.state
    assert run.state.message == RUNNER_STOPPED


def test_a_forged_resume_posted_to_prefect_changes_nothing(service: Service, prefect_api: str) -> None:
    """Prefect's API knows neither who resumed nor their roles: input our database lacks is refused,
    recorded (``resume_refused``) and the run suspends again; the real answer still moves it on."""
    incident_id = _report(service, "UI-2")["incident_id"]
    before = service.wait_for_point(incident_id, "contact")
    run_id = before["flow_run_id"]
    _prefect(prefect_api, "POST", f"/flow_runs/{run_id}/resume", json={"run_input": {"by": "王芳"}})
    shown = service.wait_until(
        incident_id,
        lambda s: s.get("waiting_for") == "contact" and refused_resume(s),
        "the run waiting again at contact after the refused resume",
    )
    events = [e["event"] for e in shown["timeline"]]
    assert "contacted" not in events and events.count("resume_refused") == 1
    assert shown["first_contact_at"] is None and shown["status"] == before["status"]
    service.cli_json("contact", incident_id, "--by", "王芳")
    moved = service.wait_for_point(incident_id, "measure")
    assert [e["by"] for e in moved["timeline"] if e["event"] == "contacted"] == ["王芳"]


def test_cancelled_forced_in_prefect_is_on_the_timeline_and_closes_the_incident(
    service: Service, prefect_api: str
) -> None:
    incident_id = _report(service, "UI-3")["incident_id"]
    run_id = service.wait_for_point(incident_id, "contact")["flow_run_id"]
    _prefect(
        prefect_api, "POST", f"/flow_runs/{run_id}/set_state",
        json={"state": {"type": "CANCELLED", "message": "duplicate report"}, "force": True},
    )  # fmt: skip
    shown = service.wait_until(incident_id, lambda s: s["status"] == "closed", "closed after cancel", 30)
    events = [e["event"] for e in shown["timeline"]]
    assert "run_cancelled" in events and events[-1] == "closed"
    refused = service.api("POST", f"/api/incidents/{incident_id}/contact", json={"by": "王芳"})
    assert refused.status_code == 409  # a closed incident takes no more actions


def test_a_second_run_from_the_run_button_ends_at_once(service: Service, prefect_api: str) -> None:
    incident_id = _report(service, "UI-4")["incident_id"]
    driving = service.wait_for_point(incident_id, "contact")["flow_run_id"]
    deployment = _deployment(service, prefect_api)
    extra = _prefect(
        prefect_api, "POST", f"/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": {"incident_id": incident_id}},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while _state(prefect_api, extra["id"]) != "COMPLETED":
        assert time.monotonic() < deadline, "the extra run never ended"
        time.sleep(0.5)
    assert service.show(incident_id)["flow_run_id"] == driving
    # still the one waiting: our database says "waiting at contact" a moment before the driving run's pause
    # reaches Prefect, and on a busy machine the extra run can end within that moment
    deadline = time.monotonic() + 30
    while (state := _state(prefect_api, driving)) != "PAUSED":
        assert state == "RUNNING" and time.monotonic() < deadline, f"the driving run is {state}, not waiting"
        time.sleep(0.5)

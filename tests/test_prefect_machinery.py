"""What a Prefect user sees works: the deployment is Ready, the Resume form says what it waits for,
Resume / Cancel / Run from Prefect do what they say to the incident (real runs on the session's server)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import Service


def refused_resume(shown: dict[str, Any]) -> bool:
    return any(e["event"] == "resume_refused" for e in shown["timeline"])


def _report(service: Service, region: str) -> dict[str, Any]:
    return service.cli_json(
        "report", "--category", "service_failure", "--summary", "师傅没来",
        "--service", "install", "--region", region, "--customer", "韩梅梅",
    )  # fmt: skip


def _prefect(prefect_api: str, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, prefect_api + path, timeout=30, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


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
        description = _prefect(prefect_api, "GET", f"/flow_runs/{shown['flow_run_id']}/input/{key}")
        assert incident_id in description and "联系客户" in description
        deadline = time.monotonic() + 60
        while state["name"] != "Suspended" and time.monotonic() < deadline:
            time.sleep(0.5)
            state = _prefect(prefect_api, "GET", f"/flow_runs/{shown['flow_run_id']}")["state"]
    assert state["name"] == "Suspended"  # after INCIDENT_HOT_WAIT_SECONDS (5 s in the tests)
    assert "First contact with the customer" in description and "由 / by: 客服组" in description


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


def test_cancel_in_prefect_is_on_the_timeline_and_closes_the_incident(
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
    assert _state(prefect_api, driving) == "PAUSED"

"""``incident demo`` on the session's running service: the three worked examples end to end, every step
as a demo person through the API a user's command takes, and nobody real touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incident.demo import MARK, DemoError, wait_closed
from tests.conftest import Service


def test_the_demo_closes_three_incidents_as_its_own_people_and_leaves_real_ones_alone(
    service: Service,
) -> None:
    real = service.person("王芳", "customer_service")  # a real person who shares a demo name
    shown = service.cli_json("demo")["incidents"]
    assert [(i["level"], i["status"], i["postmortem_state"]) for i in shown] == [
        (1, "closed", "signed"), (2, "closed", "signed"), (3, "closed", "signed"),
    ]  # fmt: skip
    first = shown[0]["incident_id"]
    postmortem = Path(shown[0]["postmortem"]).read_text(encoding="utf-8")
    assert f"总经理 陈总{MARK}" in postmortem and Path(shown[0]["postmortem_en"]).exists()
    acts = [
        (e["who"], e["action"], e["outcome"], e["channel"])
        for e in service.cli_json("audit", first)["events"]
    ]
    assert (f"总经理 陈总{MARK}", "approve", "ok", "cli") in acts  # as that person, by the command line
    assert (f"王芳{MARK}", "confirm", "ok", "cli") in acts
    names = {p["name"] for p in service.cli_json("people", "list")["people"]}
    assert {"王芳", f"王芳{MARK}"} <= names
    assert service.api("GET", "/api/incidents", token=real).status_code == 200  # the real 王芳's token works


def test_an_example_that_does_not_close_is_an_error_naming_it(service: Service) -> None:
    reported = service.api("POST", "/api/feedback", json={
        "category": "service_failure", "summary": "demo wait", "service": "install", "region": "DEMO-WAIT",
    })  # fmt: skip
    incident_id = reported.json()["incident_id"]

    def call(_: bool, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return dict(service.api(method, path, **kwargs).json())

    with pytest.raises(DemoError, match=f"{incident_id} did not close within 0.5 s"):
        wait_closed(call, incident_id, timeout=0.5)

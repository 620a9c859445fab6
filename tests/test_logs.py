"""``INCIDENT_LOG_FORMAT=json``: one JSON object per line, the ids a record has, an access line per
request, and the request id echoed as ``X-Request-ID``."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from incident import logs
from incident.api.app import create_app
from incident.api.requestlog import ids_of
from tests.conftest import Inbox, start_service, stop_service


def test_json_lines_carry_the_ids_of_the_record() -> None:
    record = logging.LogRecord("incident.queue", logging.WARNING, __file__, 1, "claimed %s", ("FB1",), None)
    record.feedback_id, record.incident_id = "FB1", "INC1"
    logs.Context("worker").filter(record)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "incident.queue"
    assert line["message"] == "claimed FB1" and line["process"] == "worker"
    assert (line["feedback_id"], line["incident_id"]) == ("FB1", "INC1")
    assert "request_id" not in line and line["time"].endswith("+00:00")


def test_access_line_and_request_id_in_text_format(caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(create_app("t"))
    with caplog.at_level(logging.INFO, logger="incident.access"):
        given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        made = client.get("/healthz")
        refused = client.get("/api/incidents")  # no token: 401, logged all the same
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32 and refused.status_code == 401
    lines = [r for r in caplog.records if r.name == "incident.access"]
    assert [r.getMessage().split()[:3] for r in lines] == [
        ["GET", "/healthz", "200"],
        ["GET", "/healthz", "200"],
        ["GET", "/api/incidents", "401"],
    ]
    assert lines[0].levelno == logging.INFO and "request_id=abc-123" in lines[0].getMessage()
    assert not hasattr(lines[2], "incident_id")
    assert ids_of("/api/incidents/INC20261201001/contact") == {"incident_id": "INC20261201001"}
    assert ids_of("/api/feedback/FB20261201001") == {"feedback_id": "FB20261201001"}
    assert ids_of("/incidents/INC1") == {"incident_id": "INC1"} and ids_of("/api/incidents") == {}
    assert lines[2].status == 401 and lines[2].duration_ms >= 0  # type: ignore[attr-defined]


def _json_lines(log: Path) -> list[dict[str, Any]]:
    found = []
    for raw in log.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            found.append(json.loads(raw))  # a line that looks like JSON must be JSON
    return found


def test_service_logs_json_with_the_access_line(prefect_api: str, inbox: Inbox, tmp_path: Path) -> None:
    svc = start_service(tmp_path / "home", prefect_api, inbox, {"INCIDENT_LOG_FORMAT": "json"})
    try:
        response = httpx.get(
            svc.url + "/api/incidents",
            headers={"Authorization": f"Bearer {svc.token}", "X-Request-ID": "logs-test-1"},
            timeout=30,
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "logs-test-1"
        report = svc.api("POST", "/api/feedback", json={"category": "service_failure", "summary": "no show"})
        assert report.status_code == 202, report.text
        incident_id = report.json()["incident_id"]
        svc.wait_for_point(incident_id, "contact")  # the incident's run ran, in a process of its own
        deadline = time.monotonic() + 60  # it suspends after INCIDENT_HOT_WAIT_SECONDS (5 s here)
        while True:
            lines = _json_lines(svc.home / "serve.log")
            access = [
                x
                for x in lines
                if x.get("logger") == "incident.access" and x.get("request_id") == "logs-test-1"
            ]
            suspended = [x for x in lines if str(x.get("message")).startswith("Finished in state Suspended")]
            if (access and suspended) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        stop_service(svc)
    assert access, (svc.home / "serve.log").read_text()[-3000:]
    line = access[0]
    assert line["level"] == "INFO" and line["method"] == "GET" and line["path"] == "/api/incidents"
    assert line["status"] == 200 and isinstance(line["duration_ms"], float)
    assert {"time", "message"} <= set(line)
    ours = [x for x in lines if str(x.get("logger", "")).startswith("incident.")]
    assert {x.get("process") for x in ours} >= {"serve", "worker"}
    text = [
        raw
        for raw in (svc.home / "serve.log").read_text(errors="replace").splitlines()
        if " INFO incident." in raw or " WARNING incident." in raw
    ]
    assert text == []  # none of our lines in the text format
    shown = [x for x in lines if x.get("logger") == "incident.access" and x.get("incident_id") == incident_id]
    assert shown and shown[0]["path"] == f"/api/incidents/{incident_id}"
    runs = [x for x in lines if x.get("flow_run_id") and x.get("logger") == "prefect.flow_runs"]
    assert runs, "no JSON line of the feedback's flow run (run in the worker's process)"
    feedback_id = report.json()["feedback_id"]
    assert any(x.get("feedback_id") == feedback_id and x["process"] == "worker" for x in runs)
    # The incident's run, in the process Prefect's Runner started for it: JSON too, naming the incident.
    own = [x for x in lines if x.get("process") == "run"]
    assert own and all(x.get("incident_id") == incident_id for x in own), own  # every line names it
    assert len({x["flow_run_id"] for x in own}) == 1
    assert suspended and all(x["level"] == "INFO" and x["incident_id"] == incident_id for x in suspended)
    log_text = (svc.home / "serve.log").read_text(errors="replace")
    assert [raw for raw in log_text.splitlines() if " | Flow run '" in raw] == []  # none in Prefect's format

"""Full incidents through the real service and real Prefect flow runs, driven by the ``incident`` CLI.

Each test checks that the run is suspended in Prefect at the expected waiting point, answers it from
another process (the CLI), and follows the run to the end: a rejected approval (L1), a survey below
target (L2), an unsatisfied customer and answers typed before the flow got there (L3).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client

from flows.waiting import point_of
from tests.conftest import Service


def prefect_run(flow_run_id: str) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id))


def completes(flow_run_id: str, timeout: float = 30) -> bool:
    """Whether the run ends Completed (closing the incident is its last step but one: the notice)."""
    deadline = time.monotonic() + timeout
    while not (state := prefect_run(flow_run_id).state).is_final() and time.monotonic() < deadline:
        time.sleep(0.2)
    return bool(state.is_completed())


def feedback_run(service: Service, reported: dict[str, Any]) -> str:
    """The feedback's flow run id: in the 202, or (the run made moments later, a busy machine) its status."""
    deadline = time.monotonic() + 30
    while not reported.get("flow_run_id"):
        assert time.monotonic() < deadline, f"no flow run for {reported['feedback_id']}"
        time.sleep(0.3)
        reported = service.api("GET", f"/api/feedback/{reported['feedback_id']}").json()
    return str(reported["flow_run_id"])


def step(service: Service, incident_id: str, point: str, *command: str) -> dict[str, Any]:
    """Wait until the run is paused at ``point`` in Prefect (in its process, or suspended), then answer
    it with the CLI."""
    shown = service.wait_for_point(incident_id, point)
    run = prefect_run(shown["flow_run_id"])
    assert run.state.is_paused() and point_of(run.state.state_details.pause_key) == point
    return service.cli_json(command[0], incident_id, *command[1:])


def events(service: Service, incident_id: str) -> list[str]:
    return [e["event"] for e in service.show(incident_id)["timeline"]]


def test_level_1_incident_with_rejected_approval(service: Service) -> None:
    reported = service.cli_json(
        "report",
        "--category",
        "product_quality",
        "--summary",
        "手机电池鼓包 battery swelling",
        "--customer",
        "张伟",
        "--contact",
        "13812345678",
        "--product-model",
        "P30",
        "--batch",
        "L1-B1",
        "--customers",
        "120",
        "--media",
        "--channel",
        "social",
    )
    inc = reported["incident_id"]
    assert reported["level"] == 1 and reported["category"] == "product_quality"
    due = datetime.fromisoformat(reported["contact_deadline"]) - datetime.fromisoformat(
        service.show(inc)["identified_at"]
    )
    assert due == timedelta(minutes=30)
    assert reported["feedback_id"].startswith("FB") and UUID(feedback_run(service, reported))

    shown = service.wait_for_point(inc, "contact")
    run = prefect_run(shown["flow_run_id"])
    assert run.name == f"{inc}-L1-product_quality"
    assert run.parameters == {"incident_id": inc}  # ids only: no personal data in Prefect

    contacted = step(service, inc, "contact", "contact", "--by", "王芳", "--note", "apologised")
    assert contacted["on_time"] is True
    assert step(service, inc, "measure", "measure", "--kind", "spare_product")["measure"] == "spare_product"
    step(
        service,
        inc,
        "cause",
        "cause",
        "--root",
        "separator defect at supplier S",
        "--direct",
        "cells overheat",
        "--stage",
        "production",
    )
    proposed = step(service, inc, "proposal-1", "propose", "--solution", "repair")
    assert proposed["awaiting_approval_by"] == "leadership"

    service.wait_for_point(inc, "approval-1")
    wrong = service.cli("approve", inc, "--by", "周", "--role", "dept_head", "--json", check=False)
    assert wrong.returncode == 2 and "应急领导小组" in wrong.stderr  # the refusal, in zh by default
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "approval_refused" in events(service, inc)
    rejected = step(
        service,
        inc,
        "approval-1",
        "approve",
        "--by",
        "陈总",
        "--role",
        "leadership",
        "--reject",
        "--reason",
        "repair leaves the risk; recall",
    )
    assert rejected["approved"] is False

    unreviewed = service.cli("propose", inc, "--solution", "recall", check=False)  # refused when proposed
    assert unreviewed.returncode == 2 and "legal_reviewed" in unreviewed.stderr
    step(service, inc, "proposal-2", "propose", "--solution", "recall", "--legal-reviewed")
    assert (
        step(service, inc, "approval-2", "approve", "--by", "陈总", "--role", "leadership")["approved"]
        is True
    )
    assert step(service, inc, "confirmation-2", "confirm", "--result", "satisfied")["status"] == "follow_up"
    survey = step(service, inc, "survey-1", "survey", "--speed", "5", "--result", "5", "--attitude", "4")
    assert survey["target_met"] is True

    final = service.wait_until(inc, lambda s: s["status"] == "closed", "closed")
    assert completes(final["flow_run_id"])
    timeline = events(service, inc)
    for earlier, later in [
        ("identified", "contacted"),
        ("contacted", "measure_taken"),
        ("cause_recorded", "solution_rejected"),
        ("solution_rejected", "solution_approved"),
        ("solution_approved", "confirmed"),
        ("survey_recorded", "closed"),
    ]:
        assert timeline.index(earlier) < timeline.index(later)
    assert [s["status"] for s in final["solutions"]] == ["rejected", "approved"]

    notices = service.inbox.for_incident(inc)
    opened_roles = {m["role"] for m in notices if "30" in m["message"] and m["role"] != "dept_head"}
    assert {
        "leadership",
        "customer_service",
        "technical_support",
        "quality_control",
        "pr",
        "legal",
    } <= opened_roles
    assert any(
        m["role"] == "leadership"
        for m in notices
        if "recall" in m["message"].lower() or "召回" in m["message"]
    )
    assert not any("13812345678" in m["message"] for m in service.inbox.collect())


def test_level_2_incident_with_survey_below_target(service: Service) -> None:
    reported = service.cli_json(
        "report",
        "--category",
        "service_failure",
        "--summary",
        "orders late, never announced",
        "--service",
        "delivery",
        "--region",
        "east-L2",
        "--customers",
        "20",
        "--compensation-demand",
        "--contact",
        "li.na@example.com",
    )
    inc = reported["incident_id"]
    assert reported["level"] == 2
    step(service, inc, "contact", "contact", "--by", "赵敏")
    step(service, inc, "measure", "measure", "--kind", "coupon", "--note", "50-yuan coupon")
    step(
        service,
        inc,
        "cause",
        "cause",
        "--root",
        "dispatch never sends delay notices",
        "--direct",
        "warehouse backlog",
        "--stage",
        "service",
    )
    assert (
        step(service, inc, "proposal-1", "propose", "--solution", "compensate")["awaiting_approval_by"]
        == "dept_head"
    )
    step(service, inc, "approval-1", "approve", "--by", "周", "--role", "dept_head")
    step(service, inc, "confirmation-1", "confirm", "--result", "satisfied")
    low = step(
        service,
        inc,
        "survey-1",
        "survey",
        "--speed",
        "2",
        "--result",
        "3",
        "--attitude",
        "3",
        "--suggestion",
        "tell us before it is late",
    )
    assert low["target_met"] is False and low["target"] == 0.85
    good = step(service, inc, "survey-2", "survey", "--speed", "4", "--result", "5", "--attitude", "5")
    assert good["target_met"] is True and good["round"] == 2
    final = service.wait_until(inc, lambda s: s["status"] == "closed", "closed")
    assert final["follow_up_round"] == 2 and "follow_up_round" in events(service, inc)
    assert any(
        "survey" in m["title"].lower() or "满意度" in m["title"] for m in service.inbox.for_incident(inc)
    )


def test_level_3_answers_typed_straight_after_report(service: Service) -> None:
    """No waiting between commands: answers given before the flow reaches a point are kept."""
    reported = service.cli_json(
        "report",
        "--category",
        "special_scenario",
        "--summary",
        "rainstorm stopped my delivery",
        "--cause",
        "rainstorm",
        "--region",
        "south-L3",
        "--contact",
        "13900001111",
    )
    inc = reported["incident_id"]
    assert reported["level"] == 3
    for command in (
        ["contact", "--by", "孙丽"],
        ["measure", "--kind", "alternative"],
        ["cause", "--root", "roads closed", "--direct", "courier stopped", "--stage", "external"],
        ["propose", "--solution", "reroute_logistics"],
        ["approve", "--by", "周", "--role", "dept_head"],
        ["confirm", "--result", "unsatisfied"],
        ["propose", "--solution", "add_staff"],
        ["approve", "--by", "周", "--role", "dept_head"],
        ["confirm", "--result", "neutral"],
        ["survey", "--speed", "4", "--result", "4", "--attitude", "5"],
    ):
        service.cli_json(command[0], inc, *command[1:])
    final = service.wait_until(inc, lambda s: s["status"] == "closed", "closed", timeout=90)
    assert [(s["round"], s["solution"]) for s in final["solutions"]] == [
        (1, "reroute_logistics"),
        (2, "add_staff"),
    ]
    assert [c["result"] for c in final["confirmations"]] == ["unsatisfied", "neutral"]
    assert completes(final["flow_run_id"])


def test_postmortem_has_six_sections_with_the_incidents_facts(service: Service, tmp_path: Path) -> None:
    reported = service.cli_json(
        "report",
        "--category",
        "product_quality",
        "--summary",
        "fridge not cooling",
        "--product-model",
        "F200",
        "--batch",
        "PM-1",
        "--contact",
        "13712345678",
        "--customer",
        "Li Lei",
    )
    inc = reported["incident_id"]
    for command in (
        ["contact", "--by", "Wang Fang"],
        ["measure", "--kind", "onsite_repair"],
        [
            "cause",
            "--root",
            "compressor relay from lot R9",
            "--direct",
            "relay sticks open",
            "--stage",
            "production",
        ],
        ["propose", "--solution", "replace"],
        ["approve", "--by", "Zhou", "--role", "dept_head"],
        ["confirm", "--result", "satisfied"],
        ["survey", "--speed", "5", "--result", "4", "--attitude", "5", "--suggestion", "spare parts"],
    ):
        service.cli_json(command[0], inc, *command[1:])
    service.wait_until(inc, lambda s: s["status"] == "closed", "closed", timeout=90)
    out = tmp_path / "pm.md"
    written = service.cli_json("postmortem", inc, "--lang", "en", "--out", str(out))
    assert written["path"] == str(out) and written["due_at"]
    text = out.read_text()
    headings = [
        "## 1. What",
        "## 2. Why",
        "## 3. Who",
        "## 4. When",
        "## 5. Where",
        "## 6. How",
        "## 7. Improvement points",
    ]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    ends = [*positions[1:], len(text)]
    sections = {h: text[a:b] for h, a, b in zip(headings, positions, ends, strict=True)}
    assert "fridge not cooling" in sections["## 1. What"]
    why = sections["## 2. Why"]
    assert "compressor relay from lot R9" in why and "relay sticks open" in why
    who = sections["## 3. Who"]
    assert "Wang Fang" in who and "Zhou" in who and "on time" in who.lower()
    assert inc in text and "Production" in sections["## 5. Where"]
    assert "13712345678" not in text
    zh = service.cli_json("postmortem", inc, "--format", "html")
    html = Path(zh["path"]).read_text()
    assert "复盘" in html and "compressor relay from lot R9" in html and "13712345678" not in html


def test_cli_bad_input_exits_2_and_stores_nothing(service: Service) -> None:
    db = sqlite3.connect(service.home / "incident.db")
    before = db.execute("select count(*) from feedback").fetchone()[0]
    cases = [
        ["report", "--category", "weather", "--summary", "x"],
        ["report", "--category", "product_quality"],
        ["report", "--category", "product_quality", "--summary", "x", "--customers", "-1"],
        ["report", "--category", "product_quality", "--summary", "x", "--bogus-flag"],
        ["contact", "INC19990101001", "--by", "x"],
    ]
    for args in cases:
        plain = service.cli(*args, check=False)
        assert plain.returncode == 2, (args, plain.stderr)
        assert len(plain.stderr.strip().splitlines()) == 1 and plain.stderr.startswith("错误：")
        as_json = service.cli(*args, "--json", check=False)
        assert as_json.returncode == 2 and "error" in __import__("json").loads(as_json.stdout)
    assert "category" in service.cli(*cases[0], check=False).stderr
    assert "summary" in service.cli(*cases[1], check=False).stderr
    assert db.execute("select count(*) from feedback").fetchone()[0] == before


def test_api_refuses_without_token_and_bad_bodies(service: Service) -> None:
    import httpx

    assert httpx.get(service.url + "/api/incidents").status_code == 401
    bad = service.api("POST", "/api/feedback", json={"category": "weather", "summary": "x"})
    assert bad.status_code == 422 and "category" in bad.json()["error"]
    assert service.api("GET", "/api/incidents/INC19990101001").status_code == 404
    assert service.api("GET", "/openapi.json").json()["paths"]["/api/feedback"]

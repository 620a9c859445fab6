"""The review loop through the real service, as people type it: ``incident meeting``, ``incident actions``,
``incident signoff``, and ``recurrence_of`` in ``incident report --json``, ``POST /api/feedback``, the
opening notice and ``incident show``; the counts in ``incident metrics`` and ``/metrics``."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import Service
from tests.test_console import browser
from tests.test_records import record


def _report(service: Service, batch: str, customer: str) -> dict[str, object]:
    return service.cli_json(
        "report", "--category", "product_quality", "--summary", "电池鼓包 battery swelling",
        "--product-model", "P30", "--batch", batch, "--customer", customer,
    )  # fmt: skip


def _resolve_and_close(service: Service, inc: str) -> dict[str, object]:
    for command in (
        ["contact", "--by", "王芳"],
        ["measure", "--kind", "spare_product"],
        ["cause", "--root", f"separator lot {inc}", "--direct", "cells overheat", "--stage", "production"],
        ["propose", "--solution", "replace"],
        ["approve", "--by", "Zhou", "--role", "dept_head"],
        ["confirm", "--result", "satisfied"],
        ["survey", "--speed", "5", "--result", "5", "--attitude", "5"],
    ):
        service.cli_json(command[0], inc, *command[1:])
    return service.wait_until(inc, lambda s: s["status"] == "closed", "closed", timeout=90)


def test_meeting_actions_signoff_and_recurrence_from_the_cli(service: Service, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    batch, qc_name, lead_name = f"RV-{tag}", f"质检王-{tag}", f"刘经理-{tag}"
    qc = service.person(qc_name, "quality_control")
    lead = service.person(lead_name, "cs_manager")  # the lead of a level-3 incident
    inc = str(_report(service, batch, f"客户甲-{tag}")["incident_id"])
    closed = _resolve_and_close(service, inc)
    assert closed["postmortem"] == "draft" and closed["meeting"] is None
    assert [d["state"] for d in closed["deadlines"] if d["kind"] == "postmortem"] == ["pending"]

    held = datetime.now(UTC).isoformat(timespec="seconds")
    meeting = service.cli_json(
        "meeting", inc, "--at", held, "--participant", qc_name, "--participant", "供应商工程师",
        "--finding", "来料检验缺失", "--went-well", "5 分钟内联系客户", "--went-badly", "等待供应商过久",
        "--decision", "每批次来料检验", "--action", "training:小李:14d:培训客服: 主动告知",
        "--action", "product:质检王:2027-01-31:更换隔膜供应商", token=qc,
    )  # fmt: skip
    assert meeting["postmortem"] == "final" and meeting["on_time"] is True
    assert [p["in_directory"] for p in meeting["participants"]] == [True, False]
    assert meeting["participants"][0]["roles"] == ["quality_control"]

    listed = service.cli_json("actions", inc)
    assert [
        set(a) >= {"id", "incident_id", "kind", "owner", "due_at", "status"} for a in listed["actions"]
    ] == [
        True,
        True,
    ]
    training = next(a for a in listed["actions"] if a["kind"] == "training")
    assert (
        training["text"] == "培训客服: 主动告知" and training["status"] == "open"
    )  # colons kept in the text
    assert training["id"] in {a["id"] for a in service.cli_json("actions")["actions"]}

    key = {"Idempotency-Key": f"add-{tag}"}
    body = {"actions": [{"kind": "resources", "owner": "李强", "due": "30d", "text": "备件库存加倍"}]}
    added = [
        service.api("POST", f"/api/incidents/{inc}/actions", json=body, token=qc, headers=key) for _ in "12"
    ]
    assert [r.status_code for r in added] == [201, 201] and added[0].json() == added[1].json()
    assert len(service.cli_json("actions", inc)["actions"]) == 3  # the repeat had no second effect

    bad = service.cli("actions", "close", training["id"], "--json", check=False, token=qc)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--evidence" in bad.stderr
    wrong = service.cli("actions", "add", inc, "--action", "fun:小李:1d:x", "--json", check=False, token=qc)
    assert wrong.returncode == 2 and "类型须为" in wrong.stderr  # the CLI's own check, in zh
    done = service.cli_json("actions", "close", training["id"], "--evidence", "签到表 12 人", token=qc)
    assert done["status"] == "done" and done["closed_by"] == qc_name

    refused = service.cli("signoff", inc, "--json", check=False, token=qc)
    assert refused.returncode == 2 and "客服经理" in refused.stderr
    signed = service.cli_json("signoff", inc, token=lead)
    assert signed["signed_by"] == lead_name and signed["postmortem"] == "signed"
    audit = {(e["action"], e["outcome"]) for e in service.cli_json("audit", inc)["events"]}
    assert {("meeting", "ok"), ("signoff", "refused"), ("signoff", "ok"), ("actions_close", "ok")} <= audit

    text = service.api("GET", f"/api/incidents/{inc}/postmortem", params={"format": "md"}).text
    for said in ("来料检验缺失", "已签发", lead_name, "签到表 12 人", "根本原因"):
        assert said in text, said
    archived = record(service, inc, "postmortem").text  # the archived record is the final one too
    assert "每批次来料检验" in archived and "已签发" in archived

    figures = service.cli_json("metrics")["actions"]
    assert figures["done"] >= 1 and figures["open"] >= 1
    scraped = service.api("GET", "/metrics").text
    assert 'incident_improvement_actions{state="done"}' in scraped

    # The same product and batch again, once the first is closed: a recurrence, said everywhere.
    again = _report(service, batch, f"客户乙-{tag}")
    assert again["recurrence_of"] == inc and again["incident_id"] != inc
    api = service.api("POST", "/api/feedback", json={
        "category": "product_quality", "summary": "again", "product_model": "P30", "batch": batch,
        "customer": f"客户丙-{tag}"})  # fmt: skip
    assert api.status_code == 202 and api.json()["recurrence_of"] == inc
    shown = service.cli_json("show", str(again["incident_id"]))
    assert shown["recurrence_of"] == inc and len(shown["recurrence"]["actions"]) == 3
    human = service.cli("show", str(again["incident_id"])).stdout
    assert inc in human.split("\n", 3)[2]  # the line under the summary names the earlier incident
    deadline = time.monotonic() + 30
    while not [m for m in service.inbox.for_incident(str(again["incident_id"])) if inc in json.dumps(m)]:
        assert time.monotonic() < deadline, "the opening notice never named the earlier incident"
        time.sleep(0.3)
    assert _report(service, f"RV-other-{tag}", f"客户丁-{tag}")["recurrence_of"] is None

    console = browser(service)  # logged in already: the console's incident pages say the same
    try:
        page = console.get(f"/incidents/{again['incident_id']}").text
        assert f'<a href="/incidents/{inc}">{inc}</a>' in page and "3 项改进措施" in page  # zh by default
        first_page = console.get(f"/incidents/{inc}").text
        assert 'id="actions"' in first_page and "备件库存加倍" in first_page and "已签发" in first_page
    finally:
        console.close()

"""Authority and privacy: tokens, approver roles, double approvals, and contact details kept private."""

from __future__ import annotations

import asyncio
import time
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client

from flows.waiting import point_of
from tests.conftest import Service

PHONE = "13698765432"
EMAIL = "wang.wei@example.com"


def _l1_at_approval(service: Service, batch: str) -> str:
    reported = service.cli_json(
        "report",
        "--category",
        "product_quality",
        "--summary",
        f"smoke from charger, call me on {PHONE}",
        "--contact",
        PHONE,
        "--customer",
        "王伟",
        "--product-model",
        "C9",
        "--batch",
        batch,
        "--injury",
    )
    inc = reported["incident_id"]
    assert reported["level"] == 1
    for command in (
        ["contact", "--by", "客服 A"],
        ["measure", "--kind", "temporary_refund"],
        ["cause", "--root", "bad solder", "--direct", "short circuit", "--stage", "production"],
        ["propose", "--solution", "replace"],
    ):
        service.cli_json(command[0], inc, *command[1:])
    service.wait_for_point(inc, "approval-1")
    return inc


def test_no_token_no_entry(service: Service) -> None:
    for method, path in (
        ("GET", "/api/incidents"),
        ("POST", "/api/feedback"),
        ("GET", "/api/incidents/X"),
        ("POST", "/api/incidents/X/approve"),
    ):
        response = httpx.request(method, service.url + path, json={})
        assert response.status_code == 401, path
        assert (
            httpx.request(
                method, service.url + path, json={}, headers={"Authorization": "Bearer wrong"}
            ).status_code
            == 401
        )


def test_only_leadership_approves_level_1_and_refusals_are_recorded(service: Service) -> None:
    inc = _l1_at_approval(service, "AUTH-1")
    for role in ("dept_head", "cs_director", "duty_manager", "nobody"):
        refused = service.api("POST", f"/api/incidents/{inc}/approve", json={"by": "Mallory", "role": role})
        assert refused.status_code == 403 and "leadership" in refused.json()["error"]
    shown = service.show(inc)
    refusals = [e for e in shown["timeline"] if e["event"] == "approval_refused"]
    assert len(refusals) == 4 and all(e["by"] == "Mallory" for e in refusals)
    assert shown["waiting_for"] == "approval-1" and shown["solutions"][0]["status"] == "pending"


def test_the_same_approval_twice_at_once_resumes_the_flow_once(service: Service) -> None:
    inc = _l1_at_approval(service, "AUTH-2")
    body = {"by": "陈总", "role": "leadership"}

    async def both() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {service.person('陈总', 'leadership')}"}
        async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(client.post(f"/api/incidents/{inc}/approve", json=body) for _ in range(2))
                )
            )

    statuses = sorted(r.status_code for r in asyncio.run(both()))
    assert statuses == [200, 409]
    shown = service.wait_for_point(inc, "confirmation-1")
    assert [e["event"] for e in shown["timeline"]].count("solution_approved") == 1
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(shown["flow_run_id"]))
    ordered = sorted(states, key=lambda s: s.timestamp)
    # what followed each pause at approval-1: one resume (Resuming, or Running for a run waiting in its
    # process); any other pause there ended its window unanswered ("waiting on") and suspended
    at_approval = [a.type.value == "PAUSED" and point_of(a.state_details.pause_key or "") == "approval-1"
                   for a in ordered]  # fmt: skip
    after = [b for a, b, yes in zip(ordered, ordered[1:], at_approval, strict=False) if yes]
    assert len([s for s in after if s.name != "waiting on"]) == 1, [(s.type, s.name) for s in ordered]


def test_every_action_is_on_the_timeline_with_who(service: Service) -> None:
    inc = _l1_at_approval(service, "AUTH-3")
    service.cli_json("approve", inc, "--by", "陈总", "--role", "leadership")
    timeline = service.show(inc)["timeline"]
    by_event = {e["event"]: e["by"] for e in timeline}
    assert by_event["contacted"] == "客服 A"
    assert by_event["cause_recorded"] == "on-call" and by_event["solution_proposed"] == "on-call"
    assert by_event["solution_approved"].startswith("陈总")
    assert by_event["identified"].startswith("phone:FB")


def _feedback_run(service: Service, feedback_id: str) -> str:
    """The feedback's own flow run: the 202 may answer before the worker has started it (null then)."""
    deadline = time.monotonic() + 60
    while True:
        run_id = service.api("GET", f"/api/feedback/{feedback_id}").json().get("flow_run_id")
        if run_id:
            return str(run_id)
        assert time.monotonic() < deadline, f"{feedback_id} got no flow run"
        time.sleep(0.5)


def test_contact_details_never_leave_unmasked(service: Service) -> None:
    reported = service.cli_json(
        "report",
        "--category",
        "service_failure",
        "--summary",
        f"technician never came; mail {EMAIL} or {PHONE}",
        "--contact",
        EMAIL,
        "--customer",
        "王伟",
        "--service",
        "install",
        "--region",
        "privacy-1",
    )
    inc = reported["incident_id"]
    for command in (["contact", "--by", "A", "--note", f"called {PHONE}"], ["measure", "--kind", "expedite"]):
        service.cli_json(command[0], inc, *command[1:])
    shown = service.wait_for_point(inc, "cause")
    texts = [str(shown)]
    texts += [
        service.api("GET", f"/api/incidents/{inc}/postmortem", params={"format": f, "lang": lang}).text
        for f in ("md", "html")
        for lang in ("zh", "en")
    ]
    texts += [m["title"] + m["message"] for m in service.inbox.collect()]
    texts.append(service.api("GET", f"/api/incidents/{inc}/notifications").text)
    texts.append((service.home / "serve.log").read_text(errors="replace"))
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(shown["flow_run_id"]))
        texts += [run.name, str(run.parameters)]
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200)
        texts += [log.message for log in logs]
        fb_run_id = reported["flow_run_id"] or _feedback_run(service, reported["feedback_id"])
        fb_runs = client.read_flow_run(UUID(fb_run_id))
        texts += [fb_runs.name, str(fb_runs.parameters)]
    blob = "\n".join(texts)
    assert PHONE not in blob and EMAIL not in blob
    assert "136****5432" in str(shown) or "w***@example.com" in str(shown)

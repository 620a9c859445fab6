"""``incident assign``, ``incident inbox`` and ``incident list``'s filters against the real service.

The inbox: a suggestion opens no incident; its group (the playbook's ``inbox_owner``) is told once, even
when its ``handle_feedback`` run is replayed; it can be answered and closed, or promoted to an incident
through the intake's own path (once: a second promotion is 409).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.conftest import Service


def routed(service: Service, feedback_id: str) -> list[dict[str, Any]]:
    return [m for m in service.inbox.collect() if feedback_id in m.get("title", "") + m.get("message", "")]


def wait_routed(service: Service, feedback_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        item = service.api("GET", f"/api/inbox/{feedback_id}").json()
        if item.get("routed_at") and routed(service, feedback_id):
            return item
        assert time.monotonic() < deadline, f"{feedback_id} was never routed: {item}"
        time.sleep(0.3)


def test_assign_and_list_filters(service: Service) -> None:
    tag = uuid.uuid4().hex[:8]
    one = service.cli_json(
        *(
            "report",
            "--category",
            "product_quality",
            "--summary",
            f"屏幕闪烁 {tag}",
            "--customer",
            f"客户{tag}",
        ),
        *("--order", f"ORD-{tag}", "--batch", f"B-{tag}"),
    )
    other = service.cli_json("report", "--category", "service_failure", "--summary", "送货延迟",
                             "--service", "delivery", "--region", f"r-{tag}")  # fmt: skip
    assigned = service.cli_json("assign", one["incident_id"], "--owner", f"王芳{tag}")
    assert assigned == {"incident_id": one["incident_id"], "owner": f"王芳{tag}"}
    shown = service.show(one["incident_id"])
    assert shown["owner"] == f"王芳{tag}" and shown["timeline"][-1]["event"] == "owner_assigned"
    assert shown["feedback"][0]["order"] == f"ORD-{tag}"

    def listed(*args: str) -> set[str]:
        return {r["incident_id"] for r in service.cli_json("list", *args)["incidents"]}

    assert listed("--owner", f"王芳{tag}") == {one["incident_id"]}
    assert listed("--search", f"ORD-{tag}") == {one["incident_id"]}
    assert listed("-q", f"客户{tag}", "--category", "product_quality", "--open") == {one["incident_id"]}
    assert listed("-q", f"r-{tag}", "--category", "product_quality") == set()
    assert listed("-q", f"r-{tag}", "--status", "response") | listed(
        "-q", f"r-{tag}", "--status", "handling"
    ) == {other["incident_id"]}
    api = service.api("GET", "/api/incidents", params={"q": f"B-{tag}", "level": shown["level"]})
    assert [r["incident_id"] for r in api.json()["incidents"]] == [one["incident_id"]]
    bad = service.cli("list", "--level", "7", check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert service.api("GET", "/api/incidents", params={"level": 9}).status_code == 422
    empty = service.api("POST", f"/api/incidents/{one['incident_id']}/assign", json={"owner": ""})
    assert empty.status_code == 422 and "owner" in empty.json()["error"]
    assert service.api("POST", "/api/incidents/INC00000000000/assign", json={"owner": "x"}).status_code == 404


def test_inbox_routes_once_answers_closes_and_promotes(service: Service) -> None:
    tag = uuid.uuid4().hex[:8]
    body = {"kind": "suggestion", "category": "product_quality", "summary": f"希望增加夜间模式 {tag}",
            "customer": "赵六", "contact": "13912345678", "channel": "app"}  # fmt: skip
    accepted = service.api("POST", "/api/feedback", json=body)
    assert accepted.status_code == 202 and accepted.json()["incident_id"] is None
    fb = accepted.json()["feedback_id"]
    item = wait_routed(service, fb)
    assert item["routed_to"] == "quality_control" and item["contact"] == "139****5678"
    notices = routed(service, fb)
    assert [m["role"] for m in notices] == ["quality_control"] and "建议" in notices[0]["title"]

    listed = service.cli_json("inbox", "--status", "open")["feedback"]
    mine = [r for r in listed if r["feedback_id"] == fb]
    assert mine and {"feedback_id", "kind", "category", "status"} <= set(mine[0])
    assert mine[0]["kind"] == "suggestion" and mine[0]["status"] == "open"

    answered = service.cli_json("inbox", "answer", fb, "--text", "已记录，谢谢建议", "--close")
    assert answered["status"] == "closed"
    item = service.api("GET", f"/api/inbox/{fb}").json()
    assert item["answer"] == "已记录，谢谢建议" and item["answered_by"] == "service token"
    again = service.cli("inbox", "close", fb, check=False)
    assert again.returncode == 2 and "已关闭" in again.stderr  # "FB… 的状态为“已关闭”…": zh by default
    time.sleep(1.5)
    assert len(routed(service, fb)) == 1

    inquiry = {"kind": "inquiry", "summary": f"手机发烫是否正常？{tag}", "product_model": "P30",
               "batch": f"B-{tag}", "customer": "钱七"}  # fmt: skip
    fb2 = service.api("POST", "/api/feedback", json=inquiry).json()["feedback_id"]
    assert wait_routed(service, fb2)["routed_to"] == "customer_service"  # no category: customer service
    no_category = service.api("POST", f"/api/inbox/{fb2}/promote", json={})
    assert no_category.status_code == 422 and "category" in no_category.json()["error"]
    assert service.api("GET", f"/api/inbox/{fb2}").json()["status"] == "open"  # nothing half-done
    promoted = service.cli_json("inbox", "promote", fb2, "--category", "product_quality")
    assert promoted["status"] == "promoted" and promoted["incident_id"].startswith("INC")
    shown = service.show(promoted["incident_id"])
    assert any(f["batch"] == f"B-{tag}" for f in shown["feedback"])
    twice = service.api("POST", f"/api/inbox/{fb2}/promote", json={"category": "product_quality"})
    assert twice.status_code == 409


def test_routing_claim_is_taken_once(any_db: str) -> None:
    """The guard itself, on a real database: the second claim of the same item finds it routed."""
    from incident.feedback import service as intake
    from incident.feedback.inputs import FeedbackIn
    from incident.inbox import service as inbox

    fb = intake.record(
        FeedbackIn(kind="praise", category="service_failure", summary="安装师傅很专业")
    ).feedback_id
    first = inbox.claim_route(fb)
    assert first is not None and first["routed_to"] == "customer_service"
    assert inbox.claim_route(fb) is None
    assert asyncio.run(inbox.route(fb)) == 0  # nothing sent the second time
    assert inbox.list_inbox("open")[0]["feedback_id"] == fb

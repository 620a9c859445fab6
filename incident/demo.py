"""``incident demo``: domain.md §3's three worked examples, end to end, through the CLI's own calls.

Every human step goes through the same HTTP API the CLI commands use, each with the token of the demo
person who does it (added to the directory first); the flows run in the service.

Why the demo's people are marked (``（演示）`` after each name): the demo adds its people again on every
run, removing those an earlier run added. It must never touch a real person: a real team may well have
a 王芳. So it adds, and removes, only names carrying the mark, which no real person's name does.
The level-1 example includes a rejected proposal, the level-2 one a survey below target. Once each is
closed, quality control records its post-mortem meeting (findings, decisions, improvement actions) and
the level's lead signs the post-mortem off, so the printed post-mortems are the final, signed ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from incident.records.postmortem import default_path

Call = Callable[..., dict[str, Any]]

EXAMPLES: list[dict[str, Any]] = [
    {
        "report": {
            "category": "product_quality",
            "summary": "手机电池鼓包，媒体已报道 / phone batteries swelling, in the news",
            "customer": "张伟",
            "contact": "13812345678",
            "product_model": "P30",
            "batch": "B2026-11",
            "customers": 120,
            "media": True,
            "channel": "social",
        },
        "steps": [
            ("contact", {"by": "王芳", "note": "apologised, promised a spare phone today"}),
            ("measure", {"kind": "spare_product", "by": "值班经理 吴", "note": "物流 李强 sends it"}),
            (
                "cause",
                {
                    "root": "电芯供应商隔膜缺陷 / separator defect at the cell supplier",
                    "direct": "批次 B2026-11 电池过热鼓包 / batch B2026-11 cells overheat",
                    "stage": "production",
                    "by": "技术支持 刘工",
                },
            ),
            ("propose", {"solution": "repair", "by": "技术支持 刘工"}),
            (
                "approve",
                {
                    "by": "总经理 陈总",
                    "role": "leadership",
                    "reject": True,
                    "reason": "repair does not remove the risk; recall the batch",
                },
            ),
            ("propose", {"solution": "recall", "by": "技术支持 刘工", "legal_reviewed": True}),
            ("approve", {"by": "总经理 陈总", "role": "leadership"}),
            ("confirm", {"result": "satisfied", "by": "王芳"}),
            (
                "survey",
                {"speed": 5, "result": 5, "attitude": 4, "suggestion": "faster first call", "by": "王芳"},
            ),
        ],
    },
    {
        "report": {
            "category": "service_failure",
            "summary": "20 位客户订单延迟未告知，要求赔偿 / 20 late orders, compensation demanded",
            "customer": "李娜",
            "contact": "li.na@example.com",
            "service": "delivery",
            "region": "华东",
            "customers": 20,
            "compensation_demand": True,
            "channel": "app",
        },
        "steps": [
            ("contact", {"by": "客服 赵敏"}),
            ("measure", {"kind": "coupon", "note": "50-yuan coupon", "by": "值班经理 吴"}),
            (
                "cause",
                {
                    "root": "dispatch system did not notify delays",
                    "direct": "warehouse backlog",
                    "stage": "service",
                    "by": "质量管控 钱工",
                },
            ),
            ("propose", {"solution": "compensate", "note": "+6 months warranty", "by": "质量管控 钱工"}),
            ("approve", {"by": "部门负责人 周", "role": "dept_head"}),
            ("confirm", {"result": "satisfied", "by": "客服 赵敏"}),
            (
                "survey",
                {
                    "speed": 2,
                    "result": 3,
                    "attitude": 3,
                    "suggestion": "tell us before it is late",
                    "by": "客服 赵敏",
                },
            ),
            ("survey", {"speed": 4, "result": 5, "attitude": 5, "by": "客服 赵敏"}),
        ],
    },
    {
        "report": {
            "category": "special_scenario",
            "summary": "暴雨导致物流停运，产品故障但不影响使用 / rainstorm stopped deliveries",
            "customer": "刘洋",
            "contact": "13900001111",
            "cause": "rainstorm",
            "region": "广州",
            "customers": 1,
            "channel": "phone",
        },
        "steps": [
            ("contact", {"by": "客服 孙丽"}),
            ("measure", {"kind": "alternative", "note": "pick up at the nearby store", "by": "值班经理 吴"}),
            (
                "cause",
                {
                    "root": "rainstorm closed the roads",
                    "direct": "courier stopped",
                    "stage": "external",
                    "by": "物流 李强",
                },
            ),
            ("propose", {"solution": "reroute_logistics", "by": "物流 李强"}),
            ("approve", {"by": "部门负责人 周", "role": "dept_head"}),
            ("confirm", {"result": "neutral", "by": "客服 孙丽"}),
            ("survey", {"speed": 4, "result": 4, "attitude": 5, "by": "客服 孙丽"}),
        ],
    },
]
ROUTES = {"contact", "measure", "cause", "propose", "approve", "confirm", "survey"}
# The demo's people (incident people add): every step is recorded with its person's own token, as when
# people type the commands with INCIDENT_TOKEN set; ``by`` in the steps names whose token is used.
PEOPLE: dict[str, list[str]] = {
    "王芳": ["customer_service"],
    "客服 赵敏": ["customer_service"],
    "客服 孙丽": ["customer_service"],
    "值班经理 吴": ["duty_manager"],
    "技术支持 刘工": ["technical_support"],
    "质量管控 钱工": ["quality_control"],
    "物流 李强": ["logistics"],
    "总经理 陈总": ["leadership"],
    "部门负责人 周": ["dept_head"],
    "客服总监 孙": ["cs_director"],
    "客服经理 郑": ["cs_manager"],
}
# Each example's post-mortem meeting (recorded by quality control) and the lead who signs it off.
REVIEWS: list[dict[str, Any]] = [
    {
        "lead": "总经理 陈总",
        "meeting": {
            "participants": ["总经理 陈总", "技术支持 刘工", "质量管控 钱工", "王芳", "供应商工程师 张工"],
            "findings": ["电芯供应商来料检验缺失隔膜检测 / no separator check at incoming inspection"],
            "went_well": ["媒体曝光后 30 分钟内联系客户 / customers contacted within 30 min of the news"],
            "went_badly": [
                "首个维修方案被驳回，召回晚了一轮 / the first proposal was a repair, not a recall"
            ],
            "decisions": ["同一供应商的电芯逐批抽检 / sample every batch of that supplier's cells"],
            "actions": [
                {
                    "kind": "product",
                    "owner": "技术支持 刘工",
                    "due": "30d",
                    "text": "更换隔膜供应商 / change the separator supplier",
                },
                {
                    "kind": "process",
                    "owner": "质量管控 钱工",
                    "due": "14d",
                    "text": "来料检验加隔膜检测 / add a separator check",
                },
            ],
        },
    },
    {
        "lead": "客服总监 孙",
        "meeting": {
            "participants": ["客服总监 孙", "质量管控 钱工", "客服 赵敏", "物流 李强"],
            "findings": ["派单系统不发延误通知 / the dispatch system sent no delay notices"],
            "went_badly": ["首轮满意度低于目标 / the first survey round was below target"],
            "decisions": ["延误 2 小时自动通知客户 / tell customers automatically after a 2 h delay"],
            "actions": [
                {
                    "kind": "process",
                    "owner": "质量管控 钱工",
                    "due": "21d",
                    "text": "延误自动通知 / automatic delay notices",
                },
                {
                    "kind": "training",
                    "owner": "客服 赵敏",
                    "due": "14d",
                    "text": "主动告知延误培训 / training: tell before it is late",
                },
            ],
        },
    },
    {
        "lead": "客服经理 郑",
        "meeting": {
            "participants": ["客服经理 郑", "物流 李强", "客服 孙丽"],
            "findings": ["暴雨预警时未提前调度门店自提 / no store pick-up planned on the storm warning"],
            "decisions": ["暴雨预警即启动门店自提预案 / storm warning starts the store pick-up plan"],
            "actions": [
                {
                    "kind": "resources",
                    "owner": "物流 李强",
                    "due": "30d",
                    "text": "门店自提预案 / store pick-up plan",
                },
            ],
        },
    },
]
REVIEWER = "质量管控 钱工"
MARK = "（演示）"
WAIT_CLOSED = 180.0  # seconds an example may take to close once its last step is recorded


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to look at."""


def marked(name: str) -> str:
    return name + MARK


def _as_demo(value: Any) -> Any:
    """``value`` with every name of the demo's people marked (see the module)."""
    if isinstance(value, str):
        return marked(value) if value in PEOPLE else value
    if isinstance(value, list | tuple):
        return type(value)(_as_demo(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_demo(v) for k, v in value.items()}
    return value


def demo_people(call: Call) -> dict[str, str]:
    """Add the demo's people (again, with fresh tokens, when an earlier demo added them): name → token.
    Only names carrying the mark are removed: nobody else in the directory is touched."""
    listed = {p["name"] for p in call(False, "GET", "/api/people")["people"]}
    for name in map(marked, PEOPLE):
        if name in listed:
            call(False, "DELETE", f"/api/people/{quote(name, safe='')}")
    body = {"people": [{"name": marked(name), "roles": roles} for name, roles in PEOPLE.items()]}
    return {p["name"]: p["token"] for p in call(False, "POST", "/api/people/import", json=body)["people"]}


def wait_closed(call: Call, incident_id: str, timeout: float = WAIT_CLOSED) -> dict[str, Any]:
    """The incident once closed; DemoError when it is not within ``timeout`` (what it waits for)."""
    deadline = time.monotonic() + timeout
    while True:
        shown = call(False, "GET", f"/api/incidents/{incident_id}")
        if shown["status"] == "closed":
            return shown
        if time.monotonic() > deadline:
            raise DemoError(
                f"{incident_id} did not close within {timeout:g} s (status {shown['status']}, waiting "
                f"for {shown.get('waiting_for') or 'nothing'}); see `incident show {incident_id}` and the "
                "service's log"
            )
        time.sleep(0.5)


def run_demo(call: Call, timeout: float = WAIT_CLOSED) -> dict[str, Any]:
    tokens = demo_people(call)
    opened = []
    for example in _as_demo(EXAMPLES):
        reported = call(False, "POST", "/api/feedback", json=example["report"])
        for action, body in example["steps"]:
            assert action in ROUTES
            as_person = {"Authorization": f"Bearer {tokens[body['by']]}"}
            path = f"/api/incidents/{reported['incident_id']}/{action}"
            call(False, "POST", path, json=body, headers=as_person)
        opened.append(reported)
    results = []
    for reported, review in zip(opened, _as_demo(REVIEWS), strict=True):
        incident_id = reported["incident_id"]
        wait_closed(call, incident_id, timeout)
        meeting = {**review["meeting"], "at": datetime.now(UTC).isoformat(timespec="seconds")}
        for path, token, body in (
            (f"/api/incidents/{incident_id}/meeting", tokens[marked(REVIEWER)], meeting),
            (f"/api/incidents/{incident_id}/signoff", tokens[review["lead"]], {}),
        ):
            call(False, "POST", path, json=body, headers={"Authorization": f"Bearer {token}"})
        shown = call(False, "GET", f"/api/incidents/{incident_id}")
        paths = {}
        for lang in ("zh", "en"):
            from incident.client import Client

            text = (
                Client()
                .call(
                    "GET", f"/api/incidents/{incident_id}/postmortem", params={"format": "md", "lang": lang}
                )
                .text
            )
            path = default_path(incident_id, lang, "md")
            path.write_text(text, encoding="utf-8")
            paths[lang] = str(path)
        results.append(
            {
                "incident_id": incident_id,
                "level": shown["level"],
                "category": shown["category"],
                "status": shown["status"],
                "postmortem_state": shown["postmortem"],
                "postmortem": paths["zh"],
                "postmortem_en": paths["en"],
            }
        )
    return {"incidents": results}

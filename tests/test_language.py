"""No English in what a Chinese team reads, and times where the team is (issue 12, items 1-2 and 5).

One full level-1 incident is recorded through the real services in-process (reports, a late contact, a
missed deadline and its escalation, a refused approval, a rejection, a recall approved, confirmation,
two surveys, a meeting with actions, an action closed); then its zh post-mortem and records, the zh
notices of every kind and the zh console pages (the real app, in-process) are scanned for Latin words.
The allow-list is what is Latin by nature: ids, the product models and batches the customer typed,
names of products (Prefect, Zendesk), file formats, the 5W1H headings the guide itself uses; text in
``<code>`` (commands, waiting-point keys) is not prose and is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

PRODUCT, BATCH = "X20", "B2311"
ALLOWED = re.compile(
    r"^(?:INC\d+|FB\d+|ACT\d+|X20|B2311|5W1H|PDF|Markdown|English|Prefect|Zendesk|APP"
    r"|What|Why|Who|When|Where|How|\d+[dhw])$"
)  # ids, what the customer typed, product and format names, the guide's 5W1H headings, spans typed (14d)
WORD = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9_'-]*")
COMMAND = re.compile(r"incident [a-z]+[^\n。，]*")  # a command to type, to the end of its clause (notices)
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class _Visible(HTMLParser):
    """The text a reader sees: no tags, attributes, scripts, styles or ``<code>``."""

    SKIP = ("script", "style", "code")

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(parser.parts)


def latin(text: str) -> set[str]:
    """Latin words of a text that are not on the allow-list (Markdown code spans are not prose)."""
    prose = re.sub(r"`[^`]*`", " ", text)
    return {w for w in WORD.findall(prose) if not ALLOWED.match(w)}


def test_the_scan_finds_english_fragments() -> None:
    assert latin("首次联系 first contact；spare_product") == {"first", "contact", "spare_product"}
    assert latin("INC20261124001 X20 / B2311 `incident ack INC1` 5W1H") == set()
    assert visible("<p>升级 <code>approval-1</code> <b>round 2</b></p>").split() == ["升级", "round", "2"]


# --- one full incident, through the services -------------------------------------------------------


def full_incident() -> str:
    """A level-1 product-quality incident that went through every step, recorded as the API would."""
    from sqlalchemy import select

    import playbooks
    from flows import deadlines as watcher
    from incident.actions import service as actions
    from incident.deadlines import service as deadlines
    from incident.errors import Forbidden
    from incident.feedback import service as intake
    from incident.feedback.inputs import FeedbackIn
    from incident.meetings import service as meetings
    from incident.people.service import Actor
    from incident.response import service as steps
    from incident.response.authority import perform
    from incident.response.inputs import (
        ApproveIn,
        CauseIn,
        ConfirmIn,
        ContactIn,
        MeasureIn,
        ProposeIn,
        SurveyIn,
    )
    from incident.response.steps import BY_ACTION
    from models import Deadline, Incident, session_scope

    first = FeedbackIn(
        category="product_quality",
        summary="X20 手机充电时电池鼓包",
        product_model=PRODUCT,
        batch=BATCH,
        customer="李雷",
        contact="13812345678",
        channel="social",
        media=True,
    )
    inc = str(intake.record(first, now=at(0)).incident_id)
    intake.record(
        FeedbackIn(
            category="product_quality",
            summary="同批次电池发烫",
            product_model=PRODUCT,
            batch=BATCH,
            customers=20,
            compensation_demand=True,
        ),
        now=at(3),
    )

    def sweep(now: datetime) -> None:  # the deadline watcher's claims, without its notices
        with session_scope() as s:
            rows = s.execute(
                select(Deadline, Incident).join(Incident, Incident.id == Deadline.incident_id)
            ).all()
        for deadline, incident in rows:
            rules = playbooks.get(incident.category).level(incident.level)
            if deadline.state in ("pending", "warned") and deadline.due_at <= now:
                watcher._claim_miss(deadline, rules, now)
            elif deadline.state == "pending" and deadline.due_at - rules.warn_before <= now:
                watcher._claim_warning(deadline, now)
        watcher._fire_chains({}, now)

    sweep(at(25))
    sweep(at(45))  # the contact deadline (30 min) missed: escalated
    duty = Actor(name="值班经理老周", roles=("duty_manager",), person=True)
    deadlines.acknowledge(inc, duty, "我来跟进", now=at(47))
    steps.contact(inc, ContactIn(by="王芳", note="已致歉"), now=at(50))
    steps.measure(inc, MeasureIn(kind="spare_product", by="赵六"), now=at(55))
    steps.cause(
        inc,
        CauseIn(root="电芯供应商未按标准生产", direct="质检漏检鼓包", stage="production", by="孙七"),
        now=at(90),
    )
    steps.propose(inc, ProposeIn(solution="replace", by="孙七"), now=at(100))
    manager = Actor(name="钱经理", roles=("cs_manager",), person=True)
    with pytest.raises(Forbidden):
        perform(BY_ACTION["approve"], inc, ApproveIn(role="cs_manager"), manager)
    with pytest.raises(Forbidden):
        steps.approve(inc, ApproveIn(by="钱经理", role="cs_manager"), now=at(105))
    steps.approve(
        inc, ApproveIn(by="陈总", role="leadership", reject=True, reason="更换无法覆盖整批"), now=at(110)
    )
    steps.propose(inc, ProposeIn(solution="recall", by="孙七", legal_reviewed=True), now=at(120))
    steps.approve(inc, ApproveIn(by="陈总", role="leadership", legal_reviewed=True), now=at(150))
    steps.contact(inc, ContactIn(by="王芳"), now=at(300))
    steps.confirm(inc, ConfirmIn(result="satisfied", by="王芳"), now=at(400))
    steps.survey(inc, SurveyIn(speed=3, result=3, attitude=4, by="王芳", suggestion="希望更快"), now=at(500))
    steps.survey(inc, SurveyIn(speed=5, result=5, attitude=5, by="王芳"), now=at(600))
    lead = Actor(name="陈总", roles=("leadership",), person=True)
    body = meetings.MeetingIn(
        at=at(900),
        participants=["陈总", "王芳"],
        findings=["供应商来料检验缺失"],
        decisions=["更换供应商"],
        actions=[actions.ActionIn(kind="product", owner="孙七", due="2026-12-31", text="更换电芯供应商")],
    )
    made = meetings.record(inc, body, lead, now=at(910))
    with pytest.raises(Forbidden):
        actions.close(
            made["actions"][0]["id"], actions.CloseIn(evidence="新供应商合同"), manager, now=at(950)
        )
    actions.close(made["actions"][0]["id"], actions.CloseIn(evidence="新供应商合同"), lead, now=at(960))
    meetings.signoff(inc, meetings.SignoffIn(note="同意"), lead, now=at(1000))
    return inc


@pytest.fixture
def incident(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("INCIDENT_LANG", "zh")
    yield full_incident()


# --- the scans ---------------------------------------------------------------------------------


def test_the_zh_postmortem_and_records_have_no_english(incident: str) -> None:
    from incident.records.documents import RECORD_KINDS, available, build_dossier, render
    from models import session_scope

    with session_scope() as s:
        dossier = build_dossier(s, incident)
    found = {}
    for kind in RECORD_KINDS:
        if available(kind, dossier):
            text = render(kind, dossier, lang="zh", fmt="md")
            found[kind] = latin(text)
            assert not latin(visible(render(kind, dossier, lang="zh", fmt="html"))), kind
    assert found["postmortem"] == set() and not any(found.values()), found
    postmortem = render("postmortem", dossier, lang="zh", fmt="md")
    for said in (
        "角色“客服经理”无权审批一级事件的方案（需要：应急领导小组）",
        "陈总（应急领导小组）",
        "首次联系（超时）",
        "提供备用产品",
        "第 2 轮",
        "评分 3.33",
        "媒体/社交媒体曝光",
        "期限监控",
    ):
        assert said in postmortem, said


def notice_contexts(incident_id: str) -> dict[str, dict[str, Any]]:
    """A context for every kind of notice, as the flows build them for this incident."""
    from flows.notices import context, deadline_context

    base = context(incident_id, "zh")
    due = deadline_context(at(30), "contact", at(20))
    missed = [
        {"kind": "contact", "due_at": at(30).isoformat()},
        {"kind": "approval", "due_at": at(220).isoformat()},
    ]
    ack = {"ack_command": f"incident ack {incident_id}", "escalated_from": "leadership"}
    return {
        "incident_opened": {**base, **due},
        "level_raised": {**base, "old_level": 2, "new_level": 1},
        "stage_changed": {**base, "stage": "handling"},
        "deadline_warning": {**base, **deadline_context(at(30), "contact", at(25))},
        "deadline_missed": {
            **base,
            **deadline_context(at(30), "contact", at(45)),
            **ack,
            "escalation_step": 2,
        },
        "approval_requested": {
            **base,
            "solution": "recall",
            "round": 2,
            **deadline_context(at(240), "approval", at(120)),
        },
        "approval_decided": {
            **base,
            "solution": "replace",
            "approved": False,
            "decided_by": "陈总",
            "reason": "更换无法覆盖整批",
        },
        "progress_due": {**base, **deadline_context(at(290), "progress", at(280))},
        "resolved": {**base, "stage": "follow_up"},
        "survey_below_target": {**base, "score": 0.0, "target": 0.9, "round": 1},
        "postmortem_due": {**base, **deadline_context(at(1800), "postmortem", at(1500))},
        "postmortem_overdue": {**base, **deadline_context(at(1800), "postmortem", at(1900)), **ack},
        "action_due": {
            **base,
            "action_id": "ACT20261124001",
            "action_owner": "孙七",
            "action_kind": "product",
            "action_text": "更换电芯供应商",
            **deadline_context(at(10000), "action", at(9000)),
        },
        "action_overdue": {
            **base,
            "action_id": "ACT20261124001",
            "action_owner": "孙七",
            "action_kind": "product",
            "action_text": "更换电芯供应商",
            **deadline_context(at(10000), "action", at(11000)),
        },
        "deadlines_summary": {**base, "missed": missed, **ack},
        "feedback_routed": {
            **base,
            "feedback_id": "FB20261124009",
            "feedback_kind": "suggestion",
            "routed_to": "quality_control",
        },
        "review_ready": {
            "review": "2026-11",
            "review_path": "/srv/reviews/review-2026-11.zh.pdf",
            "review_lines": ["一级事件 1 起"],
        },
    }


def test_zh_notices_of_every_kind_have_no_english(incident: str) -> None:
    from notifiers import NOTICE_KINDS, render

    contexts = notice_contexts(incident)
    assert set(contexts) == set(NOTICE_KINDS)
    found = {}
    for kind, ctx in contexts.items():
        notice = render(kind, ctx, "zh")
        for shown in (notice.title, notice.text, visible(notice.html)):
            prose = COMMAND.sub(" ", shown.replace(ctx.get("review_path", "\0"), " "))  # a command, a path
            if latin(prose):
                found[kind] = latin(prose)
    assert not found, found
    raised = render("level_raised", contexts["level_raised"], "zh").text
    assert "升级原因：媒体/社交媒体曝光" in raised


CONSOLE_PAGES = (
    "/",
    "/closed",
    "/charts/monthly",
    "/audit",
    "/inbox",
    "/report",
    "/people",
    "/actions",
    "/incidents/{id}",
    "/incidents/{id}/postmortem",
    "/incidents/{id}/records/solution_approval",
    "/incidents/INC19990101999",
)


@pytest.fixture
def console(incident: str) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from incident.api.web import create_web_app

    with TestClient(create_web_app("lang-token")) as client:
        wrong = client.post("/login", data={"token": "not-it", "next": "/"}, follow_redirects=False)
        assert "令牌错误。" in wrong.text and not latin(visible(wrong.text))
        assert client.post("/login", data={"token": "lang-token", "next": "/"}).status_code == 200
        yield client


def test_zh_console_pages_have_no_english(incident: str, console: Any) -> None:
    found = {}
    for path in CONSOLE_PAGES:
        page = console.get(path.format(id=incident))
        assert page.status_code in (200, 404), (path, page.status_code)
        assert '<html lang="zh-CN">' in page.text, path
        words = latin(visible(page.text)) - {"testclient"}  # the audit's address of this test's client
        if words:
            found[path] = words
    assert not found, found
    refused = console.post(f"/incidents/{incident}/contact", data={"by": "x"})  # no CSRF value
    assert refused.status_code == 403 and not latin(visible(refused.text))
    english = console.get(f"/incidents/{incident}", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in english.text and "Timeline" in english.text and "Recall" in english.text


def test_zh_console_form_refusals_have_no_english(incident: str, console: Any) -> None:
    """Each closing, actions, people and inbox form's refusal is said in the console's words: the
    vocabulary's Chinese phrase of the raised error, never the English as raised."""
    from tests.test_console import csrf

    token = csrf(console.get(f"/incidents/{incident}").text)
    posts = {
        "signoff": (f"/incidents/{incident}/signoff", {"note": "同意"}, "复盘报告已由 陈总 签发"),
        "meeting": (f"/incidents/{incident}/meeting", {"at": "2026-11-24T20:00", "participants": "陈总"},
                    "复盘会议已记录"),
        "action field": (f"/incidents/{incident}/actions", {"kind": "process", "owner": "孙七"}, "必填"),
        "action close": ("/actions/ACT99999/close", {"evidence": "合同"}, "没有改进措施 ACT99999"),
        "person": ("/people", {"remove": "查无此人"}, "人员名录中没有“查无此人”"),
        "inbox": ("/inbox/FB99999/close", {}, "待答复反馈中没有 FB99999"),
    }  # fmt: skip
    found = {}
    for name, (path, form, words) in posts.items():
        refused = console.post(path, data={**form, "csrf": token})
        assert 400 <= refused.status_code < 500 and '<html lang="zh-CN">' in refused.text, (name, refused)
        shown = visible(refused.text)
        assert words in shown, (name, shown[-600:])
        prose = re.sub(r"（[a-z_.]+）", "", shown)  # a field's code beside its name: 完成期限（due）
        if latin(prose) - {"testclient"}:
            found[name] = latin(prose)
    assert not found, found


# --- time where the team is --------------------------------------------------------------------


def test_times_are_local_with_their_offset(
    incident: str, console: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from incident.records.postmortem import render_postmortem
    from notifiers import render

    monkeypatch.setenv("INCIDENT_TZ", "Asia/Shanghai")
    notice = render("incident_opened", notice_contexts(incident)["incident_opened"], "zh")
    assert "2026-11-24 10:30 +08:00" in notice.text  # the contact was due at 02:30 UTC
    page = console.get(f"/incidents/{incident}").text
    assert "2026-11-24 10:00 +08:00" in page and "+00:00" not in page  # identified at 02:00 UTC
    postmortem, _ = render_postmortem(incident, "zh", "md")
    assert "2026-11-24 10:00 +08:00" in postmortem and "UTC" not in postmortem
    listed = console.get(f"/api/incidents/{incident}").json()
    assert listed["identified_at"] == "2026-11-24T02:00:00+00:00"  # JSON keeps ISO 8601 with its offset


def test_without_incident_tz_the_machines_zone_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from incident import settings

    monkeypatch.delenv("INCIDENT_TZ", raising=False)
    monkeypatch.setenv("TZ", "Asia/Shanghai")  # the machine's zone, as /etc/localtime would say it
    assert str(settings.zone()) == "Asia/Shanghai"
    assert settings.local_time("2026-12-06T02:30:00+00:00") == "2026-12-06 10:30 +08:00"
    monkeypatch.setenv("INCIDENT_TZ", "Mars/Base")
    with pytest.raises(settings.SettingsError, match="INCIDENT_TZ='Mars/Base'"):
        settings.get()


# --- the CLI: errors, help and tables in the reader's language --------------------------------------


def run(service: Any, *args: str, **env: str) -> Any:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "incident.cli", *args], env={**service.env, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_cli_says_errors_and_help_in_zh_and_en_with_a_stable_code(service: Any) -> None:
    missing = run(service, "show", "INC19990101999")
    assert missing.returncode == 2 and missing.stderr.strip() == "错误：没有事件 INC19990101999"
    as_json = run(service, "show", "INC19990101999", "--json")
    assert json_of(as_json) == {"error": "没有事件 INC19990101999", "code": "no_incident"}
    english = run(service, "show", "INC19990101999", "--json", INCIDENT_LANG="en")
    assert english.stderr.strip() == "error: no incident INC19990101999"
    assert json_of(english) == {"error": "no incident INC19990101999", "code": "no_incident"}
    plain = service.api("GET", "/api/incidents/INC19990101999")  # a script that asks for no language
    assert plain.status_code == 404 and plain.json() == {
        "error": "no incident INC19990101999",
        "code": "no_incident",
    }

    usage = run(service, "show")
    assert (
        usage.returncode == 2 and usage.stderr.strip() == "错误：缺少必填参数：ID（见 incident show --help）"
    )
    assert run(service, "show", INCIDENT_LANG="en").stderr.strip() == (
        "error: the following arguments are required: ID (see: incident show --help)"
    )
    bad = run(service, "report", "--summary", "x", "--kind", "nope", "--json")
    assert bad.returncode == 2 and json_of(bad) == {"error": "类型（kind）：不是可选值", "code": "invalid"}
    helped = run(service, "report", "--help").stdout
    assert helped.startswith("用法：incident report") and "登记一条反馈" in helped and "客户姓名" in helped
    assert "show this help" not in helped and "the customer's name" not in helped
    assert "Record one feedback" in run(service, "report", "--help", INCIDENT_LANG="en").stdout


def json_of(result: Any) -> Any:
    import json

    return json.loads(result.stdout)


def test_report_json_gives_the_incidents_run_and_list_never_cuts_ids(service: Any) -> None:
    import uuid

    tag = uuid.uuid4().hex[:6]
    reported = service.cli_json("report", "--category", "product_quality", "--summary", "电池鼓包",
                                "--product-model", f"P-{tag}", "--customers", "150", "--media")  # fmt: skip
    assert "incident_flow_run_id" in reported and reported["opened"] is True
    shown = service.wait_until(reported["incident_id"], lambda s: s["flow_run_id"], "the incident's run")
    if reported["incident_flow_run_id"] is not None:  # made within the 202's wait: the run is known
        assert reported["incident_flow_run_id"] == shown["flow_run_id"]
    else:  # a busy service answers before it is made; the feedback's status says it once made
        status = service.api("GET", f"/api/feedback/{reported['feedback_id']}").json()
        assert status["incident_flow_run_id"] in (None, shown["flow_run_id"])

    listed = [row["incident_id"] for row in service.cli_json("list")["incidents"]]
    narrow = run(service, "list", COLUMNS="40").stdout
    assert listed and all(re.search(rf"(^|\s){i}(\s|$)", narrow, re.M) for i in listed)  # whole, copyable
    assert max(len(line) for line in narrow.splitlines()) > 40  # the table wraps, it does not cut

    told = run(service, "show", reported["incident_id"]).stdout
    assert "事件识别" in told and "一级（重大）" in told and " L1" not in told  # the timeline's words, in zh
    told_en = run(service, "show", reported["incident_id"], INCIDENT_LANG="en").stdout
    assert "Identified" in told_en and "Level 1 (major)" in told_en


def test_the_monthly_chart_speaks_chinese_with_a_cjk_font() -> None:
    """fonts-noto-cjk is installed here and in .ci/run: the zh chart is drawn in Chinese, not in boxes."""
    from incident.metrics.chart import _words, render_png
    from incident.reviews.charts import cjk_font

    assert cjk_font() is not None and _words("zh") == ("zh", cjk_font())
    rows = [{"month": f"2026-{m:02d}", "by_level": {"1": 1, "2": m % 3, "3": 2}, "incidents": 3 + m % 3,
             "response_minutes_p50": 20 + m} for m in range(1, 13)]  # fmt: skip
    zh, en = render_png(rows, "zh"), render_png(rows, "en")
    assert zh.startswith(b"\x89PNG") and en.startswith(b"\x89PNG") and zh != en


# --- every refusal a person can meet has its words ---------------------------------------------------

ERRORS = {"ActionError", "BadInput", "Conflict", "Forbidden", "NotFound"}
MACHINE_FACING = ("incident/integrations/",)  # answers to a vendor's webhook: read by its logs, not people


def _sample(node: Any) -> str | None:
    """A raised message as text, each value replaced by a sample (quoted as ``!r`` quotes it)."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [
            v.value if isinstance(v, ast.Constant) else ("'X1'" if v.conversion == ord("r") else "X1")
            for v in node.values
        ]
        return "".join(str(p) for p in parts)
    return None


def raised_messages() -> list[tuple[str, int, str]]:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = []
    for path in sorted((root / "incident").rglob("*.py")):
        name = str(path.relative_to(root))
        if name.startswith(MACHINE_FACING):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            call = node.exc if isinstance(node, ast.Raise) else None
            if isinstance(call, ast.Call) and call.args and getattr(call.func, "id", None) in ERRORS:
                text = _sample(call.args[0])
                if text is not None:
                    found.append((name, node.lineno, text))
    return found


def test_every_refusal_raised_has_chinese_words() -> None:
    """A new ``raise Conflict("…")`` without its phrase in the vocabulary's ``error`` domain fails here."""
    from playbooks.vocabulary import parse, translate

    messages = raised_messages()
    assert len(messages) > 60  # the scan sees the code base
    missing = [f"{path}:{line}: {text}" for path, line, text in messages if parse("error", text) is None]
    assert not missing, "\n".join(missing)
    untranslated = [text for _, _, text in messages if translate("error", text, "zh") == text]
    assert not untranslated, untranslated

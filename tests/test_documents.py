"""The seven records, rendered from ORM rows inserted directly (rendering tests, not flow tests).

The incident: a batch of X20 phones with swelling batteries, level 1 (media exposure), 50
customers; contact 20 minutes after identification (on time, limit 30 min); a spare phone;
cause found in production; a replacement rejected, then a recall approved 30 minutes late (its
approval deadline missed and escalated to the duty manager); the customer satisfied; the first
survey below the 90 % target, the second one good.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import models
from incident.records.documents import (
    RECORD_KINDS,
    IncidentNotFound,
    available,
    build_dossier,
    postmortem_due_at,
    render,
)
from incident.records.documents.render import title
from models import (
    CauseAnalysis,
    Confirmation,
    Contact,
    Deadline,
    Feedback,
    Incident,
    Measure,
    Solution,
    Survey,
    TimelineEvent,
    session_scope,
)

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
PHONE = "13812345678"
INC = "INC20261124001"
INJECTION = "{{ 7*7 }} {% for x in y %} <script>alert(1)</script>"
ROOT = "电芯材料供应商未按标准生产"
DIRECT = "质量检测环节遗漏鼓包指标"
APPROVER = "陈建国"
REJECT_REASON = "更换无法覆盖整批产品"
LANGS = ("zh", "en")
FORMATS = ("md", "html")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture()
def db(tmp_path, monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("INCIDENT_DB_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("INCIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("INCIDENT_TZ", "UTC")
    models.Base.metadata.create_all(models.get_engine())
    yield
    models.reset_engine()


def tl(event: str, minutes: float, by: str, detail: str | None = None, **data: object) -> TimelineEvent:
    return TimelineEvent(
        incident_id=INC, at=at(minutes), event=event, by=by, detail=detail, data=data or None
    )


def insert_incident(summary: str = "X20 手机电池充电时鼓包，已有媒体报道") -> None:
    resolved = 24 * 60
    with session_scope() as s:
        s.add(
            Incident(
                id=INC,
                category="product_quality",
                level=1,
                status="follow_up",
                correlation_key="product_quality|product_model=x20|batch=b2311",
                open_key="k",
                summary=summary,
                customers=50,
                level_reasons=["media or social-media exposure"],
                identified_at=T0,
                first_contact_at=at(20),
                resolved_at=at(resolved),
                closed_at=None,
                solution_round=2,
                follow_up_round=2,
            )
        )
        s.flush()
        s.add_all(
            [
                Feedback(
                    id="FB20261124001",
                    incident_id=INC,
                    kind="complaint",
                    channel="phone",
                    category="product_quality",
                    summary=f"充电时电池鼓包，请回电 {PHONE}",
                    customer_name="李雷",
                    contact=PHONE,
                    customer_key=f"c:{PHONE}",
                    order_no="JD20261101998877",
                    purchase_date="2026-11-01",
                    product_model="X20",
                    serial="SN-X20-000123",
                    batch="B2311",
                    occurred_at="2026-11-23 21:00",
                    impact="无法正常使用",
                    evidence="照片 2 张（已授权）",
                    mood="agitated",
                    customers=1,
                    media=True,
                    received_at=T0,
                ),
                Feedback(
                    id="FB20261124002",
                    incident_id=INC,
                    kind="complaint",
                    channel="social",
                    category="product_quality",
                    summary="微博：X20 电池鼓包",
                    customer_name="韩梅梅",
                    contact="hanmeimei@example.com",
                    customer_key="c:hanmeimei@example.com",
                    product_model="X20",
                    batch="B2311",
                    mood="anxious",
                    customers=49,
                    received_at=at(5),
                ),
                Contact(
                    incident_id=INC,
                    at=at(20),
                    by="王芳",
                    note=f"已致歉，客户号码 {PHONE}",
                    first=True,
                    on_time=True,
                ),
                Measure(incident_id=INC, at=at(60), by="赵强", kind="spare_product", note="备用机已发出"),
                CauseAnalysis(
                    incident_id=INC,
                    at=at(240),
                    by="刘工",
                    owner_group="technical_support",
                    root=ROOT,
                    direct=DIRECT,
                    stage="production",
                ),
                Solution(
                    incident_id=INC,
                    round=1,
                    kind="replace",
                    note="为受影响客户更换新机",
                    proposed_at=at(270),
                    proposed_by="刘工",
                    approver_role="leadership",
                    status="rejected",
                    decided_at=at(300),
                    decided_by=APPROVER,
                    decided_role="leadership",
                    reason=REJECT_REASON,
                ),
                Solution(
                    incident_id=INC,
                    round=2,
                    kind="recall",
                    note="召回 B2311 批次",
                    proposed_at=at(310),
                    proposed_by="刘工",
                    approver_role="leadership",
                    legal_reviewed=True,
                    status="approved",
                    decided_at=at(460),
                    decided_by=APPROVER,
                    decided_role="leadership",
                ),
                Confirmation(incident_id=INC, round=2, at=at(resolved), by="李雷", result="satisfied"),
                Survey(
                    incident_id=INC,
                    round=1,
                    at=at(resolved + 60),
                    by="王芳",
                    speed=3,
                    result=2,
                    attitude=3,
                    score=2.67,
                    suggestion=f"希望尽快召回，有事打 {PHONE}",
                ),
                Survey(
                    incident_id=INC,
                    round=2,
                    at=at(resolved + 180),
                    by="王芳",
                    speed=5,
                    result=5,
                    attitude=5,
                    score=5.0,
                    suggestion=None,
                ),
                Deadline(
                    incident_id=INC,
                    kind="contact",
                    due_at=at(30),
                    state="met",
                    created_at=T0,
                    met_at=at(20),
                ),
                Deadline(
                    incident_id=INC,
                    kind="approval",
                    due_at=at(390),
                    state="met",
                    created_at=at(270),
                    met_at=at(300),
                ),
                Deadline(
                    incident_id=INC,
                    kind="approval",
                    due_at=at(430),
                    state="missed",
                    created_at=at(310),
                    warned_at=at(420),
                    missed_at=at(430),
                    met_at=at(460),
                    escalated_to="duty_manager",
                ),
                Deadline(
                    incident_id=INC,
                    kind="postmortem",
                    due_at=at(resolved + 24 * 60),
                    state="pending",
                    created_at=at(resolved),
                ),
                tl("identified", 0, "phone:FB20261124001", "L3"),
                tl("level_raised", 5, "social:FB20261124002", "L3 → L1", **{"from": 3, "to": 1}),
                tl("contacted", 20, "王芳", "first contact", on_time=True),
                tl("measure_taken", 60, "赵强", "spare_product"),
                tl("cause_recorded", 240, "刘工", "production"),
                tl("solution_proposed", 270, "刘工", "replace", round=1),
                tl("solution_rejected", 300, f"{APPROVER} (leadership)", REJECT_REASON, round=1),
                tl("solution_proposed", 310, "刘工", "recall", round=2),
                tl("deadline_missed", 430, "system", "approval", kind="approval"),
                tl("escalated", 430, "system", "approval", kind="approval", to=["duty_manager"]),
                tl("solution_approved", 460, f"{APPROVER} (leadership)", "recall", round=2),
                tl("confirmed", resolved, "李雷", "satisfied", round=2),
                tl("survey_recorded", resolved + 60, "王芳", "2.67", round=1, share=0.0, target=0.9),
                tl("follow_up_round", resolved + 60, "system", "round 2", round=2),
                tl("survey_recorded", resolved + 180, "王芳", "5.0", round=2, share=1.0, target=0.9),
            ]
        )


def dossier(now_minutes: float = 24 * 60 + 200):
    with session_scope() as s:
        return build_dossier(s, INC, now=at(now_minutes))


def section(text: str, heading: str) -> str:
    """The Markdown section whose ``##`` heading contains ``heading``."""
    match = re.search(rf"^## [^\n]*{re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section {heading!r}"
    return match.group(1)


SECTIONS = {
    "zh": {
        "What": "What",
        "Why": "Why",
        "Who": "Who",
        "When": "When",
        "Where": "Where",
        "How": "How",
        "improve": "改进点",
    },
    "en": {
        "What": "What",
        "Why": "Why",
        "Who": "Who",
        "When": "When",
        "Where": "Where",
        "How": "How",
        "improve": "Improvement points",
    },
}


@pytest.mark.parametrize("lang", LANGS)
def test_postmortem_has_the_six_sections_with_the_incidents_facts(db, lang):
    insert_incident()
    text = render("postmortem", dossier(), lang=lang)
    names = SECTIONS[lang]
    what, why, who = (
        section(text, names["What"]),
        section(text, names["Why"]),
        section(text, names["Who"]),
    )
    when, where, how = (
        section(text, names["When"]),
        section(text, names["Where"]),
        section(text, names["How"]),
    )
    improve = section(text, names["improve"])

    assert "50" in what and ("产品质量类" if lang == "zh" else "Product quality") in what
    assert "X20 / B2311" in what
    assert ROOT in why and DIRECT in why
    # Who: the approver by name and role, the late approval, the contact minutes, the escalation
    role = "应急领导小组" if lang == "zh" else "Emergency leadership group"
    assert APPROVER in who and role in who
    assert "王芳" in who and "刘工" in who and "赵强" in who
    assert ("20 分钟" if lang == "zh" else "20 min") in who
    assert ("超时" if lang == "zh" else "Missed") in who  # the approval deadline row
    assert ("值班经理" if lang == "zh" else "Duty manager") in who
    # When: identified, level raised, contact, measure, cause, approved, resolved, confirmed
    for event_zh, event_en in [
        ("事件识别", "Identified"),
        ("等级上调", "Level raised"),
        ("首次联系客户", "First customer contact"),
        ("采取临时措施", "Temporary measure"),
        ("原因查明", "Cause found"),
        ("方案获批", "Solution approved"),
        ("问题解决", "Resolved"),
        ("客户确认", "Customer confirmed"),
        ("升级上报", "Escalated"),
    ]:
        assert (event_zh if lang == "zh" else event_en) in when
    assert ("生产环节" if lang == "zh" else "Production") in where
    # How: contact on time, the rejected round, the missed approval, the survey below target
    if lang == "zh":
        assert "及时联系客户：识别后 20 分钟首次联系（时限 30 分钟）" in how
        assert f"第 1 轮方案（更换）被 {APPROVER}（应急领导小组）驳回，理由：{REJECT_REASON}" in how
        assert "「方案审批」期限超时" in how and "延迟 30 分钟" in how and "值班经理" in how
        assert "第 1 轮满意度 0% 低于目标 90%" in how
        assert "满意度 100% 达到目标 90%" in how
    else:
        assert "first contact 20 min after identification (limit 30 min)" in how
        assert f"Round 1 solution (Replace) rejected by {APPROVER} (Emergency leadership group)" in how
        assert "Missed deadline \u201cSolution approval\u201d" in how and "30 min late" in how
        assert "Round 1 satisfaction 0% was below the target 90%" in how
    # Improvement points: by area, from the misses, the root cause and the suggestion
    area_names = (
        ["流程优化", "产品改进", "员工培训", "资源调整"]
        if lang == "zh"
        else ["Process", "Product", "Training", "Resources"]
    )
    for name in area_names:
        assert f"### {name}" in improve
    assert ROOT in improve and DIRECT in improve
    assert "希望尽快召回" in improve
    assert ("后备审批人" if lang == "zh" else "stand-in") in improve


@pytest.mark.parametrize("lang", LANGS)
def test_postmortem_header_has_due_time_and_generation_time(db, lang):
    insert_incident()
    d = dossier()
    assert postmortem_due_at(d) == at(24 * 60) + timedelta(hours=24)
    text = render("postmortem", d, lang=lang)
    header = text.split("\n## ", 1)[0]
    assert INC in header
    assert "2026-11-26 02:00 +00:00" in header  # resolved 11-25 02:00 + 24 h
    assert "2026-11-25 05:20 +00:00" in header  # generated
    assert ("一级（重大）" if lang == "zh" else "Level 1 (major)") in header


def test_postmortem_due_follows_the_level(db):
    insert_incident()
    with session_scope() as s:
        s.get(Incident, INC).level = 3
    d = dossier()
    assert postmortem_due_at(d) == d.resolved_at + timedelta(hours=72)


def test_dossier_derives_timings_and_never_carries_the_raw_contact(db):
    insert_incident()
    d = dossier()
    assert d.response_minutes == 20 and d.contact_timing == "on_time"
    assert [s.timing for s in d.solutions] == ["on_time", "late"]
    assert d.solutions[1].late_minutes == 30 and d.solutions[1].escalated_to == "duty_manager"
    assert [r.met for r in d.survey_rounds] == [False, True]
    assert d.satisfaction == 1.0 and d.satisfaction_met is True
    assert d.feedback[0].contact_masked == "138****5678"
    assert d.feedback[1].contact_masked == "h***@example.com"
    assert PHONE not in repr(d)
    assert {i.area for i in d.improvements} == {"process", "product", "resources", "training"}


def test_no_raw_contact_in_any_record(db):
    insert_incident(summary=f"X20 电池鼓包，客户 {PHONE} 投诉，邮件 hanmeimei@example.com")
    d = dossier()
    for kind in RECORD_KINDS:
        for lang in LANGS:
            for fmt in FORMATS:
                out = render(kind, d, lang=lang, fmt=fmt)
                assert PHONE not in out, (kind, lang, fmt)
                assert "hanmeimei@example.com" not in out, (kind, lang, fmt)
    issue = re.sub(r"\\(.)", r"\1", render("customer_issue", d))  # as read (Markdown escapes `*`)
    assert "138****5678" in issue and "h***@example.com" in issue


@pytest.mark.parametrize("lang", LANGS)
def test_injection_is_literal_and_escaped_in_markdown_and_html(db, lang):
    insert_incident(summary=INJECTION)
    d = dossier()
    assert d.summary == INJECTION
    for kind in ("postmortem", "cause_analysis", "resolution_confirmation"):
        md = render(kind, d, lang=lang, fmt="md")
        assert "<script>" not in md, kind  # escaped in Markdown too (tests/test_markdown_escaping.py)
        assert INJECTION in re.sub(r"\\(.)", r"\1", html.unescape(md)), kind  # reads as written
        page = render(kind, d, lang=lang, fmt="html")
        assert "<script>" not in page, kind
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, kind
        assert "{{ 7*7 }} {% for x in y %}" in page, kind  # literal, not evaluated, not emphasised
        assert INJECTION in html.unescape(page), kind


def test_customer_markdown_cannot_become_html_markup(db):
    insert_incident(summary="*bold* _it_ [link](javascript:alert(1)) | pipe <img src=x onerror=alert(1)>")
    page = render("postmortem", dossier(), lang="en", fmt="html")
    assert "<em>" not in page and "<strong>bold" not in page
    assert '<a href="javascript' not in page and "<img" not in page
    assert "*bold* _it_ [link](javascript:alert(1)) | pipe" in html.unescape(page)


@pytest.mark.parametrize("kind", RECORD_KINDS)
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_record_renders(db, kind, lang, fmt):
    insert_incident()
    out = render(kind, dossier(), lang=lang, fmt=fmt)
    assert INC in out
    assert title(kind, lang) in out
    if fmt == "html":
        assert out.startswith("<!DOCTYPE html>") and "<table>" in out and "@media print" in out
    else:
        assert out.startswith("# ")


def test_form_names_are_the_guides(db):
    names = [
        "事件等级判定表",
        "客户问题信息表",
        "原因分析报告",
        "解决方案审批表",
        "问题解决确认单",
        "复盘报告",
        "改进措施清单",
    ]
    assert [title(k, "zh") for k in RECORD_KINDS] == names


def test_the_forms_carry_their_facts(db):
    insert_incident()
    d = dossier()
    level = render("level_determination", d)
    assert "媒体/社交媒体曝光" in level and "一级（重大）" in level and "应急领导小组" in level
    assert "50 名客户投诉" in level
    issue = render("customer_issue", d, lang="en")
    for fact in (
        "李雷",
        "JD20261101998877",
        "2026-11-01",
        "X20",
        "SN-X20-000123",
        "B2311",
        "无法正常使用",
        "2026-11-23 21:00",
        "Agitated",
        "Phone",
        "2026-11-24 02:00 +00:00",
    ):
        assert fact in issue
    cause = render("cause_analysis", d)
    assert ROOT in cause and DIRECT in cause and "技术支持组" in cause and "生产环节" in cause
    approval = render("solution_approval", d)
    assert "## 第 1 轮" in approval and "## 第 2 轮" in approval
    assert REJECT_REASON in approval and "驳回" in approval and "批准" in approval
    assert "需要（如召回须符合《产品质量法》）；已审核" in approval
    slip = render("resolution_confirmation", d, lang="en")
    assert "Satisfied" in slip and "Recall" in slip
    measures = render("improvement_measures", d)
    assert "### " not in measures and "## 流程优化" in measures and ROOT in measures


def test_records_before_the_facts_exist(db):
    with session_scope() as s:
        s.add(
            Incident(
                id=INC,
                category="service_failure",
                level=3,
                status="response",
                correlation_key="k",
                open_key="k",
                summary="订单延迟未告知",
                customers=1,
                level_reasons=["1 customer(s) complaining (1-9), minor loss"],
                identified_at=T0,
            )
        )
    d = dossier(now_minutes=200)
    assert [available(k, d) for k in RECORD_KINDS] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert postmortem_due_at(d) is None
    assert d.contact_timing == "overdue"  # 200 min > 2 h limit, nobody called
    for kind in RECORD_KINDS:
        for lang in LANGS:
            render(kind, d, lang=lang, fmt="html")
    text = render("postmortem", d)
    assert "尚未完成原因分析" in text and "待问题解决后确定" in text
    assert "1 名客户投诉（1–9 名），损失较小" in render("level_determination", d)


def test_available_follows_the_facts(db):
    insert_incident()
    d = dossier()
    assert all(available(k, d) for k in RECORD_KINDS)
    with pytest.raises(ValueError):
        available("nope", d)


def test_bad_arguments(db):
    insert_incident()
    d = dossier()
    with pytest.raises(ValueError):
        render("nope", d)
    with pytest.raises(ValueError):
        render("postmortem", d, lang="fr")
    with pytest.raises(ValueError):
        render("postmortem", d, fmt="pdf")
    with session_scope() as s, pytest.raises(IncidentNotFound):
        build_dossier(s, "INC00000000000")


def test_times_can_be_shown_in_beijing_time(db):
    insert_incident()
    text = render("postmortem", dossier(), tz="Asia/Shanghai")
    assert "2026-11-24 10:00 +08:00" in text


def test_masking_keeps_our_ids_and_dates_readable(db):
    insert_incident(summary=f"FB20261124001 于 2026-11-23 21:00 报告，回电{PHONE}，或 +86 138 1234 5678")
    d = dossier()
    assert d.summary == "FB20261124001 于 2026-11-23 21:00 报告，回电138****5678，或 861****5678"
    assert d.timeline[0].by == "phone:FB20261124001"


def test_an_uncontacted_customer_shows_as_overdue(db):
    with session_scope() as s:
        s.add(
            Incident(
                id=INC,
                category="special_scenario",
                level=2,
                status="response",
                correlation_key="k",
                open_key="k",
                summary="暴雨导致物流停运",
                customers=12,
                level_reasons=["12 customers complaining (10-99)"],
                identified_at=T0,
            )
        )
    d = dossier(now_minutes=90)
    assert d.contact_timing == "overdue" and d.contact_late_minutes == 30
    how = section(render("postmortem", d), "How")
    assert "至今仍未联系客户，已超时 30 分钟（时限 1 小时）" in how
    assert "12 名客户投诉（10–99 名）" in render("level_determination", d)

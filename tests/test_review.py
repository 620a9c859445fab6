"""The review loop on the service layer and a real database: the post-mortem meeting, its deadline and
sign-off, improvement actions reminded and escalated by the real deadline watcher, and recurrence.

Incidents are made by intake and moved by ``incident.response.service`` with an injected clock (as in
test_deadlines.py); ``watch_deadlines(now=…)`` is a real Prefect flow run; notices go to the local SMTP
server and webhook of the ``told`` fixture.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from flows.notices import context
from incident.actions import service as improvement
from incident.errors import BadInput, Conflict, Forbidden
from incident.incidents import service as incidents
from incident.meetings import service as meetings
from incident.metrics import service as metrics
from incident.people import service as people
from incident.people.service import SERVICE, Actor
from incident.records.postmortem import render_postmortem
from incident.response import service as actions
from models import Incident, TimelineEvent, session_scope
from notifiers.render import render
from tests import test_deadlines as harness
from tests.test_deadlines import T0, Receivers, deadline_rows, report, resolve, tick, watcher_notices

smtp, told = harness.smtp, harness.told  # the fixtures: every role on a local SMTP server or webhook

LEAD_L3 = Actor("刘经理", ("cs_manager",))
QC = Actor("王芳", ("quality_control",))
AGENT = Actor("小李", ("customer_service",))


def _resolved_l3(batch: str, at: timedelta = timedelta(hours=1)) -> str:
    inc = report(T0, batch=batch).incident_id
    assert inc
    actions.contact(inc, actions.ContactIn(by="王芳"), now=T0 + timedelta(minutes=5))
    resolve(inc, T0 + at, "dept_head")
    return inc


def _close(incident_id: str) -> None:
    """What the flow's ``close`` does to the row (the flow itself is tested in test_incident_flows)."""
    with session_scope() as s:
        inc = s.get_one(Incident, incident_id)
        inc.status, inc.closed_at, inc.open_key = "closed", T0 + timedelta(hours=2), None


def _events(incident_id: str, event: str) -> list[TimelineEvent]:
    with session_scope() as s:
        stmt = select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.event == event
        )
        return list(s.scalars(stmt))


def test_postmortem_is_a_draft_until_the_meeting_then_final_then_signed_by_the_lead(any_db: str) -> None:
    people.add(people.PersonIn(name="王芳", roles=["quality_control"]))
    inc = _resolved_l3("B-M1")
    _close(inc)
    [due] = deadline_rows(inc, "postmortem")
    assert due.state == "pending"  # closing no longer marks the post-mortem done
    draft, _ = render_postmortem(inc, "zh", "md")
    assert "草稿（待召开复盘会议）" in draft and "复盘会议尚未召开" in draft
    assert incidents.show(inc)["postmortem"] == "draft"

    held = T0 + timedelta(hours=20)
    body = meetings.MeetingIn(
        at=held,
        participants=["王芳", "供应商工程师 Zhang"],
        findings=["隔膜供应商来料检验缺失"],
        went_well=["客服 5 分钟内联系客户"],
        went_badly=["原因分析等待供应商回复过久"],
        decisions=["来料检验纳入每批次"],
        actions=[improvement.ActionIn(kind="process", owner="王芳", due="14d", text="来料检验流程")],
    )
    with pytest.raises(Forbidden):  # customer service may not record the meeting
        meetings.record(inc, body, AGENT, now=held + timedelta(minutes=5))
    assert _events(inc, "action_refused")[-1].data["action"] == "meeting"
    answer = meetings.record(inc, body, QC, now=held + timedelta(minutes=5))
    assert answer["on_time"] is True and answer["postmortem"] == "final"
    assert answer["participants"] == [
        {"name": "王芳", "roles": ["quality_control"], "in_directory": True},
        {"name": "供应商工程师 Zhang", "roles": [], "in_directory": False},
    ]
    [row] = answer["actions"]
    assert row["due_at"] == (held + timedelta(days=14)).isoformat() and row["status"] == "open"
    [due] = deadline_rows(inc, "postmortem")
    assert due.state == "met" and due.met_at == held
    with pytest.raises(Conflict):
        meetings.record(inc, body, QC, now=held + timedelta(minutes=6))

    final, _ = render_postmortem(inc, "zh", "md")
    assert "定稿（待牵头人签发）" in final
    for said in ("隔膜供应商来料检验缺失", "客服 5 分钟内联系客户（复盘会议）", "来料检验纳入每批次",
                 "非名录人员", row["id"]):  # fmt: skip
        assert said in final, said
    assert "根本原因" in final  # the generated facts stay next to the people's findings
    english, _ = render_postmortem(inc, "en", "md")
    assert "Final (awaiting the lead's sign-off)" in english and "not in the directory" in english

    with pytest.raises(Forbidden, match="needs cs_manager"):
        meetings.signoff(inc, meetings.SignoffIn(), QC, now=held + timedelta(hours=1))
    with pytest.raises(Forbidden):
        meetings.signoff(inc, meetings.SignoffIn(), SERVICE, now=held + timedelta(hours=1))
    signed = meetings.signoff(inc, meetings.SignoffIn(note="ok"), LEAD_L3, now=held + timedelta(hours=1))
    assert signed["signed_by"] == "刘经理" and signed["role"] == "cs_manager"
    assert incidents.show(inc)["meeting"]["signed_by"] == "刘经理"
    assert "已签发" in render_postmortem(inc, "zh", "md")[0]
    with pytest.raises(Conflict):
        meetings.signoff(inc, meetings.SignoffIn(), LEAD_L3, now=held + timedelta(hours=2))


def test_the_meeting_follows_the_resolution(db: str) -> None:
    inc = report(T0, batch="B-M2").incident_id
    assert inc
    body = meetings.MeetingIn(at=T0 + timedelta(hours=1), participants=["王芳"])
    with pytest.raises(Conflict, match="follows the resolution"):
        meetings.record(inc, body, QC, now=T0 + timedelta(hours=2))
    with pytest.raises(BadInput, match="future"):
        meetings.record(inc, body, QC, now=T0)
    with pytest.raises(ValidationError):
        meetings.MeetingIn(at=T0, participants=[])


def test_overdue_meeting_is_escalated_after_close_then_met_late(db: str, told: Receivers) -> None:
    inc = _resolved_l3("B-M3")  # L3: 72 h after resolution, warned 30 min ahead, escalated to cs_director
    _close(inc)
    due = T0 + timedelta(hours=1 + 72)
    assert tick(due - timedelta(minutes=29)) == {"warned": 1, "missed": 0}
    assert tick(due + timedelta(minutes=1)) == {"warned": 0, "missed": 1}
    assert told.count(inc, "[Overdue]") == {"cs_director": 1, "cs_manager": 1}
    late = meetings.record(inc, meetings.MeetingIn(at=due + timedelta(hours=3), participants=["王芳"]), QC,
                           now=due + timedelta(hours=4))  # fmt: skip
    assert late["on_time"] is False
    [row] = deadline_rows(inc, "postmortem")
    assert row.state == "missed" and row.met_at == due + timedelta(hours=3)
    assert "按时" not in render_postmortem(inc, "zh", "md")[0].split("复盘时效")[1].split("\n")[0]


def test_improvement_actions_are_reminded_escalated_and_closed_only_with_evidence(
    db: str, told: Receivers
) -> None:
    own = f"json://127.0.0.1:{told.hook.port}/xiaoli"  # 小李's own channel: the owner is told directly
    people.add(people.PersonIn(name="小李", roles=["customer_service"], notify=[own]))
    inc = _resolved_l3("B-A1")
    _close(inc)
    held = T0 + timedelta(hours=5)
    items = [
        improvement.ActionIn(kind="training", owner="小李", due="3d", text="培训客服主动告知延误"),
        improvement.ActionIn(kind="product", owner="王芳", due="2026-12-31", text="更换隔膜供应商"),
    ]
    meetings.record(inc, meetings.MeetingIn(at=held, participants=["王芳"], actions=items), QC, now=held)
    listed = improvement.listing(inc, now=held)
    assert [(a["kind"], a["owner"], a["status"]) for a in listed] == [
        ("training", "小李", "open"),
        ("product", "王芳", "open"),
    ]
    assert listed[1]["due_at"] == "2026-12-31T23:59:00+00:00"  # a bare date: the end of that day (UTC here)
    first = listed[0]["id"]
    due = held + timedelta(days=3)

    # L3: reminded action_remind_before (1 d) ahead, escalated to cs_director once overdue.
    assert tick(due - timedelta(days=1, minutes=1)) == {"warned": 0, "missed": 0}
    assert tick(due - timedelta(hours=23)) == {"warned": 1, "missed": 0}
    assert tick(due + timedelta(minutes=1)) == {"warned": 0, "missed": 1}
    assert told.count(inc, "[Improvement action]") == {"cs_manager": 1, "quality_control": 1, "xiaoli": 1}
    assert told.count(inc, "[Overdue]") == {
        "cs_director": 1,
        "cs_manager": 1,
        "quality_control": 1,
        "xiaoli": 1,
    }
    [overdue] = [m for m in told.all(inc) if m.role == "cs_director"]
    assert first in overdue.title and "培训客服主动告知延误" in overdue.text and "小李" in overdue.text
    assert {("action_due", "@小李"), ("action_overdue", "cs_director"), ("action_overdue", "@小李")} <= set(
        watcher_notices(inc)
    )
    later = due + timedelta(hours=1)
    assert improvement.counts(now=later) == {"open": 2, "overdue": 1, "done": 0}
    assert metrics.summary()["actions"]["overdue"] == 1

    with pytest.raises(ValidationError):
        improvement.CloseIn(evidence="")
    with pytest.raises(Forbidden):
        improvement.close(first, improvement.CloseIn(evidence="done"), Actor("路人", ("pr",)), now=later)
    with pytest.raises(Forbidden):  # the service token is not answerable for "it is done"
        improvement.close(first, improvement.CloseIn(evidence="done"), SERVICE, now=later)
    done = improvement.close(first, improvement.CloseIn(evidence="培训签到表 12 人"), AGENT, now=later)
    assert done["status"] == "done" and done["evidence"] == "培训签到表 12 人" and done["closed_by"] == "小李"
    with pytest.raises(Conflict):
        improvement.close(first, improvement.CloseIn(evidence="again"), AGENT, now=later)
    assert improvement.counts(now=later) == {"open": 1, "overdue": 0, "done": 1}
    assert "培训签到表 12 人" in render_postmortem(inc, "zh", "md")[0]
    with pytest.raises(BadInput, match="due"):
        improvement.add(inc, improvement.ActionsIn(actions=[improvement.ActionIn(
            kind="process", owner="王芳", due="soon", text="x")]), QC, now=later)  # fmt: skip


def test_a_recurrence_is_said_at_intake_in_show_the_notice_and_the_rate(any_db: str) -> None:
    first = _resolved_l3("B-R1")
    meetings.record(
        first,
        meetings.MeetingIn(
            at=T0 + timedelta(hours=2),
            participants=["王芳"],
            actions=[improvement.ActionIn(kind="product", owner="王芳", due="30d", text="更换供应商")],
        ),
        QC,
        now=T0 + timedelta(hours=2),
    )
    open_again = report(T0 + timedelta(hours=1, minutes=30), customer="赵六", batch="B-R1")
    assert open_again.recurrence_of is None and open_again.incident_id == first  # still open: it joins
    _close(first)

    again = report(T0 + timedelta(days=10), customer="钱七", batch="B-R1")
    assert again.opened and again.incident_id != first
    assert again.recurrence_of == first and again.as_json()["recurrence_of"] == first
    shown = incidents.show(again.incident_id or "")
    assert shown["recurrence_of"] == first
    assert [a["text"] for a in shown["recurrence"]["actions"]] == ["更换供应商"]
    assert [e.detail for e in _events(again.incident_id or "", "recurrence_found")] == [first]
    for lang, words in (("zh", f"重复发生：与已结案事件 {first}"), ("en", f"closed incident {first}")):
        notice = render("incident_opened", context(again.incident_id or "", lang), lang)
        assert words in notice.text, notice.text

    other = report(T0 + timedelta(days=10), customer="孙八", batch="B-R2")
    assert other.recurrence_of is None
    # The same root cause as a closed incident makes another problem a recurrence once its cause is known.
    cause = actions.CauseIn(root="Separator defect!", direct="heat", stage="production")
    answer = actions.cause(other.incident_id or "", cause, now=T0 + timedelta(days=10, hours=1))
    assert answer["recurrence_of"] == first
    assert incidents.show(other.incident_id or "")["recurrence_of"] == first

    rate = metrics.summary()
    assert rate["recurrence_rate"] == round(2 / 3, 4)  # both later incidents repeat the first
    assert {r["incident_id"] for r in rate["recurrences"]} == {again.incident_id, other.incident_id}

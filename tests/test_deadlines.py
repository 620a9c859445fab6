"""Deadlines through the real watcher flow with an injected clock, told through real channels.

Incidents are made by ``intake.record(body, now=…)`` and moved on by ``incident.response.service`` with
``now=…``; ``watch_deadlines(now=…)`` is a real Prefect flow run on the session's harness. Notices go
through apprise to a local SMTP server (aiosmtpd) and a local webhook (pytest-httpserver), and the
assertions read what those servers received. Time is moved, never slept.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from sqlalchemy import select

import notifiers
from flows.deadlines import due_work, watch_deadlines
from flows.feedback import handle_feedback
from incident.errors import Forbidden
from incident.feedback import service as intake
from incident.response import service as actions
from models import Deadline, Incident, TimelineEvent, session_scope
from notifiers import roster as roster_mod
from tests.conftest import ROLES
from tests.test_notifiers import Mailbox, free_port, parts

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
PHONE = "13812345678"
SMTP_ROLES = ("leadership", "duty_manager", "cs_director", "pr")  # the rest get a JSON webhook
L1_ROLES = {"leadership", "customer_service", "technical_support", "quality_control", "pr", "legal"}


@dataclass(frozen=True)
class Received:
    role: str
    title: str
    text: str
    html: str = ""


class Receivers:
    """Both local servers, read back as one list of messages with the role each was sent to."""

    def __init__(self, box: Mailbox, hook: HTTPServer) -> None:
        self.box, self.hook = box, hook

    def all(self, incident_id: str | None = None) -> list[Received]:
        got = []
        for rcpts, message in self.box.messages:
            text, html = parts(message)
            for rcpt in rcpts:
                got.append(Received(rcpt.split("@")[0], str(message["Subject"]), text, html))
        for request, _ in self.hook.log:
            body = request.get_json(silent=True) or {}
            got.append(Received(request.path.strip("/"), body.get("title", ""), body.get("message", "")))
        return [m for m in got if incident_id is None or incident_id in m.title + m.text]

    def count(self, incident_id: str, prefix: str) -> Counter[str]:
        """Messages per role whose title starts with ``prefix`` (e.g. "[Escalation]")."""
        return Counter(m.role for m in self.all(incident_id) if m.title.startswith(prefix))


def roster_yaml(smtp_port: int, hook_port: int, extra: str = "") -> str:
    lines = ["urls:"]
    for role in ROLES:
        if role in SMTP_ROLES:
            url = f"mailto://127.0.0.1:{smtp_port}?from=bot@example.com&to={role}@example.com"
        else:
            url = f"json://127.0.0.1:{hook_port}/{role}"
        lines += [f'  - "{url}":', f"      - tag: {role}"]
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def told(
    prefect_api: str,
    smtp: tuple[Mailbox, int],
    httpserver: HTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Receivers:
    """Every role has a real channel (SMTP or webhook); notices in English for readable titles."""
    box, port = smtp
    httpserver.expect_request(re.compile(r"^/.*$"), method="POST").respond_with_data("ok")
    config = tmp_path / "roster.yaml"
    config.write_text(roster_yaml(port, httpserver.port), encoding="utf-8")
    monkeypatch.setenv("INCIDENT_NOTIFY_CONFIG", str(config))
    monkeypatch.setenv("INCIDENT_LANG", "en")
    monkeypatch.setenv("INCIDENT_NOTIFY_BACKOFF", "0.01")
    return Receivers(box, httpserver)


def at(**delta: int) -> datetime:
    """T0 plus a duration: ``at(hours=2, minutes=1)``."""
    return T0 + timedelta(**delta)


def report(now: datetime, customer: str = "张伟", batch: str = "B-1", **signals: Any) -> intake.IntakeResult:
    """One complaint about phone model P30 of ``batch``; distinct ``customer`` names count apart."""
    body = intake.FeedbackIn(
        category="product_quality",
        summary=f"phone battery swelling, call me on {PHONE}",
        customer=customer,
        product_model="P30",
        batch=batch,
        **signals,
    )
    return intake.record(body, now=now)


def tick(now: datetime) -> dict[str, int]:
    """One watcher pass at ``now``: a real ``watch_deadlines`` flow run (its warnings and misses; the
    chain steps it sent, ``escalated``, are tests/test_chains.py's)."""
    counts = asyncio.run(watch_deadlines(now=now))
    return {"warned": counts["warned"], "missed": counts["missed"]}


def events(incident_id: str, event: str) -> list[TimelineEvent]:
    with session_scope() as s:
        stmt = select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
        return list(s.scalars(stmt.where(TimelineEvent.event == event)))


def deadline_rows(incident_id: str, kind: str) -> list[Deadline]:
    with session_scope() as s:
        stmt = select(Deadline).where(Deadline.incident_id == incident_id, Deadline.kind == kind)
        return list(s.scalars(stmt.order_by(Deadline.id)))


def watcher_notices(incident_id: str) -> list[tuple[str, str]]:
    """(notice, role) of every delivery logged for the incident, in order."""
    return [(d["notice"], d["role"]) for d in notifiers.deliveries(incident_id)]


def test_missed_l3_contact_is_escalated_to_the_cs_director_first(any_db: str, told: Receivers) -> None:
    """The chain's first step; the next one (30 min later) and the repeats: tests/test_chains.py."""
    opened = report(T0)
    inc = opened.incident_id
    assert inc and opened.level == 3
    [contact] = deadline_rows(inc, "contact")
    assert contact.due_at == T0 + timedelta(hours=2)  # L3: 2 h; warn_before 30 m

    ticks = [timedelta(minutes=m) for m in (10, 91, 100, 119, 121, 135, 149)]
    assert [tick(T0 + t) for t in ticks] == [
        {"warned": 0, "missed": 0},
        {"warned": 1, "missed": 0},  # 29 min before: the one warning
        {"warned": 0, "missed": 0},
        {"warned": 0, "missed": 0},
        {"warned": 0, "missed": 1},  # 1 min late: the one escalation
        {"warned": 0, "missed": 0},
        {"warned": 0, "missed": 0},
    ]

    assert told.count(inc, "[Due soon]") == {"cs_manager": 1, "customer_service": 1}
    assert told.count(inc, "[Escalation]") == {"cs_director": 1, "cs_manager": 1, "customer_service": 1}
    [escalation] = [m for m in told.all(inc) if m.role == "cs_director"]
    assert "first customer contact deadline" in escalation.title
    assert "escalated to you (from the customer-service manager)" in escalation.text
    assert "2026-11-24 04:00 +00:00" in escalation.text and "1 min overdue" in escalation.text
    assert all(PHONE not in m.text + m.html for m in told.all())

    [missed] = events(inc, "deadline_missed")
    [escalated] = events(inc, "escalated")
    assert missed.at == escalated.at == T0 + timedelta(minutes=121) and missed.detail == "contact"
    assert escalated.detail == "cs_director" and len(events(inc, "deadline_warned")) == 1
    [row] = deadline_rows(inc, "contact")
    assert (row.state, row.escalated_to) == ("missed", "cs_director")
    assert (row.warned_at, row.missed_at) == (at(minutes=91), at(minutes=121))

    late = actions.contact(inc, actions.ContactIn(by="王芳"), now=T0 + timedelta(hours=3))
    assert late["on_time"] is False
    [row] = deadline_rows(inc, "contact")
    assert (row.state, row.met_at) == ("missed", T0 + timedelta(hours=3))
    assert len(events(inc, "deadline_missed")) == 1  # done late: still one miss on the timeline
    assert not due_work(T0 + timedelta(hours=4))


@pytest.mark.parametrize(
    ("signals", "window", "escalate_to", "lead"),
    [
        ({"customers": 120, "media": True}, timedelta(minutes=30), "duty_manager", "leadership"),
        ({"compensation_demand": True}, timedelta(hours=1), "leadership", "cs_director"),
    ],
    ids=["L1-to-duty-manager", "L2-to-leadership"],
)
def test_missed_contact_escalates_per_level(
    db: str, told: Receivers, signals: dict[str, Any], window: timedelta, escalate_to: str, lead: str
) -> None:
    inc = report(T0, **signals).incident_id
    assert inc
    [contact] = deadline_rows(inc, "contact")
    assert contact.due_at == T0 + window

    assert tick(T0 + window - timedelta(minutes=9)) == {"warned": 1, "missed": 0}
    assert tick(T0 + window + timedelta(seconds=1)) == {"warned": 0, "missed": 1}
    assert tick(T0 + window + timedelta(minutes=5)) == {"warned": 0, "missed": 0}

    assert told.count(inc, "[Escalation]")[escalate_to] == 1
    assert told.count(inc, "[Due soon]") == {lead: 1, "customer_service": 1}
    assert [e.detail for e in events(inc, "escalated")] == [escalate_to]
    assert deadline_rows(inc, "contact")[0].state == "missed"


def test_progress_updates_are_due_every_interval_until_resolved(db: str, told: Receivers) -> None:
    """L1: a progress update every 4 h after first contact; a missed one escalates, the next follows."""
    inc = report(T0, customers=120).incident_id
    assert inc
    actions.contact(inc, actions.ContactIn(by="王芳"), now=T0 + timedelta(minutes=10))
    [progress] = deadline_rows(inc, "progress")
    assert progress.due_at == T0 + timedelta(hours=4, minutes=10)

    assert tick(T0 + timedelta(hours=4, minutes=1)) == {"warned": 1, "missed": 0}
    assert tick(T0 + timedelta(hours=4, minutes=11)) == {"warned": 0, "missed": 1}
    assert told.count(inc, "[Progress update]") == {"leadership": 1, "customer_service": 1}
    [escalation] = [m for m in told.all(inc) if m.role == "duty_manager"]
    assert escalation.title.startswith("[Escalation]") and "progress update deadline" in escalation.title

    first, following = deadline_rows(inc, "progress")
    assert first.state == "missed" and following.state == "pending"
    assert following.due_at == T0 + timedelta(hours=8, minutes=10)  # the cadence goes on

    update = actions.contact(inc, actions.ContactIn(by="王芳"), now=T0 + timedelta(hours=5))
    assert update["on_time"] is False and update["first"] is False  # the 4 h update came late
    rows = deadline_rows(inc, "progress")
    assert [r.state for r in rows] == ["missed", "met", "pending"]
    assert rows[0].met_at == T0 + timedelta(hours=5)
    assert rows[2].due_at == T0 + timedelta(hours=9)

    actions.measure(inc, actions.MeasureIn(kind="spare_product"), now=T0 + timedelta(hours=5))
    resolve(inc, T0 + timedelta(hours=6), approver="leadership")
    assert [r.state for r in deadline_rows(inc, "progress")] == ["missed", "met", "cancelled"]
    assert tick(T0 + timedelta(hours=10)) == {"warned": 0, "missed": 0}
    assert len(events(inc, "escalated")) == 1


def test_l2_progress_updates_are_due_every_24_hours(db: str) -> None:
    inc = report(T0, compensation_demand=True).incident_id
    assert inc
    actions.contact(inc, actions.ContactIn(by="赵敏"), now=T0 + timedelta(minutes=20))
    [progress] = deadline_rows(inc, "progress")
    assert progress.due_at == T0 + timedelta(hours=24, minutes=20)


def resolve(incident_id: str, at: datetime, approver: str) -> None:
    """Cause, proposal, approval and a satisfied customer, in that order, at ``at``."""
    cause = actions.CauseIn(root="separator defect", direct="cells overheat", stage="production")
    actions.cause(incident_id, cause, now=at)
    actions.propose(incident_id, actions.ProposeIn(solution="repair"), now=at)
    actions.approve(incident_id, actions.ApproveIn(by="陈总", role=approver), now=at)
    actions.confirm(incident_id, actions.ConfirmIn(result="satisfied"), now=at)


def test_approval_deadline_warns_the_approver_and_escalates(db: str, told: Receivers) -> None:
    inc = report(T0, compensation_demand=True).incident_id  # L2: approval within 4 h, warn 15 min
    assert inc
    actions.contact(inc, actions.ContactIn(by="赵敏"), now=T0 + timedelta(minutes=20))
    cause = actions.CauseIn(root="no delay notices", direct="backlog", stage="service")
    actions.cause(inc, cause, now=T0 + timedelta(minutes=30))
    actions.propose(inc, actions.ProposeIn(solution="replace"), now=T0 + timedelta(hours=1))
    [approval] = deadline_rows(inc, "approval")
    assert approval.due_at == T0 + timedelta(hours=5)

    assert tick(T0 + timedelta(hours=4, minutes=46)) == {"warned": 1, "missed": 0}
    assert tick(T0 + timedelta(hours=5, minutes=1)) == {"warned": 0, "missed": 1}

    assert told.count(inc, "[Due soon]") == {"cs_director": 1, "dept_head": 1}
    assert told.count(inc, "[Escalation]") == {"leadership": 1, "cs_director": 1, "dept_head": 1}
    [warning] = [m for m in told.all(inc) if m.role == "dept_head" and m.title.startswith("[Due soon]")]
    assert "solution approval deadline" in warning.title and '"Replace"' in warning.text
    late = actions.approve(inc, actions.ApproveIn(by="周", role="dept_head"), now=T0 + timedelta(hours=6))
    assert late["approved"] is True
    [row] = deadline_rows(inc, "approval")
    assert (row.state, row.met_at) == ("missed", T0 + timedelta(hours=6))


@pytest.mark.parametrize(
    ("signals", "approver", "due", "warn", "escalate_to", "lead"),
    [
        ({"customers": 120}, "leadership", 24, 10, "duty_manager", "leadership"),
        ({"compensation_demand": True}, "dept_head", 48, 15, "leadership", "cs_director"),
        ({}, "dept_head", 72, 30, "cs_director", "cs_manager"),
    ],
    ids=["L1-24h", "L2-48h", "L3-72h"],
)
def test_postmortem_due_warning_then_overdue_escalation(
    db: str,
    told: Receivers,
    signals: dict[str, Any],
    approver: str,
    due: int,
    warn: int,
    escalate_to: str,
    lead: str,
) -> None:
    inc = report(T0, **signals).incident_id
    assert inc
    actions.contact(inc, actions.ContactIn(by="王芳"), now=T0 + timedelta(minutes=5))
    resolved = T0 + timedelta(hours=1)
    resolve(inc, resolved, approver)
    [postmortem] = deadline_rows(inc, "postmortem")
    assert postmortem.due_at == resolved + timedelta(hours=due)

    deadline = resolved + timedelta(hours=due)
    assert tick(deadline - timedelta(minutes=warn + 1)) == {"warned": 0, "missed": 0}
    assert tick(deadline - timedelta(minutes=warn - 1)) == {"warned": 1, "missed": 0}
    assert tick(deadline + timedelta(minutes=1)) == {"warned": 0, "missed": 1}
    assert tick(deadline + timedelta(minutes=14)) == {"warned": 0, "missed": 0}  # before the chain's step 2

    by_watcher = [n for n in watcher_notices(inc) if n[0].startswith(("postmortem", "deadline"))]
    assert {n for n, _ in by_watcher} == {"postmortem_due", "postmortem_overdue"}
    assert Counter(r for n, r in by_watcher if n == "postmortem_due") == {lead: 1}
    assert Counter(r for n, r in by_watcher if n == "postmortem_overdue") == {escalate_to: 1, lead: 1}
    assert told.count(inc, "[Post-mortem]") == {lead: 1}
    assert told.count(inc, "[Overdue]") == {escalate_to: 1, lead: 1}
    [overdue] = [m for m in told.all(inc) if m.role == escalate_to]
    assert "post-mortem report overdue" in overdue.title and "escalated to you" in overdue.text
    assert [e.detail for e in events(inc, "escalated")] == [escalate_to]
    assert [e.detail for e in events(inc, "deadline_missed")] == ["postmortem"]
    assert deadline_rows(inc, "postmortem")[0].state == "missed"


def test_a_raise_that_does_not_shorten_the_contact_deadline_does_not_warn_again(
    db: str, told: Receivers
) -> None:
    inc = report(T0, customer="c0").incident_id  # L3: contact due at 2 h, warned from 1 h 30 m
    assert inc
    assert tick(at(minutes=91)) == {"warned": 1, "missed": 0}
    for n in range(1, 10):  # the 10th distinct customer raises it to L2 at 1 h 35 m: now + 1 h is later
        raised = report(at(minutes=95), customer=f"c{n}")
    assert (raised.level, raised.raised_from, raised.contact_deadline) == (2, 3, at(hours=2))
    [contact] = deadline_rows(inc, "contact")
    assert (contact.state, contact.due_at) == ("warned", at(hours=2))
    assert tick(at(minutes=100)) == {"warned": 0, "missed": 0}
    assert tick(at(minutes=121)) == {"warned": 0, "missed": 1}
    assert told.count(inc, "[Due soon]") == {"cs_manager": 1, "customer_service": 1}
    assert told.count(inc, "[Escalation]")["leadership"] == 1  # escalated by the L2 rules now


def test_a_raise_shortens_the_contact_deadline_and_warns_again(db: str, told: Receivers) -> None:
    """f0's contact (2 h at L3) shortens to 50 min when f1 raises it to L1; f1 is owed their own
    contact from when they joined, also due at 50 min: two warnings and two misses, one notice each."""
    inc = report(T0, customer="f0", batch="B-4").incident_id  # L3: contact due at 2 h
    assert inc
    raised = report(at(minutes=20), customer="f1", batch="B-4", media=True)
    assert (raised.level, raised.contact_deadline) == (1, at(minutes=50))  # min(2 h, 20 m + 30 m)
    [own] = deadline_rows(inc, "customer_contact")
    assert (own.subject, own.due_at) == (raised.feedback_id, at(minutes=50))  # 20 m + L1's 30 m
    assert tick(at(minutes=41)) == {"warned": 2, "missed": 0}  # L1 warns 10 min ahead, both customers
    assert tick(at(minutes=51)) == {"warned": 0, "missed": 2}
    assert told.count(inc, "[Due soon]") == {"leadership": 1, "customer_service": 1}  # in one notice
    assert told.count(inc, "[Escalation]") == {"duty_manager": 1, "leadership": 1, "customer_service": 1}
    [warning] = [m for m in told.all(inc) if m.role == "leadership" and m.title.startswith("[Due soon]")]
    assert "first customer contact deadline (2 customers)" in warning.title
    [escalation] = [m for m in told.all(inc) if m.role == "duty_manager"]
    assert "First contacts: contacted 0/2, 2 overdue" in escalation.text  # the second joined silently
    assert len(events(inc, "escalated")) == 1  # one chain for both


def test_a_raise_shortens_progress_and_approval_and_hands_approval_to_the_new_approver(
    db: str, told: Receivers
) -> None:
    inc = report(T0, customer="d0", batch="B-2").incident_id  # L3
    assert inc
    actions.contact(inc, actions.ContactIn(by="王芳"), now=at(minutes=10))
    actions.cause(inc, actions.CauseIn(root="r", direct="d", stage="production"), now=at(hours=1))
    actions.propose(inc, actions.ProposeIn(solution="repair"), now=at(hours=1))
    assert deadline_rows(inc, "progress")[0].due_at == at(hours=24, minutes=10)
    assert deadline_rows(inc, "approval")[0].due_at == at(hours=9)

    joined = report(at(hours=2), customer="d1", batch="B-2", injury=True)
    assert joined.level == 1
    assert deadline_rows(inc, "progress")[0].due_at == at(hours=6)  # now + 4 h
    assert deadline_rows(inc, "approval")[0].due_at == at(hours=4)  # now + 2 h
    # d1 is owed a first contact of their own within L1's 30 min; reaching only them is no progress
    # update, so the cadence still counts from the last one (the raise's 6 h stays)
    d1 = actions.contact(inc, actions.ContactIn(by="王芳", customers=["d1"]), now=at(hours=2, minutes=20))
    assert (d1["first"], d1["progress_update"], d1["customers"]) == (False, False, [joined.feedback_id])
    assert deadline_rows(inc, "progress")[0].due_at == at(hours=6)
    assert tick(at(hours=3, minutes=51)) == {"warned": 1, "missed": 0}
    assert told.count(inc, "[Due soon]") == {"leadership": 1}  # L1: lead and approver
    [warning] = told.all(inc)
    assert "Repair" in warning.text and "solution approval deadline" in warning.title
    with pytest.raises(Forbidden, match="leadership"):
        actions.approve(inc, actions.ApproveIn(by="周", role="dept_head"), now=at(hours=3, minutes=55))
    actions.approve(inc, actions.ApproveIn(by="陈总", role="leadership"), now=at(hours=3, minutes=56))
    assert deadline_rows(inc, "approval")[0].state == "met"


def test_a_raise_after_a_missed_contact_does_not_miss_it_again(db: str, told: Receivers) -> None:
    inc = report(T0, customer="e0", batch="B-3").incident_id
    assert inc
    assert tick(T0 + timedelta(hours=2, minutes=1)) == {"warned": 0, "missed": 1}
    raised = report(T0 + timedelta(hours=3), customer="e1", batch="B-3", media=True)
    assert raised.level == 1 and raised.contact_deadline == T0 + timedelta(hours=2)
    assert len(deadline_rows(inc, "contact")) == 1
    assert asyncio.run(handle_feedback(raised.feedback_id)) == inc  # the real flow tells the L1 roles
    [raised_notice] = [m for m in told.all(inc) if m.role == "leadership"]
    assert raised_notice.title.startswith("[Escalated]") and "from L3 to L1" in raised_notice.title
    assert "First customer contact deadline: 2026-11-24 04:00 +00:00" in raised_notice.text
    assert "overdue" in raised_notice.text  # the new level's roles learn the contact is late
    assert tick(T0 + timedelta(hours=3, minutes=1)) == {"warned": 0, "missed": 0}
    assert len(events(inc, "deadline_missed")) == 1
    # the chain goes on at the new level (L1: leadership 15 min after the miss), the miss is not repeated
    assert [e.detail for e in events(inc, "escalated")] == ["cs_director", "leadership"]


def test_closed_incidents_are_not_watched(db: str) -> None:
    inc = report(T0).incident_id
    assert due_work(T0 + timedelta(hours=3))
    with session_scope() as s:
        s.get_one(Incident, inc).status = "closed"
    assert not due_work(T0 + timedelta(hours=3))


def readme_roster() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Notification rosters", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_readme_roster_example_loads_with_roles_as_tags(tmp_path: Path) -> None:
    config = tmp_path / "roster.yaml"
    config.write_text(readme_roster(), encoding="utf-8")
    roster = roster_mod.load(config)
    schemes = {channel.redacted.split("://")[0] for channel in roster.channels}
    assert schemes == {"mailtos", "mailto", "jsons", "slack", "wecombot", "dingtalk", "feishu", "lark"}
    covered = set().union(*(channel.roles for channel in roster.channels))
    assert covered <= set(ROLES) and {"leadership", "duty_manager", "cs_director", "pr", "legal"} <= covered
    for channel in roster.channels:
        for secret in ("APP_PASSWORD", "X-Token=SECRET", "SEC0123456789abcdef", "0f8c7e1a-2b3d"):
            assert secret not in channel.redacted, channel.redacted


@pytest.mark.parametrize("kind", notifiers.NOTICE_KINDS)
def test_every_notice_carries_the_dingtalk_keyword(kind: str) -> None:
    """The README tells DingTalk keyword users to use 事件编号 / "Incident:"; every notice must have it."""
    context = {"incident_id": "INC20261124009", "level": 3, "category": "service_failure"}
    assert "事件编号" in notifiers.render(kind, context, "zh").text
    assert "Incident:" in notifiers.render(kind, context, "en").text

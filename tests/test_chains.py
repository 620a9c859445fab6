"""Escalation chains, acknowledgement, the summary notice, alarms' assessment, legal review at proposal.

On an injected clock through the real watcher flow (``watch_deadlines(now=…)`` on the session's Prefect
harness), told through real channels (a local SMTP server and a local webhook, ``tests/test_deadlines``'s
``told``). The L3 chain of the shipped playbooks: cs_director at the miss, leadership 30 min later,
leadership again every hour until someone runs ``incident ack``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

import models
import notifiers
import playbooks
from flows.deadlines import due_work, watch_deadlines
from incident.deadlines import chain
from incident.deadlines import service as deadlines
from incident.errors import BadInput, Conflict, Forbidden
from incident.feedback import service as intake
from incident.people.service import SERVICE, Actor
from incident.response import service as actions
from models import Deadline, Solution, session_scope
from playbooks import PlaybookError, load_file
from tests import test_deadlines
from tests.conftest import Service
from tests.test_deadlines import T0, Receivers, deadline_rows, events, report
from tests.test_playbooks import _broken

smtp, told = test_deadlines.smtp, test_deadlines.told  # its fixtures: local SMTP and webhook receivers

DUE = T0 + timedelta(hours=2)  # an L3 report's first-contact deadline
DIRECTOR = Actor("陈总监", ("cs_director",))


def sweep(minutes: float) -> dict[str, int]:
    """One real watcher pass ``minutes`` after the L3 contact deadline."""
    return asyncio.run(watch_deadlines(now=DUE + timedelta(minutes=minutes)))


def escalations(told: Receivers, incident_id: str) -> list[tuple[str, str]]:
    """(role, first body line mentioning the chain) of every escalation notice, in arrival order."""
    got = []
    for m in told.all(incident_id):
        if m.title.startswith("[Escalation]"):
            step = next((line.strip() for line in m.text.splitlines() if "escalation chain" in line), "")
            got.append((m.role, step))
    return got


def test_a_two_step_chain_repeats_until_someone_acks(
    any_db: str, told: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENT_PUBLIC_URL", "https://incident.example.cn/")  # the links a notice carries
    inc = report(T0, customer="chain-a").incident_id
    assert inc
    assert sweep(1) == {"warned": 0, "missed": 1, "escalated": 1}
    assert told.count(inc, "[Escalation]") == {"cs_director": 1, "cs_manager": 1, "customer_service": 1}
    assert ("cs_director", "This is step 1 of the escalation chain.") in escalations(told, inc)
    [to_director] = [m for m in told.all(inc) if m.role == "cs_director"]
    assert f"incident ack {inc} [--note TEXT]" in to_director.text  # how to take it on
    assert f"https://incident.example.cn/incidents/{inc}#form-ack" in to_director.text  # the console's form
    assert f"POST https://incident.example.cn/api/incidents/{inc}/ack" in to_director.text

    assert sweep(29) == {"warned": 0, "missed": 0, "escalated": 0}
    assert sweep(30) == {"warned": 0, "missed": 0, "escalated": 1}  # step 2: leadership
    assert sweep(89) == {"warned": 0, "missed": 0, "escalated": 0}
    assert sweep(90) == {"warned": 0, "missed": 0, "escalated": 1}  # the last step again, 1 h later
    assert told.count(inc, "[Escalation]") == {
        "cs_director": 1,
        "cs_manager": 3,  # the lead hears of every step
        "customer_service": 1,
        "leadership": 2,
    }
    lines = escalations(told, inc)
    assert ("leadership", "This is step 2 of the escalation chain.") in lines
    repeated = "This is step 3 of the escalation chain (repeated until someone acknowledges)."
    assert ("leadership", repeated) in lines
    steps = [(e.detail, e.data["step"], e.data["repeat"], e.at - DUE) for e in events(inc, "escalated")]
    assert steps == [
        ("cs_director", 0, False, timedelta(minutes=1)),
        ("leadership", 1, False, timedelta(minutes=30)),
        ("leadership", 2, True, timedelta(minutes=90)),
    ]

    with pytest.raises(Forbidden, match="not a person"):
        deadlines.acknowledge(inc, SERVICE, None, now=DUE + timedelta(minutes=100))
    with pytest.raises(Forbidden, match="may not ack"):
        deadlines.acknowledge(inc, Actor("小王", ("pr",)), None, now=DUE + timedelta(minutes=100))
    answer = deadlines.acknowledge(inc, DIRECTOR, "我来跟进", now=DUE + timedelta(minutes=100))
    assert answer == {
        "incident_id": inc,
        "acknowledged_by": "陈总监",
        "stopped": ["contact"],
        "stopped_count": 1,
        "assessed": False,
    }
    [acked] = events(inc, "acknowledged")
    assert (acked.by, acked.detail) == ("陈总监", "我来跟进")
    assert [e.by for e in events(inc, "action_refused")] == ["service token", "小王"]
    [row] = deadline_rows(inc, "contact")
    assert (row.acked_by, row.chain_next_at, row.state) == ("陈总监", None, "missed")

    assert not due_work(DUE + timedelta(hours=6))
    assert sweep(360) == {"warned": 0, "missed": 0, "escalated": 0}  # stopped: no more repeats
    with pytest.raises(Conflict, match="nothing to ack"):
        deadlines.acknowledge(inc, DIRECTOR, None, now=DUE + timedelta(hours=7))


def test_a_restart_neither_loses_nor_repeats_a_step(any_db: str, told: Receivers) -> None:
    """The chain is in the rows: a new engine (a restarted service) goes on where the old one stopped."""
    inc = report(T0, customer="chain-b").incident_id
    assert inc
    assert sweep(1)["escalated"] == 1
    models.reset_engine()  # the service restarts
    assert sweep(1)["escalated"] == 0  # the same pass again: nothing twice
    [row] = deadline_rows(inc, "contact")
    assert (row.chain_step, row.chain_next_at, row.escalated_at) == (
        1,
        DUE + timedelta(minutes=30),
        row.escalated_at,
    )
    # A second watcher that read the row before the step was claimed loses the claim.
    stale = chain.due_firings(playbooks.get("product_quality").level(3), row.due_at, 0, DUE)
    assert stale is not None
    with session_scope() as s:
        assert not chain.claim(s, row, stale, DUE)
    # Down from before step 2 until long after: one pass sends step 2 once, skipping the repeats missed.
    models.reset_engine()
    assert sweep(250) == {"warned": 0, "missed": 0, "escalated": 1}
    [*_, caught_up] = events(inc, "escalated")
    assert (caught_up.data["step"], caught_up.data["repeat"]) == (1, False)
    [row] = deadline_rows(inc, "contact")
    assert row.chain_next_at == DUE + timedelta(minutes=270)  # the next repeat, in the future
    assert sweep(269)["escalated"] == 0 and sweep(270)["escalated"] == 1


def test_deadlines_missed_in_one_sweep_make_one_summary_notice(db: str, told: Receivers) -> None:
    """Contact (2 h) and approval (8 h after the proposal) of one L3 incident, both found by one sweep."""
    inc = report(T0, customer="chain-c").incident_id
    assert inc
    actions.cause(inc, actions.CauseIn(root="r", direct="d", stage="production"), now=T0)
    actions.propose(inc, actions.ProposeIn(solution="repair"), now=T0)
    result = asyncio.run(watch_deadlines(now=T0 + timedelta(hours=8, minutes=1)))
    assert result == {"warned": 0, "missed": 2, "escalated": 2}
    sent = [(d["notice"], d["role"]) for d in notifiers.deliveries(inc) if d["notice"].startswith("dead")]
    assert sorted(sent) == sorted(
        ("deadlines_summary", role)
        for role in ("cs_director", "leadership", "cs_manager", "customer_service", "dept_head")
    )  # one notice per role, not one per deadline
    [summary] = [m for m in told.all(inc) if m.role == "cs_director"]
    assert summary.title == f"[Escalation] Incident {inc}: 2 deadlines missed"
    assert "First customer contact deadline: 2026-11-24 04:00 +00:00" in summary.text
    assert "Solution approval deadline: 2026-11-24 10:00 +00:00" in summary.text
    assert f"incident ack {inc}" in summary.text
    assert len(events(inc, "deadline_missed")) == 2  # each miss is still on the timeline
    answer = deadlines.acknowledge(inc, DIRECTOR, None, now=T0 + timedelta(hours=9))
    assert sorted(answer["stopped"]) == ["approval", "contact"]


def alarm(batch: str, **fields: object) -> intake.IntakeResult:
    body = intake.FeedbackIn(
        kind="alarm", channel="internal", category="product_quality", summary="line sensor: seal failures",
        product_model="P30", batch=batch, **fields,
    )  # fmt: skip
    return intake.record(body, now=T0)


def test_an_alarm_without_customer_must_be_acknowledged_and_assessed(db: str, told: Receivers) -> None:
    opened = alarm("AL-1")
    inc = opened.incident_id
    assert inc and opened.level == 3 and opened.contact_deadline is None
    assert deadline_rows(inc, "contact") == []
    [assess] = deadline_rows(inc, "assess")
    assert assess.due_at == T0 + playbooks.get("product_quality").level(3).assess_within
    result = asyncio.run(watch_deadlines(now=assess.due_at + timedelta(minutes=1)))
    assert result == {"warned": 0, "missed": 1, "escalated": 1}
    [to_director] = [m for m in told.all(inc) if m.role == "cs_director"]
    assert "acknowledge and assess the alarm deadline missed" in to_director.title
    assert "acknowledge the alarm (`incident ack`) and assess its impact" in to_director.text
    answer = deadlines.acknowledge(inc, DIRECTOR, "评估中", now=assess.due_at + timedelta(minutes=5))
    assert answer["stopped"] == ["assess"] and answer["assessed"] is True
    [row] = deadline_rows(inc, "assess")
    assert row.met_at == assess.due_at + timedelta(minutes=5) and row.chain_next_at is None

    on_time = alarm("AL-2").incident_id
    assert on_time
    answer = deadlines.acknowledge(on_time, DIRECTOR, None, now=T0 + timedelta(minutes=10))
    assert (answer["stopped"], answer["assessed"]) == ([], True)
    assert deadline_rows(on_time, "assess")[0].state == "met"
    # A customer joins it later: their first-contact duty starts when they join.
    joined_at = T0 + timedelta(hours=3)
    body = intake.FeedbackIn(
        category="product_quality", summary="seal leaks", customer="李雷", product_model="P30", batch="AL-2"
    )
    joined = intake.record(body, now=joined_at)
    assert joined.incident_id == on_time and joined.contact_deadline == joined_at + timedelta(hours=2)


def test_a_recall_without_legal_review_is_refused_when_proposed(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inc = report(T0, customer="chain-d").incident_id
    assert inc
    actions.cause(inc, actions.CauseIn(root="r", direct="d", stage="production"), now=T0)
    with pytest.raises(BadInput, match="legal_reviewed: a recall must be reviewed by the legal group"):
        actions.propose(inc, actions.ProposeIn(solution="recall"), now=T0)
    with session_scope() as s:  # nothing half-stored: no solution, no approval deadline
        assert s.scalars(select(Solution).where(Solution.incident_id == inc)).first() is None
        assert (
            s.scalars(
                select(Deadline).where(Deadline.incident_id == inc, Deadline.kind == "approval")
            ).first()
            is None
        )
    proposed = actions.propose(inc, actions.ProposeIn(solution="recall", legal_reviewed=True), now=T0)
    assert proposed["round"] == 1
    approved = actions.approve(
        inc, actions.ApproveIn(by="周", role="dept_head"), now=T0 + timedelta(minutes=5)
    )
    assert approved["approved"] is True

    # Which solutions need it is the playbook's word: mark "repair" and it is refused too.
    folder = tmp_path / "books"
    folder.mkdir()
    for path in Path(playbooks.__file__).parent.glob("*.yaml"):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    book = folder / "product_quality.yaml"
    data = yaml.safe_load(book.read_text(encoding="utf-8"))
    data["solutions"]["repair"]["legal_review"] = True
    book.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("INCIDENT_PLAYBOOKS", str(folder))
    other = report(T0, customer="chain-e", batch="B-9").incident_id
    assert other
    actions.cause(other, actions.CauseIn(root="r", direct="d", stage="production"), now=T0)
    with pytest.raises(BadInput, match="legal_reviewed: a repair"):
        actions.propose(other, actions.ProposeIn(solution="repair"), now=T0)


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        ({"levels.2.escalation": []}, "levels.2.escalation", "at least 1"),
        ({"levels.2.escalation": [{"after": "0m", "notify": ["boss"]}]},
         "levels.2.escalation.0.notify.0", "boss"),
        ({"levels.2.escalation": [{"after": "soon", "notify": ["leadership"]}]},
         "levels.2.escalation.0.after", "duration"),
        ({"levels.2.escalation": [{"notify": ["leadership"]}]}, "levels.2.escalation.0.after", "required"),
        ({"levels.2.escalation": [{"after": "30m", "notify": ["leadership"]},
                                  {"after": "0m", "notify": ["pr"]}]}, "levels.2", "order"),
        ({"levels.2.repeat_every": "0m"}, "levels.2.repeat_every", "greater than"),
        ({"levels.2.escalate_to": ["pr"]}, "levels.2", "first escalation step"),
    ],
)  # fmt: skip
def test_a_bad_chain_is_refused_at_load(
    tmp_path: Path, edit: dict[str, object], field: str, words: str
) -> None:
    path = _broken(tmp_path, edit)
    with pytest.raises(PlaybookError) as err:
        load_file(path)
    assert f"field {field}" in str(err.value) and words in str(err.value)


def test_an_old_playbook_with_only_escalate_to_still_loads(tmp_path: Path) -> None:
    path = _broken(tmp_path)
    data = yaml.safe_load(path.read_text())
    for rules in data["levels"].values():
        del rules["escalation"], rules["repeat_every"], rules["assess_within"]
        rules["escalate_to"] = ["duty_manager"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    rules = load_file(path).level(2)
    assert [(s.after, s.notify) for s in rules.escalation] == [(timedelta(0), ["duty_manager"])]
    assert rules.repeat_every is None and rules.assess_within == timedelta(minutes=30)


def test_incident_ack_from_the_terminal(service: Service) -> None:
    """CLI → ``POST /api/incidents/{id}/ack`` as INCIDENT_TOKEN's person; the service token is refused."""
    body = {"kind": "alarm", "channel": "internal", "category": "special_scenario",
            "summary": "chains: warehouse flood alarm", "region": "chains-ack-region",
            "cause": "flood"}  # fmt: skip
    accepted = service.api("POST", "/api/feedback", json=body)
    assert accepted.status_code == 202, accepted.text
    inc = accepted.json()["incident_id"]
    assert [d["kind"] for d in service.show(inc)["deadlines"]] == ["assess"]
    refused = service.cli("ack", inc, check=False, token=service.token)
    assert refused.returncode == 2 and "服务令牌不代表具体人员，不能确认接手" in refused.stderr  # zh
    token = service.person("值班 孙经理", "duty_manager")
    answer = service.cli_json("ack", inc, "--note", "已安排评估", token=token)
    assert (answer["incident_id"], answer["acknowledged_by"], answer["assessed"]) == (
        inc,
        "值班 孙经理",
        True,
    )
    shown = service.show(inc)
    assert [d["state"] for d in shown["deadlines"]] == ["met"]
    assert any(e["event"] == "acknowledged" and e["by"] == "值班 孙经理" for e in shown["timeline"])


def test_incident_ack_from_the_console(service: Service) -> None:
    """The incident page offers the ack while an alarm awaits its assessment; posted as the person."""
    from tests.test_console import browser, csrf

    body = {"kind": "alarm", "channel": "internal", "category": "special_scenario",
            "summary": "chains: console alarm", "region": "chains-console-region",
            "cause": "fire"}  # fmt: skip
    inc = service.api("POST", "/api/feedback", json=body).json()["incident_id"]
    token = service.person("值班 周经理", "duty_manager")
    client = browser(service, token=token)
    try:
        page = client.get(f"/incidents/{inc}").text
        assert 'id="form-ack"' in page
        assert '<small class="clock">自然时间</small>' in page  # each due time says which clock it counts
        posted = client.post(f"/incidents/{inc}/ack", data={"csrf": csrf(page), "note": "现场确认"})
        assert posted.status_code == 303, posted.text
        assert 'id="form-ack"' not in client.get(f"/incidents/{inc}").text  # nothing left to acknowledge
    finally:
        client.close()
    shown = service.show(inc)
    assert [(d["state"], d["acknowledged_by"]) for d in shown["deadlines"]] == [("met", None)]
    assert [e["by"] for e in shown["timeline"] if e["event"] == "acknowledged"] == ["值班 周经理"]

"""Per-customer duties: in a storm each customer is owed a first contact of their own, from when they joined.

Service layer on an injected clock (``intake.record(…, now=…)``, ``actions.contact(…, now=…)``, the real
``watch_deadlines`` flow at ``now=…``), told through real channels (tests/test_deadlines.py's local SMTP
server and webhook). The L3 chain of the shipped playbooks: cs_director at the miss, leadership 30 min
later, leadership again every hour until ``incident ack``. The CLI and the console: the session's real
``incident serve``.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, pool, select, text

from flows.deadlines import watch_deadlines
from incident.deadlines import customers as duties
from incident.deadlines import service as deadlines
from incident.errors import BadInput
from incident.feedback import service as intake
from incident.incidents import service as incidents
from incident.people.service import Actor
from incident.records.documents import build_dossier
from incident.records.documents.render import render as render_document
from incident.response import service as actions
from models import Contact, Deadline, Incident, session_scope
from playbooks import vocabulary
from tests import test_deadlines
from tests.conftest import Service
from tests.test_console import browser, csrf
from tests.test_deadlines import T0, Receivers, deadline_rows, events, report

smtp, told = test_deadlines.smtp, test_deadlines.told  # local SMTP and webhook receivers
DUE = T0 + timedelta(hours=2)  # the opening customer's first-contact deadline (L3: 2 h)
DIRECTOR = Actor("陈总监", ("cs_director",))


def sweep(minutes: float) -> dict[str, int]:
    """One real watcher pass ``minutes`` after the opening customer's contact deadline."""
    return asyncio.run(watch_deadlines(now=DUE + timedelta(minutes=minutes)))


def duty(incident_id: str, feedback_id: str) -> Deadline:
    [row] = [r for r in deadline_rows(incident_id, "contact") + deadline_rows(incident_id, "customer_contact")
             if r.subject == feedback_id]  # fmt: skip
    return row


def progress_at(incident_id: str, now: datetime) -> dict[str, int]:
    """``incident show``'s contact_progress as it reads at ``now`` (show itself reads the clock)."""
    with session_scope() as s:
        return duties.progress(s, incident_id, now)


def contacts(incident_id: str) -> list[Contact]:
    with session_scope() as s:
        return list(s.scalars(select(Contact).where(Contact.incident_id == incident_id).order_by(Contact.id)))


def test_each_customer_is_owed_a_first_contact_from_when_they_joined(any_db: str) -> None:
    """Customers join over time, each with their own due time; a contact reaches one or a list."""
    first = report(T0, customer="张伟", batch="S-1")
    inc = first.incident_id
    assert inc
    second = report(T0 + timedelta(minutes=10), customer="李娜", batch="S-1")
    third = report(T0 + timedelta(minutes=25), customer="王强", batch="S-1")
    report(T0 + timedelta(minutes=30), customer="李娜", batch="S-1")  # the same customer again: no new duty
    assert [(r.subject, r.due_at) for r in deadline_rows(inc, "contact")] == [(first.feedback_id, DUE)]
    assert [(r.subject, r.due_at) for r in deadline_rows(inc, "customer_contact")] == [
        (second.feedback_id, DUE + timedelta(minutes=10)),
        (third.feedback_id, DUE + timedelta(minutes=25)),
    ]
    assert progress_at(inc, T0 + timedelta(minutes=30)) == {"contacted": 0, "customers": 3, "overdue": 0}
    assert progress_at(inc, DUE + timedelta(minutes=11)) == {"contacted": 0, "customers": 3, "overdue": 2}

    one = actions.contact(inc, actions.ContactIn(by="王芳"), now=T0 + timedelta(minutes=20))  # the first
    assert (one["first"], one["customers"], one["on_time"]) == (True, [first.feedback_id], True)
    [progress] = deadline_rows(inc, "progress")
    assert progress.due_at == T0 + timedelta(hours=24, minutes=20)  # the cadence starts at the first

    with pytest.raises(BadInput, match="'赵六' is no customer of"):  # refused before anything is stored
        actions.contact(
            inc, actions.ContactIn(by="王芳", customers=["李娜", "赵六"]), now=T0 + timedelta(hours=1)
        )
    assert len(contacts(inc)) == 1 and duty(inc, second.feedback_id).met_at is None

    at = DUE + timedelta(minutes=15)  # past 李娜's own due time (2 h 10 m), before 王强's (2 h 25 m)
    both = actions.contact(inc, actions.ContactIn(by="王芳", customers=["李娜", third.feedback_id]), now=at)
    assert both["customers"] == [second.feedback_id, third.feedback_id]
    assert (both["first"], both["progress_update"], both["on_time"]) == (False, False, False)  # 李娜: late
    assert both["contact_progress"] == {"contacted": 3, "customers": 3, "overdue": 0}
    assert (duty(inc, second.feedback_id).state, duty(inc, third.feedback_id).state) == ("missed", "met")
    assert [e.data["customer"] for e in events(inc, "deadline_missed")] == [second.feedback_id]
    assert deadline_rows(inc, "progress")[0].due_at == progress.due_at  # first contacts: no update
    rows = contacts(inc)
    assert [(c.first, c.progress_update, c.customers) for c in rows] == [
        (True, False, [first.feedback_id]),
        (False, False, [second.feedback_id, third.feedback_id]),  # one call, one row
    ]
    update = actions.contact(
        inc, actions.ContactIn(by="王芳", customers=["张伟", "王强"]), now=T0 + timedelta(hours=4)
    )
    assert update["progress_update"] is True  # reaches customers contacted before
    assert deadline_rows(inc, "progress")[-1].due_at == T0 + timedelta(hours=28)  # counted from it
    shown = incidents.show(inc)
    assert all(d["kind"] != "customer_contact" for d in shown["deadlines"])  # in contact_progress
    assert {fb["feedback_id"]: fb["contact_duty"] for fb in shown["feedback"]}[
        third.feedback_id
    ] == "contacted"


def test_the_same_name_twice_must_be_told_apart(db: str) -> None:
    first = actions_report("陈静", "13800000001")
    inc = first.incident_id
    assert inc
    other = actions_report("陈静", "13800000002")  # another customer of the same name
    with pytest.raises(BadInput, match=f"'陈静' names 2 customers; give one of {first.feedback_id}"):
        actions.contact(inc, actions.ContactIn(by="王芳", customers=["陈静"]), now=T0)
    done = actions.contact(inc, actions.ContactIn(by="王芳", customers=[other.feedback_id]), now=T0)
    assert done["customers"] == [other.feedback_id]


def actions_report(name: str, phone: str) -> intake.IntakeResult:
    body = intake.FeedbackIn(
        category="product_quality", summary="fridge not cooling", customer=name, contact=phone,
        product_model="F1", batch="S-2",
    )  # fmt: skip
    return intake.record(body, now=T0)


def test_misses_run_one_chain_later_ones_join_it_silently_and_it_passes_on(
    any_db: str, told: Receivers
) -> None:
    opening = report(T0, customer="c0", batch="S-3")
    inc = opening.incident_id
    assert inc
    c1 = report(T0 + timedelta(minutes=5), customer="c1", batch="S-3")  # due DUE + 5 m
    c2 = report(T0 + timedelta(minutes=20), customer="c2", batch="S-3")  # due DUE + 20 m
    assert sweep(-29) == {"warned": 1, "missed": 0, "escalated": 0}  # c0's contact
    assert sweep(1) == {"warned": 2, "missed": 1, "escalated": 1}  # c1, c2 warned together; c0 missed
    assert told.count(inc, "[Due soon]") == {"cs_manager": 2, "customer_service": 2}  # two notices, not 3
    [both] = [m for m in told.all(inc) if m.role == "cs_manager" and "(2 customers)" in m.title]
    assert "First contacts: contacted 0/3, 1 overdue" in both.text
    first_step = {"cs_director": 1, "cs_manager": 1, "customer_service": 1}
    assert told.count(inc, "[Escalation]") == first_step

    assert sweep(6) == {"warned": 0, "missed": 1, "escalated": 0}  # c1 joins the chain silently
    assert sweep(21) == {"warned": 0, "missed": 1, "escalated": 0}  # c2 too
    assert told.count(inc, "[Escalation]") == first_step  # nobody was paged again
    joined = duty(inc, c1.feedback_id)
    assert (joined.state, joined.chain_next_at, joined.escalated_to) == ("missed", None, None)
    assert [e.data["customer"] for e in events(inc, "deadline_missed")] == [
        opening.feedback_id, c1.feedback_id, c2.feedback_id,
    ]  # fmt: skip

    assert sweep(30) == {"warned": 0, "missed": 0, "escalated": 1}  # the chain's step 2: leadership
    [step2] = [m for m in told.all(inc) if m.role == "leadership"]
    assert "First contacts: contacted 0/3, 3 overdue" in step2.text

    actions.contact(inc, actions.ContactIn(by="王芳"), now=DUE + timedelta(minutes=40))  # c0 reached, late
    held, heir = duty(inc, opening.feedback_id), duty(inc, c1.feedback_id)
    assert held.chain_next_at is None
    assert (heir.chain_step, heir.chain_next_at) == (2, DUE + timedelta(minutes=5 + 30 + 60))  # its repeat
    shown = incidents.show(inc)
    assert shown["escalating"] is True and not any(d["next_escalation_at"] for d in shown["deadlines"])
    assert sweep(94) == {"warned": 0, "missed": 0, "escalated": 0}
    assert sweep(95) == {"warned": 0, "missed": 0, "escalated": 1}  # passed on: c1's repeat
    assert events(inc, "escalated")[-1].data["kind"] == "customer_contact"

    answer = deadlines.acknowledge(inc, DIRECTOR, "逐一回访", now=DUE + timedelta(minutes=100))
    assert (answer["stopped"], answer["stopped_count"]) == (["customer_contact"], 2)  # c1 and c2, once
    assert incidents.show(inc)["escalating"] is False
    assert sweep(200)["escalated"] == 0


def test_a_level_raise_shortens_every_customer_still_waiting(any_db: str) -> None:
    c0 = report(T0, customer="r0", batch="S-4")
    inc = c0.incident_id
    assert inc
    c1 = report(T0 + timedelta(minutes=10), customer="r1", batch="S-4")
    actions.contact(inc, actions.ContactIn(by="王芳", customers=["r1"]), now=T0 + timedelta(minutes=15))
    c2 = report(T0 + timedelta(minutes=20), customer="r2", batch="S-4")
    raised = report(T0 + timedelta(minutes=30), customer="r3", batch="S-4", media=True)  # → L1: 30 min
    assert raised.level == 1
    one_hour = T0 + timedelta(hours=1)
    assert duty(inc, c0.feedback_id).due_at == one_hour  # min(2 h, 30 m + 30 m)
    assert duty(inc, c2.feedback_id).due_at == one_hour  # min(2 h 20 m, 30 m + 30 m)
    assert duty(inc, raised.feedback_id).due_at == one_hour  # joined at 30 m, L1's window
    reached = duty(inc, c1.feedback_id)
    assert (reached.state, reached.due_at) == ("met", T0 + timedelta(hours=2, minutes=10))  # untouched
    assert deadlines.clock_of(incidents_row(inc), "customer_contact") == "calendar"  # contact's clock


def incidents_row(incident_id: str) -> Incident:
    with session_scope() as s:
        return s.get_one(Incident, incident_id)


def test_the_post_mortem_counts_customers_once_and_updates_per_call(db: str, prefect_api: str) -> None:
    first = report(T0, customer="p0", batch="S-5")
    inc = first.incident_id
    assert inc
    for n in range(1, 4):
        report(T0 + timedelta(minutes=n), customer=f"p{n}", batch="S-5")
    actions.contact(inc, actions.ContactIn(by="王芳"), now=T0 + timedelta(minutes=10))
    one_call = actions.ContactIn(by="王芳", customers=["p1", "p2"])  # their first contact, one call
    actions.contact(inc, one_call, now=T0 + timedelta(minutes=20))
    assert asyncio.run(watch_deadlines(now=T0 + timedelta(hours=2, minutes=10)))["missed"] == 1  # p3
    actions.contact(
        inc, actions.ContactIn(by="李静", customers=["p0", "p1", "p2"]), now=T0 + timedelta(hours=3)
    )
    with session_scope() as s:
        dossier = build_dossier(s, inc, now=T0 + timedelta(hours=4))
    assert [x.kind for x in dossier.deadlines] == ["contact", "progress", "progress"]  # no row per customer
    assert (dossier.contact_progress.contacted, dossier.contact_progress.customers) == (3, 4)  # type: ignore[union-attr]
    assert (dossier.contact_progress.overdue, dossier.contact_progress.late) == (1, 1)  # type: ignore[union-attr]
    [progress] = [x for x in dossier.duties if x.duty == "progress"]
    assert progress.detail.en == "1 update(s)" and progress.people == ("李静",)  # not 1 + 2 + 3
    en = render_document("postmortem", dossier, lang="en")
    assert "| First contacts (each customer) | contacted 3/4, 1 overdue (1 late in all) |" in en
    assert "1 customers' first contacts were late (contacted 3/4; 1 still overdue)" in en
    assert "| Missed deadlines | 0 | 0 |" in en  # the opening customer was on time
    zh = render_document("postmortem", dossier, lang="zh")
    assert "| 各客户首次联系 | 已联系 3/4，1 个超时（累计 1 位超时） |" in zh


def test_the_cli_and_the_console_give_the_progress(service: Service) -> None:
    batch = f"S-{uuid.uuid4().hex[:6]}"
    ids = [
        service.cli_json("report", "--category", "product_quality", "--summary", "电池鼓包",
                         "--product-model", "P30", "--batch", batch, "--customer", name)["feedback_id"]
        for name in ("周一", "周二", "周三")
    ]  # fmt: skip
    inc = service.api("GET", f"/api/feedback/{ids[0]}").json()["incident_id"]
    lang = (service.env.get("INCIDENT_LANG") or "zh")[:2]
    said = service.cli("contact", inc, "--by", "王芳", "--customer", "周二", "--customer", ids[2]).stdout
    progress = {"contacted": 2, "customers": 3, "overdue": 0}
    assert vocabulary.progress_line(progress, lang) in said
    shown = service.cli("show", inc).stdout
    assert vocabulary.progress_line(progress, lang) in shown

    client = browser(service)
    try:
        page = client.get(f"/incidents/{inc}").text
        assert re.search(r'id="contact-progress">[^<]*2/3', page)
        boxes = re.findall(r'name="customers" value="([^"]+)"', page)
        assert boxes == [ids[0]]  # only the customer not contacted yet
        assert re.search(rf'data-feedback="{ids[1]}">.*?class="duty-contacted"', page, re.S)
        posted = client.post(
            f"/incidents/{inc}/contact", data={"csrf": csrf(page), "by": "王芳", "customers": ids[0]}
        )
        assert posted.status_code == 303, posted.text
    finally:
        client.close()
    assert service.show(inc)["contact_progress"] == {"contacted": 3, "customers": 3, "overdue": 0}


def test_the_upgrade_names_each_contact_and_owes_later_customers_theirs(tmp_path: Path) -> None:
    """Migration 0013 on data recorded before it: subjects, and a duty per later customer of open ones."""
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config(str(Path(__file__).resolve().parents[1] / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0012")
    engine = create_engine(url, poolclass=pool.NullPool)
    old = "2020-01-01 00:00:00.000000"
    with engine.begin() as conn:
        for inc, status in (("INC1", "handling"), ("INC2", "closed")):
            conn.execute(text(
                "INSERT INTO incidents (id, category, level, status, correlation_key, summary, customers,"
                " level_reasons, identified_at, solution_round, follow_up_round)"
                f" VALUES ('{inc}', 'product_quality', 3, '{status}', 'k-{inc}', 's', 3, '[]', '{old}', 1, 1)"
            ))  # fmt: skip
            for n, minute in enumerate((0, 5, 10, 15)):  # the 4th report is the 1st customer's again
                who = f"n:c{n % 3}"
                conn.execute(text(
                    "INSERT INTO feedback (id, incident_id, kind, channel, category, summary, customer_key,"
                    " customers, media, injury, property_loss, brand_risk, big_loss, compensation_demand,"
                    f" received_at, opened_incident) VALUES ('{inc}-F{n}', '{inc}', 'complaint', 'phone',"
                    f" 'product_quality', 's', '{who}', 1, 0, 0, 0, 0, 0, 0,"
                    f" '2020-01-01 00:{minute:02d}:00.000000', {1 if n == 0 else 0})"
                ))  # fmt: skip
            conn.execute(text(
                "INSERT INTO deadlines (incident_id, kind, due_at, state, created_at, chain_step)"
                f" VALUES ('{inc}', 'contact', '2020-01-01 02:00:00.000000', 'met', '{old}', 0)"
            ))  # fmt: skip
            conn.execute(text(
                "INSERT INTO contacts (incident_id, at, by, first, on_time) VALUES"
                f" ('{inc}', '{old}', 'x', 1, 1), ('{inc}', '{old}', 'x', 0, 1)"
            ))  # fmt: skip
    command.upgrade(cfg, "0013")
    with engine.begin() as conn:
        rows = conn.execute(text(
            "SELECT incident_id, kind, subject, due_at, state, chain_next_at FROM deadlines ORDER BY id"
        )).all()  # fmt: skip
        updates = conn.execute(text("SELECT progress_update FROM contacts ORDER BY id")).scalars().all()
    engine.dispose()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("INC1", "contact", "INC1-F0"),
        ("INC2", "contact", "INC2-F0"),  # closed: named, nothing owed
        ("INC1", "customer_contact", "INC1-F1"),
        ("INC1", "customer_contact", "INC1-F2"),
    ]
    assert [r[3][:19] for r in rows[2:]] == ["2020-01-01 02:05:00", "2020-01-01 02:10:00"]  # join + 2 h
    assert {(r[4], r[5]) for r in rows[2:]} == {("missed", None)}  # long past: overdue, nobody paged
    assert [bool(u) for u in updates] == [False, True, False, True]
    assert "customer_updates" not in inspect(create_engine(url, poolclass=pool.NullPool)).get_table_names()

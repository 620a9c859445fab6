"""Progress updates reach the customers who consented, on the channel they came by, logged masked.

Real parts: a local SMTP server (aiosmtpd, as tests/test_notifiers.py) behind
``INCIDENT_CUSTOMER_MAIL_URL`` (apprise ``mailto://``), and a local HTTP receiver standing in for an SMS
gateway behind ``INCIDENT_CUSTOMER_SMS_URL``: apprise's generic JSON notification, whose ``:to=``
argument becomes a field of the posted JSON (https://github.com/caronc/apprise/wiki/Notify_Custom_JSON),
so the gateway receives ``{"to": <number>, "title", "message", …}``. The contact and the sending are the
service layer's (``actions.contact(…, now=…)``, ``updates.send_owed(now)``: the worker's loop).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select, update

import notifiers
from incident.feedback import service as intake
from incident.response import service as actions
from incident.response import updates
from models import CustomerUpdate, session_scope
from tests.conftest import Service
from tests.test_deadlines import T0, deadline_rows
from tests.test_notifiers import Mailbox, parts
from tests.test_notifiers import smtp as smtp  # the local SMTP server fixture

ALICE = "alice.wang@example.com"
PHONE = "13812345678"
HOSTILE = "已安排上门更换电池 <script>alert(1)</script> {{ 7*7 }}"


@pytest.fixture
def gateway(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/sms", method="POST").respond_with_json({"ok": True})
    return httpserver


@pytest.fixture
def channels(
    any_db: str, smtp: tuple[Mailbox, int], gateway: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> Mailbox:
    box, port = smtp
    monkeypatch.setenv("INCIDENT_CUSTOMER_MAIL_URL", f"mailto://127.0.0.1:{port}?from=service@example.com")
    monkeypatch.setenv("INCIDENT_CUSTOMER_SMS_URL", f"json://127.0.0.1:{gateway.port}/sms?:to={{to}}")
    monkeypatch.setenv("INCIDENT_NOTIFY_BACKOFF", "0.01")
    return box


def report(name: str, channel: str, contact: str | None, consent: bool, batch: str = "U-1") -> str:
    body = intake.FeedbackIn(
        category="product_quality", summary="电池鼓包", customer=name, contact=contact, channel=channel,
        product_model="P30", batch=batch, consent=consent,
    )  # fmt: skip
    found = intake.record(body, now=T0)
    assert found.incident_id
    return found.incident_id


def customer_log(incident_id: str) -> list[dict[str, Any]]:
    return [d for d in notifiers.deliveries(incident_id) if d["notice"] == "customer_update"]


def sms(gateway: HTTPServer) -> list[dict[str, Any]]:
    return [request.get_json() for request, _ in gateway.log if request.path == "/sms"]


def test_an_update_reaches_who_consented_on_their_channel(channels: Mailbox, gateway: HTTPServer) -> None:
    inc = report("王丽", "email", ALICE, consent=True)
    report("李雷", "phone", PHONE, consent=True)
    report("韩梅", "web", "han.mei@example.com", consent=True)  # no channel of ours: the e-mail left
    report("张三", "phone", "13900001111", consent=False)
    report("赵四", "social", "@zhaosi", consent=True)  # we do not answer on social media
    contact = actions.contact(
        inc, actions.ContactIn(by="王芳", update=HOSTILE), now=T0 + timedelta(minutes=20)
    )
    assert contact["messages"] == {"queued": 3, "by_person": 2}
    assert channels.messages == [] and sms(gateway) == []  # sent by the worker, not in the contact

    assert asyncio.run(updates.send_owed(T0 + timedelta(minutes=20))) == {"sent": 3, "failed": 0}
    assert asyncio.run(updates.send_owed(T0 + timedelta(minutes=21))) == {"sent": 0, "failed": 0}  # once
    [mail] = channels.to(ALICE)
    text, html = parts(mail)
    assert "尊敬的王丽" in text and PHONE not in text  # the customer's own name, unmasked, only theirs
    assert "已安排上门更换电池 <script>alert(1)</script> {{ 7*7 }}" in text  # their text as data
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "【处理进度通报】" in str(mail["Subject"])
    assert len(channels.to("han.mei@example.com")) == 1 and len(channels.messages) == 2
    [message] = sms(gateway)
    assert (
        message["to"] == PHONE and "已安排上门更换电池" in message["message"] and "李雷" in message["message"]
    )

    log = customer_log(inc)
    assert sorted((d["url"], d["status"]) for d in log) == [
        ("-", "by_person"),  # 赵四: social media, no address we use
        ("email:a***@example.com", "sent"),
        ("email:h***@example.com", "sent"),
        ("sms:138****5678", "sent"),
        ("sms:139****1111", "by_person"),  # 张三: no consent
    ]
    reasons = {d["error"] for d in log if d["status"] == "by_person"}
    assert reasons == {"no consent to updates recorded at intake", "came by social: no channel to answer on"}
    everything = repr(notifiers.deliveries(inc))
    for address in (ALICE, PHONE, "han.mei@example.com", "13900001111"):
        assert address not in everything  # what staff read names them masked only
    assert {d["role"] for d in log} == {"customer"}


def test_the_cadence_counts_from_the_last_update(channels: Mailbox) -> None:
    inc = report("王丽", "email", ALICE, consent=True, batch="U-2")
    actions.contact(inc, actions.ContactIn(by="王芳"), now=T0 + timedelta(minutes=10))
    assert deadline_rows(inc, "progress")[-1].due_at == T0 + timedelta(hours=24, minutes=10)
    told = actions.contact(inc, actions.ContactIn(by="王芳", update="备件已到"), now=T0 + timedelta(hours=5))
    assert (told["progress_update"], told["on_time"], told["messages"]) == (
        True,
        True,
        {"queued": 1, "by_person": 0},
    )
    rows = deadline_rows(inc, "progress")
    assert [r.state for r in rows] == ["met", "pending"] and rows[-1].due_at == T0 + timedelta(hours=29)


def test_without_consent_or_a_configured_channel_nothing_is_sent(
    any_db: str, smtp: tuple[Mailbox, int], gateway: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    monkeypatch.setenv("INCIDENT_CUSTOMER_MAIL_URL", f"mailto://127.0.0.1:{port}?from=service@example.com")
    monkeypatch.delenv("INCIDENT_CUSTOMER_SMS_URL", raising=False)  # no SMS gateway configured
    inc = report("王丽", "email", ALICE, consent=False, batch="U-3")
    report("李雷", "phone", PHONE, consent=True, batch="U-3")
    told = actions.contact(inc, actions.ContactIn(by="王芳", update="进展"), now=T0)
    assert told["messages"] == {"queued": 0, "by_person": 2}
    assert asyncio.run(updates.send_owed(T0)) == {"sent": 0, "failed": 0}
    assert box.messages == [] and sms(gateway) == []
    assert {d["error"] for d in customer_log(inc)} == {
        "no consent to updates recorded at intake",
        "INCIDENT_CUSTOMER_SMS_URL is not set",
    }


def test_a_send_whose_worker_died_is_taken_again_but_a_live_one_is_not(channels: Mailbox) -> None:
    inc = report("王丽", "email", ALICE, consent=True, batch="U-4")
    actions.contact(inc, actions.ContactIn(by="王芳", update="进展"), now=T0)
    with session_scope() as s:  # a worker claimed it at T0 and died before sending
        s.execute(update(CustomerUpdate).values(state="sending", claimed_at=T0))
    assert asyncio.run(updates.send_owed(T0 + timedelta(minutes=5))) == {"sent": 0, "failed": 0}  # live
    assert asyncio.run(updates.send_owed(T0 + timedelta(minutes=11))) == {"sent": 1, "failed": 0}
    assert len(channels.to(ALICE)) == 1
    with session_scope() as s:
        assert s.scalars(select(CustomerUpdate.state)).all() == ["done"]


def test_a_named_update_goes_to_the_customers_named_only(channels: Mailbox, gateway: HTTPServer) -> None:
    inc = report("王丽", "email", ALICE, consent=True, batch="U-5")
    report("李雷", "phone", PHONE, consent=True, batch="U-5")
    actions.contact(inc, actions.ContactIn(by="王芳"), now=T0)
    told = actions.contact(inc, actions.ContactIn(by="王芳", customers=["李雷"], update="明天上门"), now=T0)
    assert told["messages"] == {"queued": 1, "by_person": 0}
    assert asyncio.run(updates.send_owed(T0)) == {"sent": 1, "failed": 0}
    assert channels.messages == [] and [m["to"] for m in sms(gateway)] == [PHONE]


def test_consent_is_recorded_from_the_cli_and_the_console(service: Service) -> None:
    """`incident report --consent-updates`, the console's report form, and `incident contact --update`."""
    from tests.test_console import browser, csrf

    batch = f"U-{uuid.uuid4().hex[:6]}"
    args = ("--category", "product_quality", "--summary", "鼓包", "--product-model", "P30", "--batch", batch)
    made = service.cli_json("report", *args, "--customer", "王丽", "--contact", ALICE, "--channel", "email",
                            "--consent-updates")  # fmt: skip
    client = browser(service)
    try:
        form = client.get("/report").text
        assert 'name="consent"' in form
        posted = client.post("/report", data={
            "csrf": csrf(form), "kind": "complaint", "category": "product_quality", "summary": "鼓包",
            "customer": "李雷", "contact": PHONE, "channel": "phone", "product_model": "P30", "batch": batch,
            "consent": "1",
        })  # fmt: skip
        assert posted.status_code in (200, 303), posted.text
    finally:
        client.close()
    inc = made["incident_id"]
    said = service.cli_json("contact", inc, "--by", "王芳", "--update", "明天上门更换")
    # the session's service has no customer channels configured: a person tells both; that the reasons
    # are the settings (not "no consent") shows both consents were stored, the CLI's and the form's
    assert said["messages"] == {"queued": 0, "by_person": 2}
    log = service.cli_json("notifications", inc)["deliveries"]
    reasons = sorted(d["error"] for d in log if d["notice"] == "customer_update")
    assert reasons == ["INCIDENT_CUSTOMER_MAIL_URL is not set", "INCIDENT_CUSTOMER_SMS_URL is not set"]
    human = service.cli("contact", inc, "--by", "王芳", "--update", "again").stdout
    assert re.search(r"\S+: \S+ 0, \S+ 2", human)  # 发给客户的进度通报: 待送达 0, 未发送，由专人告知 2

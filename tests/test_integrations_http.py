"""The ticket systems' webhooks on a real ``incident serve``, driven as the vendors drive them.

Zendesk: the ticket event envelope of developer.zendesk.com/api-reference/webhooks/event-types/
ticket-events (``zen:event-type:ticket.created``, ``detail`` with id, subject, description,
requester_id, status, tags, via.channel), signed as developer.zendesk.com/documentation/webhooks/
verifying/ says; the requester is looked up and the write-back lands on a local Zendesk API
(tests/zendesk_fake.py). Freshdesk: the automation rule's body of README "Freshdesk" with its shared
secret header; notes land on tests/freshdesk_fake.py. Every refused request stores nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from incident.integrations import freshdesk, zendesk
from tests.conftest import CUSTOM_FIELD, FD_SECRET, SECRET, Fakes, Service


def _stamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _post_zendesk(
    svc: Service, body: bytes, stamp: str | None = None, secret: str = SECRET
) -> httpx.Response:
    stamp = stamp or _stamp()
    headers = {
        "Content-Type": "application/json",
        zendesk.SIGNATURE: zendesk.sign(secret, stamp, body),
        zendesk.TIMESTAMP: stamp,
    }
    return httpx.post(svc.url + "/api/integrations/zendesk", content=body, headers=headers, timeout=30)


def _event(ticket: int, kind: str = "created", tags: list[str] | None = None, via: object = "mail") -> bytes:
    return json.dumps({
        "type": f"zen:event-type:ticket.{kind}", "account_id": 88888888, "id": str(uuid.uuid4()),
        "time": _stamp(), "zendesk_event_version": "2022-11-06", "subject": f"zen:ticket:{ticket}",
        "detail": {
            "id": str(ticket), "subject": "洗衣机漏水", "description": "新买的洗衣机第一次用就漏水",
            "requester_id": str(ticket * 7), "status": "OPEN", "tags": tags or ["product_quality", "vip"],
            "via": {"channel": via}, "created_at": _stamp(), "updated_at": _stamp(),
        },
        "event": {"meta": {"sequence": {"id": "seq", "position": 1}}},
    }).encode()  # fmt: skip


def _ticket() -> int:
    return int(time.time() * 1000) % 10**9 + uuid.uuid4().int % 1000


def _wait(found: Callable[[], list[Any]], what: str, count: int = 1) -> list[Any]:
    deadline = time.monotonic() + 30
    while len(items := found()) < count:
        assert time.monotonic() < deadline, f"{what}: {items}"
        time.sleep(0.1)
    return items


def _reported(svc: Service, incident_id: str) -> dict[str, Any]:
    """The incident's one report as its page lists it (channel, customer, masked contact)."""
    (only,) = svc.show(incident_id)["feedback"]
    return dict(only)


def test_a_ticket_event_is_one_feedback_and_gets_an_internal_note(systems: tuple[Service, Fakes]) -> None:
    svc, fakes = systems
    ticket = _ticket()
    fakes.zendesk.users[str(ticket * 7)] = {
        "id": ticket * 7,
        "name": "李先生",
        "email": f"li{ticket}@example.com",
    }
    first = _post_zendesk(svc, _event(ticket))
    assert first.status_code == 202, first.text
    accepted = first.json()
    assert accepted["opened"] is True and accepted["category"] == "product_quality" and not accepted["repeat"]
    assert {"feedback_id", "incident_id", "level", "contact_deadline"} <= set(accepted)
    again = _post_zendesk(svc, _event(ticket))  # Zendesk retrying, and a later update of the ticket
    update = _post_zendesk(svc, _event(ticket, "status_changed", tags=["vip"]))  # its category is known
    assert again.status_code == update.status_code == 202
    assert again.json()["feedback_id"] == update.json()["feedback_id"] == accepted["feedback_id"]
    assert again.json()["repeat"] is True
    feedback = svc.api("GET", f"/api/feedback/{accepted['feedback_id']}").json()
    assert feedback["kind"] == "complaint"
    shown = svc.show(accepted["incident_id"])
    assert shown["customers"] == 1
    assert [e["event"] for e in shown["timeline"]].count("ticket_updated") == 1  # the retry is no update
    reported = _reported(svc, accepted["incident_id"])  # the requester as the Users API tells it
    assert (reported["channel"], reported["customer"], reported["contact"]) == (
        "email",
        "李先生",
        "l***@example.com",
    )
    note = _wait(lambda: fakes.zendesk.notes(str(ticket)), "zendesk note")[0]
    assert note["public"] is False and accepted["incident_id"] in note["body"] and "三级" in note["body"]
    assert "已启动" in note["body"] and fakes.zendesk.refused == []


def test_via_channels_and_an_unknown_requester(systems: tuple[Service, Fakes]) -> None:
    """Zendesk's via types and via ids (Via types reference); a requester the Users API does not know."""
    svc, _ = systems
    for via, channel in (
        ("voicemail", "phone"),
        (4, "email"),
        ("twitter_dm", "social"),
        ("web_service", "internal"),
    ):
        ticket = _ticket()
        answer = _post_zendesk(svc, _event(ticket, tags=["service_failure"], via=via))
        assert answer.status_code == 202, answer.text
        reported = _reported(svc, answer.json()["incident_id"])
        assert reported["channel"] == channel, via
        assert reported["customer"] == f"zendesk-user-{ticket * 7}"  # 404 from the Users API: still recorded


def test_the_trigger_body_of_the_readme(systems: tuple[Service, Fakes]) -> None:
    """The body README "Zendesk" tells teams to paste, as Zendesk fills its placeholders."""
    svc, fakes = systems
    ticket = _ticket()
    body = {"event": "created", "ticket": {
        "id": str(ticket), "subject": "台风后上门服务中断", "description": "约好上午，一直没人来",
        "tags": "late", "status": "Open", "via": {"channel": "Email"},
        "requester": {"name": "王女士", "email": f"wang{ticket}@example.com"},
        "custom_fields": [{"id": CUSTOM_FIELD, "value": "typhoon"}],
    }}  # fmt: skip
    answer = _post_zendesk(svc, json.dumps(body, ensure_ascii=False).encode())
    assert answer.status_code == 202, answer.text
    assert answer.json()["category"] == "special_scenario"  # the custom field, through INCIDENT_ZENDESK_MAP
    assert _reported(svc, answer.json()["incident_id"])["channel"] == "email"
    _wait(lambda: fakes.zendesk.notes(str(ticket)), "zendesk note")


def test_a_long_ticket_is_recorded_cut(systems: tuple[Service, Fakes]) -> None:
    """Zendesk does not retry a 4xx: a ticket longer than intake stores is recorded, cut, not refused."""
    svc, _ = systems
    ticket = _ticket()
    body = {"ticket": {"id": str(ticket), "subject": "漏水" * 10, "description": "详情" * 6000,
                       "tags": ["product_quality"], "requester": {"name": "赵先生"}}}  # fmt: skip
    answer = _post_zendesk(svc, json.dumps(body, ensure_ascii=False).encode())
    assert answer.status_code == 202, answer.text
    summary = svc.show(answer.json()["incident_id"])["summary"]
    assert len(summary) == 10_000 and summary.startswith("漏水漏水") and summary.endswith("…")


def test_refused_webhooks_store_nothing(systems: tuple[Service, Fakes]) -> None:
    svc, _ = systems
    ticket = _ticket()
    good = _event(ticket)
    unsigned = httpx.post(svc.url + "/api/integrations/zendesk", content=good, timeout=30)
    forged = _post_zendesk(svc, good, secret="guessed")
    stale = _post_zendesk(svc, good, stamp=_stamp(datetime.now(UTC) - timedelta(minutes=10)))
    for answer in (unsigned, forged, stale):
        assert answer.status_code == 401 and answer.json()["error"], answer.text
    assert "stale" in stale.json()["error"] and "wrong" in forged.json()["error"]
    malformed = _post_zendesk(svc, b'{"type": "zen:event-type:ticket.created", "detail": ')
    unknown = _post_zendesk(svc, _event(ticket, tags=["vip"]))
    user_event = _post_zendesk(
        svc, json.dumps({"type": "zen:event-type:user.created", "detail": {}}).encode()
    )
    for answer, words in ((malformed, "not JSON"), (unknown, "no category"), (user_event, "only ticket")):
        assert answer.status_code == 422 and words in answer.json()["error"], answer.text
    recorded = _post_zendesk(svc, good)  # none of the above left a claim or a feedback behind
    assert recorded.status_code == 202 and recorded.json()["repeat"] is False and recorded.json()["opened"]


def _rule_body(ticket: int, event: str = "created", tags: str = "product_quality, 漏水") -> dict[str, Any]:
    """README "Freshdesk"'s body as Freshdesk fills its placeholders."""
    return {"event": event, "ticket": {
        "id": str(ticket), "subject": "冰箱不制冷 <急>", "description": "买了三天就坏了",
        "tags": tags, "status": "Open", "source": "Email", "priority": "High",
        "requester": {"name": "周女士", "email": f"zhou{ticket}@example.com", "phone": ""},
        "custom_fields": {"cf_category": ""},
    }}  # fmt: skip


def _post_freshdesk(svc: Service, body: object, secret: str | None = FD_SECRET) -> httpx.Response:
    headers = {freshdesk.SECRET_HEADER: secret} if secret is not None else {}
    return httpx.post(svc.url + "/api/integrations/freshdesk", json=body, headers=headers, timeout=30)


def test_a_freshdesk_ticket_is_one_feedback_and_gets_a_private_note(systems: tuple[Service, Fakes]) -> None:
    svc, fakes = systems
    ticket = _ticket()
    first = _post_freshdesk(svc, _rule_body(ticket))
    assert first.status_code == 202, first.text
    accepted = first.json()
    assert accepted["opened"] is True and accepted["category"] == "product_quality" and not accepted["repeat"]
    again = _post_freshdesk(svc, _rule_body(ticket))
    update = _post_freshdesk(svc, {**_rule_body(ticket, "updated", tags=""), "ticket": {
        **_rule_body(ticket)["ticket"], "status": "Pending", "tags": ""}})  # fmt: skip
    assert again.status_code == update.status_code == 202 and again.json()["repeat"] is True
    assert again.json()["feedback_id"] == update.json()["feedback_id"] == accepted["feedback_id"]
    shown = svc.show(accepted["incident_id"])
    assert [e["detail"] for e in shown["timeline"] if e["event"] == "ticket_updated"] == [
        f"Freshdesk #{ticket}: pending"
    ]
    reported = _reported(svc, accepted["incident_id"])
    assert (reported["channel"], reported["customer"], reported["contact"]) == (
        "email",
        "周女士",
        "z***@example.com",
    )
    note = _wait(lambda: fakes.freshdesk.notes.get(str(ticket), []), "freshdesk note")[0]
    assert note["private"] is True and accepted["incident_id"] in note["body"] and "已启动" in note["body"]
    assert fakes.freshdesk.refused == []


def test_refused_freshdesk_webhooks_store_nothing(systems: tuple[Service, Fakes]) -> None:
    svc, _ = systems
    ticket = _ticket()
    for secret, why in ((None, "missing"), ("guessed", "wrong")):
        answer = _post_freshdesk(svc, _rule_body(ticket), secret)
        assert answer.status_code == 401 and why in answer.json()["error"], answer.text
    broken = b'{"ticket": {"id": "1", "subject": "a"b"}}'  # a quote the rule's placeholder did not escape
    raw = httpx.post(svc.url + "/api/integrations/freshdesk", content=broken,
                     headers={freshdesk.SECRET_HEADER: FD_SECRET}, timeout=30)  # fmt: skip
    no_category = _post_freshdesk(svc, _rule_body(ticket, tags="vip"))
    no_ticket = _post_freshdesk(svc, {"event": "created"})
    not_a_number = _post_freshdesk(svc, {"ticket": {**_rule_body(ticket)["ticket"], "id": "{{ticket.id}}"}})
    for answer, words in ((raw, "not JSON"), (no_category, "no category"), (no_ticket, "ticket"),
                          (not_a_number, "ticket.id")):  # fmt: skip
        assert answer.status_code == 422 and words in answer.json()["error"], answer.text
    recorded = _post_freshdesk(svc, _rule_body(ticket))
    assert recorded.status_code == 202 and recorded.json()["repeat"] is False

"""The systems' endpoints on a real ``incident serve``, driven as the vendors drive them.

Zendesk: the ticket event envelope of developer.zendesk.com/api-reference/webhooks/event-types/
ticket-events (``zen:event-type:ticket.created``, ``detail`` with id, subject, description,
requester_id, status, tags, via.channel), signed as developer.zendesk.com/documentation/webhooks/
verifying/ says; the write-back lands on a local Ticket API (tests/zendesk_fake.py). SF: the route
push form (msgData, timestamp, msgDigest) of the 丰桥 docs. Every refused request stores nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest

from incident.integrations import sf, zendesk
from tests.conftest import Inbox, Service, start_service, stop_service
from tests.zendesk_fake import EMAIL, TOKEN, FakeZendesk, fake_zendesk

SECRET, CHECKWORD, ALARM_TOKEN = "zd-signing-secret", "sf-checkword-123", "alarm-secret"


@pytest.fixture(scope="module")
def systems(
    prefect_api: str, inbox: Inbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, FakeZendesk]]:
    with fake_zendesk() as fake:
        env = {
            "INCIDENT_ZENDESK_SECRET": SECRET, "INCIDENT_ZENDESK_URL": fake.url,
            "INCIDENT_ZENDESK_EMAIL": EMAIL, "INCIDENT_ZENDESK_TOKEN": TOKEN,
            "INCIDENT_ALARM_TOKEN": ALARM_TOKEN, "INCIDENT_SF_CHECKWORD": CHECKWORD,
            "INCIDENT_NOTIFY_BACKOFF": "0.01", "INCIDENT_SF_PROMISE_HOURS": "0.001",  # 3.6 s
        }  # fmt: skip
        svc = start_service(tmp_path_factory.mktemp("systems"), prefect_api, inbox, env)
        try:
            yield svc, fake
        finally:
            stop_service(svc)


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


def _event(ticket: int, kind: str = "created", tags: list[str] | None = None) -> bytes:
    return json.dumps({
        "type": f"zen:event-type:ticket.{kind}", "account_id": 88888888, "id": str(uuid.uuid4()),
        "time": _stamp(), "zendesk_event_version": "2022-11-06", "subject": f"zen:ticket:{ticket}",
        "detail": {
            "id": str(ticket), "subject": "洗衣机漏水", "description": "新买的洗衣机第一次用就漏水",
            "requester_id": str(ticket * 7), "status": "OPEN", "tags": tags or ["product_quality", "vip"],
            "via": {"channel": "web_form"}, "created_at": _stamp(), "updated_at": _stamp(),
        },
        "event": {"meta": {"sequence": {"id": "seq", "position": 1}}},
    }).encode()  # fmt: skip


def _ticket() -> int:
    return int(time.time() * 1000) % 10**9 + uuid.uuid4().int % 1000


def _wait_notes(fake: FakeZendesk, ticket: int, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while len(notes := fake.notes(str(ticket))) < count:
        assert time.monotonic() < deadline, f"ticket {ticket} got {notes}"
        time.sleep(0.1)
    return notes


def test_a_ticket_event_is_one_feedback_and_gets_an_internal_note(
    systems: tuple[Service, FakeZendesk],
) -> None:
    svc, fake = systems
    ticket = _ticket()
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
    note = _wait_notes(fake, ticket)[0]
    assert note["public"] is False and accepted["incident_id"] in note["body"] and "三级" in note["body"]
    assert fake.refused == []


def test_the_trigger_body_of_the_readme(systems: tuple[Service, FakeZendesk]) -> None:
    """The body README "Zendesk" tells teams to paste, as Zendesk fills its placeholders."""
    svc, fake = systems
    ticket = _ticket()
    body = {"event": "created", "ticket": {
        "id": str(ticket), "subject": "上门安装迟到", "description": "约好上午，下午才来",
        "tags": "service_failure late", "status": "Open", "via": {"channel": "Email"},
        "requester": {"name": "王女士", "email": f"wang{ticket}@example.com"},
    }}  # fmt: skip
    answer = _post_zendesk(svc, json.dumps(body, ensure_ascii=False).encode())
    assert answer.status_code == 202, answer.text
    assert answer.json()["category"] == "service_failure"
    _wait_notes(fake, ticket)


def test_refused_webhooks_store_nothing(systems: tuple[Service, FakeZendesk]) -> None:
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


def _sf_form(items: list[dict[str, str]], checkword: str = CHECKWORD, ms: int | None = None) -> str:
    msg = json.dumps({"Body": {"WaybillRoute": items}}, ensure_ascii=False)
    stamp = str(ms if ms is not None else int(time.time() * 1000))
    form = {"partnerID": "TEST", "requestID": str(uuid.uuid4()), "serviceCode": "RoutePushService",
            "timestamp": stamp, "msgData": msg, "msgDigest": sf.digest(msg, stamp, checkword)}  # fmt: skip
    return urlencode(form)


def test_sf_route_push(systems: tuple[Service, FakeZendesk]) -> None:
    svc, _ = systems
    url = svc.url + "/api/integrations/sf"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    scan = {"id": "9", "mailno": f"SF{_ticket()}", "acceptTime": "2026-12-02 09:00:00", "opCode": "50",
            "remark": "已收取快件 +加急"}  # fmt: skip
    ok = httpx.post(url, content=_sf_form([scan]), headers=headers, timeout=30)
    assert ok.status_code == 200 and ok.json()["return_code"] == "0000" and ok.json()["routes"] == 1
    forged = httpx.post(url, content=_sf_form([scan], checkword="guess"), headers=headers, timeout=30)
    old = int((time.time() - 3600) * 1000)
    replay = httpx.post(url, content=_sf_form([scan], ms=old), headers=headers, timeout=30)
    bad = httpx.post(url, content=_sf_form([{**scan, "acceptTime": "soon"}]), headers=headers, timeout=30)
    assert forged.status_code == 401 and replay.status_code == 401 and "stale" in replay.json()["error"]
    assert bad.status_code == 422 and "acceptTime" in bad.json()["error"]


def test_alarms(systems: tuple[Service, FakeZendesk], tmp_path: Path) -> None:
    svc, _ = systems
    url = svc.url + "/api/alarms"
    batch = f"B-{uuid.uuid4().hex[:8]}"
    body = {"source": "quality", "category": "product_quality", "summary": "批次抽检不合格",
            "product_model": "WM-1", "batch": batch}  # fmt: skip
    answer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {ALARM_TOKEN}"}, timeout=30)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["source"] == "quality" and accepted["opened"] is True
    assert svc.api("GET", f"/api/feedback/{accepted['feedback_id']}").json()["kind"] == "alarm"
    by_service_token = svc.api("POST", "/api/alarms", json={**body, "summary": "又一批"})
    assert by_service_token.status_code == 202
    assert by_service_token.json()["incident_id"] == accepted["incident_id"]  # same model and batch
    wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401
    for change, field in (({"source": "weather"}, "source"), ({"category": "nonsense"}, "category"),
                          ({"kind": "complaint"}, "kind")):  # fmt: skip
        refused = svc.api("POST", "/api/alarms", json={**body, **change})
        assert refused.status_code == 422 and field in refused.json()["error"], refused.text
    alarm_token_elsewhere = httpx.get(
        svc.url + "/api/incidents", headers={"Authorization": f"Bearer {ALARM_TOKEN}"}
    )
    assert alarm_token_elsewhere.status_code == 401  # the alarm secret opens /api/alarms only


def test_the_workers_sweep_raises_the_late_order_alarm(systems: tuple[Service, FakeZendesk]) -> None:
    """The promise (3.6 s here) passes with no delivered scan: the served worker's sweep raises it."""
    svc, _ = systems
    waybill = f"SF{_ticket()}"
    now_beijing = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    scan = {
        "id": "1",
        "mailno": waybill,
        "orderid": f"ORD-{waybill}",
        "acceptTime": now_beijing,
        "acceptAddress": f"深圳 {waybill} 中转场",
        "opCode": "30",
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    pushed = httpx.post(
        svc.url + "/api/integrations/sf", content=_sf_form([scan]), headers=headers, timeout=30
    )
    assert pushed.status_code == 200, pushed.text
    deadline = time.monotonic() + 45
    while True:
        found = [i for i in svc.api("GET", "/api/incidents").json()["incidents"] if waybill in i["summary"]]
        if found:
            break
        assert time.monotonic() < deadline, f"no alarm for {waybill}"
        time.sleep(0.5)
    assert found[0]["category"] == "service_failure" and found[0]["customers"] == 1

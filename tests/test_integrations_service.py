"""The adapters' own logic against a real database and a local Zendesk (tests/zendesk_fake.py).

Signatures are checked against the vendors' documented examples: Zendesk's formula
(developer.zendesk.com/documentation/webhooks/verifying/) and SF's 数字签名 example (丰桥 docs:
``{"language":"zh-CN","orderId":"QIAO-20200618-004"}`` + ``12312334453453`` + its checkWord gives
``IIKJtuLVzoFTu4kHI8M8vA==``). The late-order check runs with an injected clock.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from incident.errors import BadInput, Conflict
from incident.feedback import service as intake
from incident.feedback.service import FeedbackIn
from incident.integrations import registry, sf, zendesk
from incident.integrations import service as links
from models import Delivery, Feedback, Incident, IntegrationLink, Solution, Waybill, session_scope, utcnow
from tests.zendesk_fake import EMAIL, TOKEN, fake_zendesk


def test_sf_digest_matches_the_documented_example() -> None:
    msg = '{"language":"zh-CN","orderId":"QIAO-20200618-004"}'
    assert sf.digest(msg, "12312334453453", "fjcg5PGKaNpPSHFAZ4QsCOkV71R3zVci") == "IIKJtuLVzoFTu4kHI8M8vA=="
    assert sf.digest(msg, "12312334453453", "another-checkword") != "IIKJtuLVzoFTu4kHI8M8vA=="


def test_zendesk_signature_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENT_ZENDESK_SECRET", "s3cret")
    body, now = b'{"a": 1}', datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    stamp = "2026-12-02T11:58:00Z"
    good = {zendesk.SIGNATURE: zendesk.sign("s3cret", stamp, body), zendesk.TIMESTAMP: stamp}
    zendesk.verify(good, body, now)  # two minutes old: inside the 300 s window
    for headers, why in (
        ({}, "missing"),
        ({**good, zendesk.SIGNATURE: zendesk.sign("other", stamp, body)}, "wrong"),
        ({**good, zendesk.TIMESTAMP: "2026-12-02T11:58:01Z"}, "wrong"),  # the timestamp is signed
    ):
        with pytest.raises(zendesk.Unsigned, match=why):
            zendesk.verify(headers, body, now)
    with pytest.raises(zendesk.Unsigned, match="stale"):
        zendesk.verify(good, body, now + timedelta(minutes=10))


def test_zendesk_categories_from_tags_and_the_mapping_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = tmp_path / "zendesk.yaml"
    mapping.write_text(
        "tags: {broken: product_quality}\nfields: {'360001': {late_engineer: service_failure}}\n"
    )
    monkeypatch.setenv("INCIDENT_ZENDESK_MAP", str(mapping))
    assert zendesk.category_of(["vip", "special_scenario"], []) == "special_scenario"
    assert zendesk.category_of(["broken"], []) == "product_quality"
    assert zendesk.category_of([], [{"id": 360001, "value": "late_engineer"}]) == "service_failure"
    with pytest.raises(BadInput, match="no category"):
        zendesk.category_of(["vip"], [{"id": 360001, "value": "other"}, "not-a-field", {"id": [1]}])


def _opened(summary: str) -> tuple[int, str]:
    """A real incident from intake, linked to a ticket as the webhook links it."""
    ticket = str(abs(hash(summary)) % 10**8)
    result = intake.record(FeedbackIn(category="service_failure", summary=summary, service=summary))
    link_id, known = links.claim(zendesk.SYSTEM, ticket)
    assert known is None
    links.recorded(link_id, result.feedback_id, result.incident_id)
    assert result.incident_id is not None
    return link_id, ticket


def _zendesk_env(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name, value in (("URL", url), ("EMAIL", EMAIL), ("TOKEN", TOKEN)):
        monkeypatch.setenv(f"INCIDENT_ZENDESK_{name}", value)
    monkeypatch.setenv("INCIDENT_NOTIFY_BACKOFF", "0.01")
    monkeypatch.setenv("INCIDENT_TZ", "Asia/Shanghai")


def test_write_back_opens_then_tells_the_close_once(any_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_zendesk() as fake:
        _zendesk_env(monkeypatch, fake.url)
        link_id, ticket = _opened("engineer never came")
        assert asyncio.run(zendesk.sweep()) == 1
        assert asyncio.run(zendesk.sweep()) == 0  # nothing changed: nothing told
        with session_scope() as s:
            link = s.get_one(IntegrationLink, link_id)
            inc = s.get_one(Incident, link.incident_id)
            incident_id = inc.id
            inc.status, inc.resolved_at, inc.closed_at = "closed", utcnow(), utcnow()
            who = {"proposed_by": "cs_manager", "approver_role": "cs_director", "proposed_at": utcnow()}
            solution = {"round": 1, "kind": "compensate", "note": "延保半年", "status": "approved"}
            s.add(Solution(incident_id=inc.id, **solution, **who))
        assert asyncio.run(zendesk.sweep()) == 1
        notes = fake.notes(ticket)
    assert [n["public"] for n in notes] == [False, False]
    assert incident_id in notes[0]["body"] and "三级" in notes[0]["body"] and "前联系客户" in notes[0]["body"]
    assert "已结案" in notes[1]["body"] and "解决" in notes[1]["body"]
    assert "解决方案：补偿（如延长保修 6 个月）（延保半年）" in notes[1]["body"]
    assert fake.refused == []


def test_write_back_is_retried_then_logged_and_backs_off(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_zendesk() as fake:
        _zendesk_env(monkeypatch, fake.url)
        fake.fail_next = 2  # two 503s, then it answers: delivered on the third attempt
        link_id, ticket = _opened("refund never arrived")
        assert asyncio.run(zendesk.write_back(link_id)) is True
        monkeypatch.setenv("INCIDENT_NOTIFY_RETRIES", "2")
        second, ticket2 = _opened("installer was rude")
        fake.fail_next = 100
        assert asyncio.run(zendesk.write_back(second)) is False
        left = fake.fail_next
        assert asyncio.run(zendesk.sweep()) == 0  # backing off: not tried again yet
        assert fake.fail_next == left
        later = utcnow() + timedelta(minutes=3)
        fake.fail_next = 0
        assert asyncio.run(zendesk.sweep(later)) == 1
        assert len(fake.notes(ticket)) == 1 and len(fake.notes(ticket2)) == 1
    with session_scope() as s:
        rows = s.scalars(
            select(Delivery).where(Delivery.notice == "zendesk_note").order_by(Delivery.id)
        ).all()
        assert [(r.status, r.attempts) for r in rows] == [("sent", 3), ("failed", 2), ("sent", 1)]
        assert "503" in (rows[1].error or "") and TOKEN not in rows[1].url


def test_wrong_credentials_fail_without_retrying(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_zendesk() as fake:
        _zendesk_env(monkeypatch, fake.url)
        monkeypatch.setenv("INCIDENT_ZENDESK_TOKEN", "not-the-token")
        link_id, _ = _opened("wrong token ticket")
        assert asyncio.run(zendesk.write_back(link_id)) is False
        assert fake.refused == ["auth"] and fake.puts == []


def _push(items: list[dict[str, str]]) -> list[dict[str, object]]:
    return sf.routes(json.dumps({"Body": {"WaybillRoute": items}}))


def test_late_waybill_raises_one_alarm_on_the_injected_clock(
    any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENT_SF_PROMISE_HOURS", "48")
    scan = {"id": "1", "acceptTime": "2026-12-01 09:00:00", "acceptAddress": "深圳", "opCode": "50"}
    sf.record(_push([{**scan, "mailno": "SF100", "orderid": "ORD-late", "remark": "顺丰速运 已收取快件"}]))
    sf.record(_push([{**scan, "mailno": "SF200"}, {**scan, "mailno": "SF200", "opCode": "80",
                                                   "acceptTime": "2026-12-02 10:00:00"}]))  # fmt: skip
    first_scan = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 Beijing time
    assert sf.late(first_scan + timedelta(hours=47, minutes=59)) == 0
    assert sf.late(first_scan + timedelta(hours=48, minutes=1)) == 1  # SF200 was delivered: no alarm
    assert sf.late(first_scan + timedelta(hours=60)) == 0  # raised once
    with session_scope() as s:
        bill = s.get_one(Waybill, "SF100")
        fb = s.get_one(Feedback, bill.alarm_feedback_id)
        assert (fb.kind, fb.category, fb.channel, fb.order_no) == (
            "alarm",
            "service_failure",
            "internal",
            "ORD-late",
        )
        assert fb.incident_id is not None and "SF100" in fb.summary
        assert s.get_one(Waybill, "SF200").delivered_at == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def test_bad_route_pushes_are_refused_whole() -> None:
    for msg, why in (
        ("{", "not JSON"),
        ('{"Body": {}}', "WaybillRoute"),
        ('{"Body": {"WaybillRoute": [{}]}}', "mailno"),
    ):
        with pytest.raises(BadInput, match=why):
            sf.routes(msg)
    with pytest.raises(BadInput, match="acceptTime"):
        _push([{"mailno": "SF1", "acceptTime": "yesterday"}])


def test_a_teams_own_adapter_is_found_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What README "Systems" tells a team to do: a package of its own with an entry point, no fork."""
    (tmp_path / "team_adapter.py").write_text(
        "from incident.integrations.registry import Adapter\n"
        "async def _sweep(now):\n    return 7\n"
        "ADAPTER = Adapter('team', sweep=_sweep, supports='a test')\n"
    )
    info = tmp_path / "team_adapter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: team-adapter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[incident.integrations]\nteam = team_adapter:ADAPTER\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = [a.name for a in registry.adapters()]
    assert names == ["alarms", "knowledge", "sf", "team", "zendesk"]
    counts = asyncio.run(registry.sweep_all())
    assert counts["team"] == 7
    sys.modules.pop("team_adapter", None)


def test_two_deliveries_of_one_ticket_meet_at_the_claim(any_db: str) -> None:
    """The second waits (409: Zendesk retries); a claim whose delivery died is taken over after a while."""
    link_id, known = links.claim(zendesk.SYSTEM, "424242")
    assert known is None and links.known(zendesk.SYSTEM, "424242") is None
    with pytest.raises(Conflict, match="another delivery"):
        links.claim(zendesk.SYSTEM, "424242")
    later = utcnow() + links.CLAIM + timedelta(seconds=1)
    assert links.claim(zendesk.SYSTEM, "424242", later) == (link_id, None)
    links.recorded(link_id, "FB-1", None)
    assert links.claim(zendesk.SYSTEM, "424242") == (link_id, "FB-1")
    links.release(link_id)
    assert links.claim(zendesk.SYSTEM, "424242")[1] is None  # released: recorded anew

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
from incident.feedback.inputs import FeedbackIn
from incident.integrations import registry, sf, writeback, zendesk
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


def test_a_mapping_file_is_checked_when_the_settings_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing or wrong INCIDENT_ZENDESK_MAP is one line at start-up, not a 500 on every webhook;
    one removed while the service runs answers 503 (Zendesk retries) naming it."""
    from incident import settings
    from incident.errors import Unavailable

    monkeypatch.setenv("INCIDENT_ZENDESK_MAP", str(tmp_path / "missing.yaml"))
    with pytest.raises(
        settings.SettingsError, match=r"^INCIDENT_ZENDESK_MAP='.*missing.yaml': .*cannot read"
    ):
        settings.get()
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- product_quality\n")
    monkeypatch.setenv("INCIDENT_FRESHDESK_MAP", str(wrong))
    monkeypatch.setenv("INCIDENT_ZENDESK_MAP", str(wrong))
    with pytest.raises(settings.SettingsError, match="INCIDENT_ZENDESK_MAP=.*a YAML mapping"):
        settings.get()
    good = tmp_path / "good.yaml"
    good.write_text("tags: {broken: product_quality}\n")
    monkeypatch.setenv("INCIDENT_ZENDESK_MAP", str(good))
    monkeypatch.delenv("INCIDENT_FRESHDESK_MAP")
    assert zendesk.category_of(["broken"], None) == "product_quality"
    good.unlink()
    with pytest.raises(Unavailable, match="INCIDENT_ZENDESK_MAP .*good.yaml cannot be read"):
        zendesk.category_of(["broken"], None)


def test_via_types_and_via_ids_are_our_channels() -> None:
    """developer.zendesk.com/documentation/ticketing/reference-guides/via-types: a type or its id."""
    cases = {
        "mail": "email", 4: "email", "4": "email", "web_form": "web", 0: "web", "web_service": "internal",
        5: "internal", "voicemail": "phone", 33: "phone", "phone_call_inbound": "phone", 34: "phone",
        "phone_call_outbound": "phone", "text_message": "phone", 57: "phone", "twitter_dm": "social",
        26: "social", "facebook_message": "social", 41: "social", "facebook_post": "social",
        "mobile_sdk": "app", "Phone call (inbound)": "phone", "Email": "email", "a_new_type": "web",
    }  # fmt: skip
    for via, ours in cases.items():
        assert zendesk.channel_of({"channel": via}) == ours, via
    assert zendesk.channel_of(None) == "web"


def test_a_ticket_whose_recording_died_after_intake_is_not_recorded_twice(any_db: str) -> None:
    """The feedback was stored but the link never learnt it (the process died in between): the next
    delivery after the claim's minute, and the sweep's repair, find it by its ``order``."""
    ticket = "777001"
    body = FeedbackIn(
        category="product_quality", summary="漏水", order=links.order_ref(zendesk.SYSTEM, ticket)
    )
    link_id, known = links.claim(zendesk.SYSTEM, ticket)
    result = intake.record(body)  # ... and then nothing: links.recorded never ran
    later = utcnow() + links.CLAIM + timedelta(seconds=1)
    assert links.claim(zendesk.SYSTEM, ticket, later) == (link_id, result.feedback_id)
    assert links.known(zendesk.SYSTEM, ticket) == result.feedback_id
    other = "777002"
    link2, _ = links.claim(zendesk.SYSTEM, other)
    result2 = intake.record(body.model_copy(update={"order": links.order_ref(zendesk.SYSTEM, other)}))
    assert links.repair(zendesk.SYSTEM, utcnow()) == 0  # still within the claim's minute
    assert links.repair(zendesk.SYSTEM, later) == 1
    with session_scope() as s:
        link = s.get_one(IntegrationLink, link2)
        assert (link.feedback_id, link.incident_id) == (result2.feedback_id, result2.incident_id)
        assert s.query(Feedback).count() == 2


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


def test_the_first_note_of_a_ticket_that_joined_an_incident_says_so(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_zendesk() as fake:
        _zendesk_env(monkeypatch, fake.url)
        first, ticket = _opened("engineer late again")
        joined = intake.record(
            FeedbackIn(category="service_failure", summary="me too", service="engineer late again")
        )
        link_id, _ = links.claim(zendesk.SYSTEM, "5550001")
        links.recorded(link_id, joined.feedback_id, joined.incident_id)
        assert asyncio.run(zendesk.sweep()) == 2
        opened, second = fake.notes(ticket)[0]["body"], fake.notes("5550001")[0]["body"]
    assert opened.startswith(f"事件 {joined.incident_id} 已启动")
    assert second.startswith(f"本工单已并入事件 {joined.incident_id}") and "已启动" not in second
    monkeypatch.setenv("INCIDENT_LANG", "en")
    pending = links.Pending(first, "1", "INC1", 3, "response", True, None, None, None, opened=False)
    assert writeback.note_text(pending).startswith("Ticket joined incident INC1: ")


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


def test_a_long_order_id_is_cut_on_arrival_and_the_alarm_is_raised(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order id longer than a feedback keeps once broke every sweep's alarm batch (FeedbackIn.order)."""
    monkeypatch.setenv("INCIDENT_SF_PROMISE_HOURS", "1")
    scan = {"id": "1", "acceptTime": "2026-12-01 09:00:00", "opCode": "50"}
    sf.record(_push([{**scan, "mailno": "SF900", "orderid": "O" * 300}, {**scan, "mailno": "SF901"}]))
    assert sf.late(datetime(2026, 12, 1, 3, 0, tzinfo=UTC)) == 2
    with session_scope() as s:
        orders = sorted(s.scalars(select(Feedback.order_no).where(Feedback.kind == "alarm")))
    assert orders == ["O" * 100, "SF901"]


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
    assert names == ["alarms", "baidu", "freshdesk", "jd", "knowledge", "sf", "team", "zendesk"]
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

"""The polled systems against a real database and local vendors: JD's track (tests/jd_fake.py) and
Baidu's 舆情 tasks (tests/baidu_fake.py), each run as the worker's sweep runs it.

The signatures are held to the vendors' documents: Baidu's bce-auth-v1 to the worked example of
cloud.baidu.com/doc/Reference/s/njwvz1yfu (PUT /v1/test/myfolder/readme.txt …, AK "a"×32, SK "b"×32,
2015-04-27T08:23:49Z → d74a0436…); JD's and Baidu's fakes check every request from the documents'
text, not with our code.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from incident.feedback import service as intake
from incident.feedback.inputs import FeedbackIn
from incident.integrations import baidu, jd, logistics, opinion
from models import (
    Feedback,
    Incident,
    IntegrationLink,
    OpinionTask,
    TimelineEvent,
    Waybill,
    session_scope,
    utcnow,
)
from tests import baidu_fake, jd_fake
from tests.baidu_fake import FakeBaidu, fake_baidu
from tests.jd_fake import fake_jd


def test_the_bce_signature_matches_the_documented_example() -> None:
    headers = {"Host": "bj.bcebos.com", "Content-Type": "text/plain", "Content-Length": "8",
               "Content-Md5": "NFzcPqhviddjRNnSOGo4rw==", "x-bce-date": "2015-04-27T08:23:49Z"}  # fmt: skip
    url = "https://bj.bcebos.com/v1/test/myfolder/readme.txt?partNumber=9&uploadId=a44cc9bab11cbd156984767aad637851"
    at = datetime(2015, 4, 27, 8, 23, 49, tzinfo=UTC)
    signed = baidu.authorization("a" * 32, "b" * 32, "PUT", url, headers, at)
    prefix = "bce-auth-v1/" + "a" * 32 + "/2015-04-27T08:23:49Z/1800/"
    assert signed == prefix + "content-length;content-md5;content-type;host;x-bce-date/" + (
        "d74a04362e6a848f5b39b15421cb449427f419c95a480fd6b8cf9fc783e2999e"
    )
    assert baidu.authorization("a" * 32, "c" * 32, "PUT", url, headers, at) != signed


def _jd_env(monkeypatch: pytest.MonkeyPatch, url: str, secret: str = jd_fake.APP_SECRET) -> None:
    given = {"URL": url, "APP_KEY": jd_fake.APP_KEY, "APP_SECRET": secret,
             "ACCESS_TOKEN": jd_fake.ACCESS_TOKEN, "CUSTOMER_CODE": jd_fake.CUSTOMER}  # fmt: skip
    for name, value in given.items():
        monkeypatch.setenv(f"INCIDENT_JD_{name}", value)


def test_jd_tracks_are_polled_and_a_late_waybill_raises_one_alarm(
    any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now, promise = utcnow(), timedelta(hours=72)
    with fake_jd() as fake:
        _jd_env(monkeypatch, fake.url)
        fake.scan("JDV001", "分拣中心验货", "货物已到达【武汉分拣中心】", now - timedelta(hours=70))
        fake.scan("JDV002", "分拣中心验货", "货物已到达【北京分拣中心】", now - timedelta(hours=70))
        fake.scan("JDV002", "妥投", "货物已完成配送，感谢您选择京东物流", now - timedelta(hours=60))
        for waybill, shipped in (("JDV001", now - timedelta(hours=80)), ("JDV002", now - timedelta(hours=80)),
                                 ("JDV003", now)):  # fmt: skip
            logistics.register(jd.SYSTEM, waybill, f"ORD-{waybill}", shipped, promise)
        assert asyncio.run(jd.sweep(now)) == 3 + 1  # three tracks read, one alarm
        assert sorted(fake.asked) == ["JDV001", "JDV002", "JDV003"]
        assert asyncio.run(jd.sweep(now + timedelta(seconds=5))) == 0  # not due again yet, raised once
        assert len(fake.asked) == 3
    with session_scope() as s:
        late, delivered = s.get_one(Waybill, "JDV001"), s.get_one(Waybill, "JDV002")
        assert delivered.delivered_at is not None and delivered.alarm_feedback_id is None
        assert late.last_address == "武汉分拣中心" and late.last_op_code == "分拣中心验货"
        alarm = s.get_one(Feedback, late.alarm_feedback_id)
        assert (alarm.kind, alarm.category, alarm.order_no, alarm.region) == (
            "alarm", "service_failure", "ORD-JDV001", "武汉分拣中心",
        )  # fmt: skip
        assert (
            "京东物流运单 JDV001" in alarm.summary and s.get_one(Waybill, "JDV003").alarm_feedback_id is None
        )


def test_jd_refusing_the_signature_records_nothing(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_jd() as fake:
        _jd_env(monkeypatch, fake.url, secret="not-the-secret")
        fake.scan("JDV100", "妥投", "已签收", utcnow())
        logistics.register(jd.SYSTEM, "JDV100", None, utcnow(), timedelta(hours=72))
        assert asyncio.run(jd.sweep()) == 0
        assert fake.asked == []  # refused before it read the waybill (error_response 19)
    with session_scope() as s:
        assert s.get_one(Waybill, "JDV100").delivered_at is None


def _baidu_env(monkeypatch: pytest.MonkeyPatch, url: str, rate: float = 50, sk: str = baidu_fake.SK) -> None:
    for name, value in (("URL", url), ("AK", baidu_fake.AK), ("SK", sk), ("RATE", str(rate)),
                        ("POLL_SECONDS", "600")):  # fmt: skip
        monkeypatch.setenv(f"INCIDENT_BAIDU_{name}", value)


def _incident(model: str, batch: str, customer: str = "客户甲") -> str:
    body = FeedbackIn(category="product_quality", summary=f"{model} 漏水", product_model=model, batch=batch,
                      customer=customer)  # fmt: skip
    found = intake.record(body).incident_id
    assert found is not None
    return found


def _sweep(now: datetime) -> int:
    return asyncio.run(baidu.sweep(now))


def _task(fake: FakeBaidu, incident_id: str) -> int:
    task = fake.task_of(incident_id)
    assert task is not None, f"no task for {incident_id}: {fake.tasks}"
    return task


def test_a_negative_item_raises_the_incident_once(any_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = utcnow()
    with fake_baidu() as fake:
        _baidu_env(monkeypatch, fake.url)
        incident_id = _incident("WM-9", "B77")
        assert _sweep(now) == 0  # the task is created and read: nothing published yet
        task = _task(fake, incident_id)
        assert (
            fake.tasks[task]["requiredKeywords"] == ["WM-9", "B77"]
            and fake.tasks[task]["taskType"] == "PRODUCT"
        )
        fake.publish(task, "WM-9 洗衣机好评如潮", "https://news.example.com/good", "POSITIVE")
        fake.publish(task, "WM-9 洗衣机被曝批量漏水", "https://news.example.com/bad", "NEGATIVE")
        later = now + timedelta(minutes=11)
        assert _sweep(later) == 1
        assert _sweep(later + timedelta(minutes=11)) == 0  # read again (the overlap): the same item, once
    with session_scope() as s:
        incident = s.get_one(Incident, incident_id)
        assert incident.level == 1 and {"code": "media"} in incident.level_reasons
        alarm = s.scalars(
            select(Feedback).where(Feedback.incident_id == incident_id, Feedback.kind == "alarm")
        ).one()
        assert (alarm.media, alarm.evidence, alarm.channel) == (
            True,
            "https://news.example.com/bad",
            "social",
        )
        assert (alarm.product_model, alarm.batch) == ("WM-9", "B77")
        event = s.scalars(select(TimelineEvent).where(TimelineEvent.event == "media_exposure")).one()
        assert (event.incident_id, event.detail) == (incident_id, "https://news.example.com/bad")
        assert (
            s.scalar(
                select(func.count()).select_from(IntegrationLink).where(IntegrationLink.system == "baidu")
            )
            == 1
        )


def test_a_closed_incidents_task_is_deleted_and_its_items_do_nothing(
    any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    with fake_baidu() as fake:
        _baidu_env(monkeypatch, fake.url)
        incident_id = _incident("FR-1", "C1")
        _sweep(now)
        task = _task(fake, incident_id)
        fake.publish(task, "FR-1 冰箱起火", "https://news.example.com/fire", "NEGATIVE")
        with session_scope() as s:
            incident = s.get_one(Incident, incident_id)
            incident.status, incident.closed_at, incident.open_key = "closed", now, None
        item = fake.items[task][0]
        assert opinion.record(incident_id, item, now) == 0  # read before the task went: nothing either
        assert _sweep(now + timedelta(minutes=11)) == 0
        assert fake.deleted == [task]
    with session_scope() as s:
        assert s.get(OpinionTask, incident_id) is None
        assert s.scalar(select(func.count()).select_from(Feedback).where(Feedback.kind == "alarm")) == 0


def test_requests_keep_to_the_rate_and_a_pass_to_its_budget(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """20 requests a second at most; a pass makes ``rate x INCIDENT_SWEEP_SECONDS`` of them at most."""
    monkeypatch.setenv("INCIDENT_SWEEP_SECONDS", "0.3")
    now = utcnow()
    with fake_baidu() as fake:
        _baidu_env(monkeypatch, fake.url, rate=20)  # budget: 6 requests a pass
        incidents = [_incident(f"M{i}", f"B{i}", f"客户{i}") for i in range(5)]
        _sweep(now)  # five tasks created, one read
        assert len(fake.tasks) == 5 and len(fake.seen) == 6
        _sweep(now)  # the four reads left
        assert len(fake.seen) == 10 and all(fake.task_of(i) is not None for i in incidents)
        gaps = [b.at - a.at for a, b in zip(fake.seen, fake.seen[1:], strict=False)]
        assert min(gaps[:5] + gaps[6:]) >= 0.05, gaps  # within a pass: 1/20 s apart, as the fake counts


def test_a_task_baidu_refuses_is_tried_again_after_a_back_off(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    with fake_baidu() as fake:
        _baidu_env(monkeypatch, fake.url, sk="not-the-sk")
        incident_id = _incident("X-1", "Y1")
        assert _sweep(now) == 0
        assert fake.tasks == {} and len(fake.seen) == 1  # 401: an unsigned request is refused
        assert _sweep(now + timedelta(seconds=30)) == 0 and len(fake.seen) == 1  # backing off: not asked
        _baidu_env(monkeypatch, fake.url)
        _sweep(now + timedelta(minutes=3))
        assert fake.task_of(incident_id) is not None
    with session_scope() as s:
        assert s.get_one(OpinionTask, incident_id).task_id is not None

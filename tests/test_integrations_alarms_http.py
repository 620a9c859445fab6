"""Alarms on a real ``incident serve``: SF's pushed scans, JD's polled track, Baidu's media exposure and
``POST /api/alarms``, each raised by the served worker's sweep or the route as the vendors drive them.

SF: the route push form (msgData, timestamp, msgDigest) of the 丰桥 docs. JD: waybills registered on
``POST /api/integrations/jd``, their track read from tests/jd_fake.py (JOS). Baidu: the incident's
keyword task and its results on tests/baidu_fake.py (舆情 API). Every refused request stores nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx

from incident.feedback.inputs import MAX_TEXT
from incident.integrations import sf
from tests.conftest import ALARM_TOKEN, CHECKWORD, Fakes, Service

T = TypeVar("T")


def _unique() -> str:
    return uuid.uuid4().hex[:10].upper()


def _wait(found: Callable[[], T | None], what: str, seconds: float = 45) -> T:
    deadline = time.monotonic() + seconds
    while (value := found()) is None or value is False:
        assert time.monotonic() < deadline, what
        time.sleep(0.3)
    return value


def _incident_with(svc: Service, text: str) -> dict[str, Any] | None:
    found = [i for i in svc.api("GET", "/api/incidents").json()["incidents"] if text in i["summary"]]
    return found[0] if found else None


def _sf_form(items: list[dict[str, str]], checkword: str = CHECKWORD, ms: int | None = None) -> str:
    msg = json.dumps({"Body": {"WaybillRoute": items}}, ensure_ascii=False)
    stamp = str(ms if ms is not None else int(time.time() * 1000))
    form = {"partnerID": "TEST", "requestID": str(uuid.uuid4()), "serviceCode": "RoutePushService",
            "timestamp": stamp, "msgData": msg, "msgDigest": sf.digest(msg, stamp, checkword)}  # fmt: skip
    return urlencode(form)


def _push(svc: Service, form: str) -> httpx.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return httpx.post(svc.url + "/api/integrations/sf", content=form, headers=headers, timeout=30)


def test_sf_route_push(systems: tuple[Service, Fakes]) -> None:
    svc, _ = systems
    scan = {"id": "9", "mailno": f"SF{_unique()}", "acceptTime": "2026-12-02 09:00:00", "opCode": "50",
            "remark": "已收取快件 +加急"}  # fmt: skip
    ok = _push(svc, _sf_form([scan]))
    assert ok.status_code == 200 and ok.json()["return_code"] == "0000" and ok.json()["routes"] == 1
    forged = _push(svc, _sf_form([scan], checkword="guess"))
    replay = _push(svc, _sf_form([scan], ms=int((time.time() - 3600) * 1000)))
    bad = _push(svc, _sf_form([{**scan, "acceptTime": "soon"}]))
    assert forged.status_code == 401 and replay.status_code == 401 and "stale" in replay.json()["error"]
    assert bad.status_code == 422 and "acceptTime" in bad.json()["error"]


def test_the_workers_sweep_raises_the_late_order_alarm(systems: tuple[Service, Fakes]) -> None:
    """The promise (3.6 s here) passes with no delivered scan; an order id longer than a feedback keeps
    does not keep the alarm from being raised (it is cut on arrival)."""
    svc, _ = systems
    waybill = f"SF{_unique()}"
    now_beijing = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    scan = {"id": "1", "mailno": waybill, "orderid": "ORD-" + "9" * 300, "acceptTime": now_beijing,
            "acceptAddress": f"深圳 {waybill} 中转场", "opCode": "30"}  # fmt: skip
    assert _push(svc, _sf_form([scan])).status_code == 200
    found = _wait(lambda: _incident_with(svc, waybill), f"no alarm for {waybill}")
    assert found["category"] == "service_failure" and found["customers"] == 1
    (report,) = svc.show(found["incident_id"])["feedback"]
    assert report["order"] == ("ORD-" + "9" * 300)[:100] and report["kind"] == "alarm"


def test_a_registered_jd_waybill_is_polled_until_late(systems: tuple[Service, Fakes]) -> None:
    svc, fakes = systems
    waybill, now = f"JDV{_unique()}", datetime.now(UTC)
    fakes.jd.scan(waybill, "分拣中心验货", "货物已到达【成都青白江分拣中心】", now)
    registered = svc.api("POST", "/api/integrations/jd", json={"waybill": waybill, "order": f"O-{waybill}"})
    assert registered.status_code == 201, registered.text
    assert registered.json()["carrier"] == "jd" and registered.json()["order"] == f"O-{waybill}"
    found = _wait(lambda: _incident_with(svc, waybill), f"no alarm for {waybill}")
    assert waybill in fakes.jd.asked and "京东物流运单" in found["summary"]
    (report,) = svc.show(found["incident_id"])["feedback"]
    assert report["region"] == "成都青白江分拣中心" and report["order"] == f"O-{waybill}"
    naive = {"waybill": "JD1", "shipped_at": "2026-12-01T08:00"}  # no time zone: which 08:00?
    for body, field in (
        ({"waybill": "JD 1"}, "waybill"),
        (naive, "shipped_at"),
        ({"waybill": "JD1", "x": 1}, "x"),
    ):
        refused = svc.api("POST", "/api/integrations/jd", json=body)
        assert refused.status_code == 422 and field in refused.json()["error"], refused.text
    assert httpx.post(svc.url + "/api/integrations/jd", json={"waybill": "JD2"}).status_code == 401


def test_a_negative_media_item_raises_its_incident_to_level_1(systems: tuple[Service, Fakes]) -> None:
    """The served worker creates the incident's keyword task, reads it, and records the exposure."""
    svc, fakes = systems
    model, batch = f"WM-{_unique()}", f"B{_unique()}"
    report = {"category": "product_quality", "summary": "洗衣机漏电", "product_model": model, "batch": batch,
              "customer": "钱先生"}  # fmt: skip
    incident_id = svc.api("POST", "/api/feedback", json=report).json()["incident_id"]
    task = _wait(lambda: fakes.baidu.task_of(incident_id), f"no Baidu task for {incident_id}")
    assert set(fakes.baidu.tasks[task]["requiredKeywords"]) == {model, batch}
    link = f"https://news.example.com/{model}.html"
    fakes.baidu.publish(task, f"{model} 洗衣机被曝漏电", link, "POSITIVE")
    fakes.baidu.publish(task, f"{model} 洗衣机被曝漏电隐患", link, "NEGATIVE")
    shown = _wait(lambda: (s := svc.show(incident_id))["level"] == 1 and s, "not raised to level 1")
    exposures = [e for e in shown["timeline"] if e["event"] == "media_exposure"]
    assert [e["detail"] for e in exposures] == [link]
    assert {"code": "media"} in shown["level_reasons"]
    alarms = [f for f in shown["feedback"] if f["kind"] == "alarm"]
    assert len(alarms) == 1 and alarms[0]["channel"] == "social"


def test_alarms(systems: tuple[Service, Fakes]) -> None:
    svc, _ = systems
    url = svc.url + "/api/alarms"
    body = {"source": "quality", "category": "product_quality", "summary": "批次抽检不合格",
            "product_model": "WM-1", "batch": f"B-{_unique()}"}  # fmt: skip
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


def test_alarms_take_intake_tokens_only_and_long_summaries(systems: tuple[Service, Fakes]) -> None:
    svc, _ = systems
    tokens = {}
    for scope in ("intake", "metrics"):
        added = svc.api("POST", "/api/tokens", json={"name": f"{scope}-{_unique()}", "scope": scope})
        assert added.status_code == 201, added.text
        tokens[scope] = added.json()["token"]
    body = {"source": "logistics", "category": "service_failure", "summary": "物" * MAX_TEXT,
            "service": f"干线运输 {_unique()}"}  # fmt: skip
    metrics = svc.api("POST", "/api/alarms", token=tokens["metrics"], json=body)
    assert metrics.status_code == 403 and "metrics" in metrics.json()["error"]
    intake = svc.api("POST", "/api/alarms", token=tokens["intake"], json=body)
    assert intake.status_code == 202, intake.text  # a summary at the limit: its "[logistics] " is cut to fit
    summary = svc.show(intake.json()["incident_id"])["summary"]
    assert len(summary) == MAX_TEXT and summary.startswith("[logistics] 物物") and summary.endswith("…")
    too_long = svc.api(
        "POST", "/api/alarms", token=tokens["intake"], json={**body, "summary": "物" * (MAX_TEXT + 1)}
    )
    assert too_long.status_code == 422 and "summary" in too_long.json()["error"]

"""The monthly review's numbers, the trend chart and Prometheus' ``/metrics``.

Most tests insert ORM rows with chosen timestamps (on SQLite and PostgreSQL) so every figure is known:

| inc | identified | category, level | contact | resolved | problem key / root cause | surveys |
|---|---|---|---|---|---|---|
| A | 2026-09 | product_quality L3 | 60 min | 20 h | p30+b1 / "Separator defect at supplier S." | – |
| B | 2026-10 | product_quality L1 | 20 min | 10 h | p30+b1 (repeats A) | 5.0, 3.0 |
| C | 2026-10 | service_failure L2 | 40 min | 30 h | "SEPARATOR  defect, at supplier S" (A) | 4.33, 4.0 |
| D | 2026-10 | special_scenario L3 | 90 min | – | a standalone report | – |
| E | 10-31 23:30 UTC (Nov 1 in Beijing) | product_quality L3 | – | – | x9+b7 | – |
| F | 2026-11 | product_quality L2 | 10 min | – | p30+b1 (repeats A) | – |

Missed deadlines: A postmortem (September), B approval, C contact + progress, D contact; B's contact met.
"""

from __future__ import annotations

import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from incident.errors import BadInput
from incident.metrics import prometheus
from incident.metrics import service as metrics
from models import (
    CauseAnalysis,
    Deadline,
    Delivery,
    Feedback,
    Incident,
    Survey,
    TimelineEvent,
    session_scope,
)
from tests.conftest import Service

P30 = "product_quality|product_model=p30|batch=b1"


def t(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def add_incident(
    s: object,
    inc_id: str,
    category: str,
    level: int,
    identified: datetime,
    key: str,
    *,
    contact_min: float | None = None,
    resolved_h: float | None = None,
    root: str | None = None,
    surveys: tuple[float, ...] = (),
    missed: tuple[str, ...] = (),
    met: tuple[str, ...] = (),
    status: str = "closed",
) -> None:
    s.add(  # type: ignore[attr-defined]
        Incident(
            id=inc_id,
            category=category,
            level=level,
            status=status,
            correlation_key=key,
            open_key=None if status == "closed" else key,
            summary=f"incident {inc_id}",
            customers=1,
            level_reasons=[],
            identified_at=identified,
            first_contact_at=identified + timedelta(minutes=contact_min) if contact_min is not None else None,
            resolved_at=identified + timedelta(hours=resolved_h) if resolved_h is not None else None,
            closed_at=None,
        )
    )
    s.flush()  # type: ignore[attr-defined]
    rows: list[object] = [
        TimelineEvent(incident_id=inc_id, at=identified, event="identified", by="phone", detail=f"L{level}")
    ]
    if root:
        rows.append(
            CauseAnalysis(
                incident_id=inc_id,
                at=identified,
                by="x",
                owner_group="technical_support",
                root=root,
                direct="d",
                stage="production",
            )
        )
    for round_, score in enumerate(surveys, 1):  # one survey per follow-up round (unique)
        rows.append(
            Survey(
                incident_id=inc_id,
                round=round_,
                at=identified,
                by="cs",
                speed=4,
                result=4,
                attitude=4,
                score=score,
            )
        )
    for kind, state in [(k, "missed") for k in missed] + [(k, "met") for k in met]:
        rows.append(
            Deadline(incident_id=inc_id, kind=kind, due_at=identified, state=state, created_at=identified)
        )
    s.add_all(rows)  # type: ignore[attr-defined]


@pytest.fixture
def review(any_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("INCIDENT_TZ", "UTC")
    # id, category, level, identified, problem key, status, first contact (min), resolved (h), root cause
    rows = [
        ("A", "product_quality", 3, t(9, 10, 8), P30, "closed", 60, 20, "Separator defect at supplier S."),
        ("B", "product_quality", 1, t(10, 2), P30, "closed", 20, 10, None),
        ("C", "service_failure", 2, t(10, 5), "service_failure|service=x|region=e", "closed", 40, 30,
         "SEPARATOR  defect, at supplier S"),
        ("D", "special_scenario", 3, t(10, 20), "special_scenario|feedback=FB1", "handling", 90, None, None),
        ("E", "product_quality", 3, t(10, 31, 23, 30), "product_quality|x9|b7", "response", None, None, None),
        ("F", "product_quality", 2, t(11, 3), P30, "handling", 10, None, None),
    ]  # fmt: skip
    surveys = {"B": (5.0, 3.0), "C": (4.33, 4.0)}
    missed = {"A": ("postmortem",), "B": ("approval",), "C": ("contact", "progress"), "D": ("contact",)}
    with session_scope() as s:
        for inc_id, category, level, identified, key, status, contact, resolved, root in rows:
            add_incident(
                s,
                inc_id,
                category,
                level,
                identified,
                key,
                status=status,
                contact_min=contact,
                resolved_h=resolved,
                root=root,
                surveys=surveys.get(inc_id, ()),
                missed=missed.get(inc_id, ()),
                met=("contact",) if inc_id == "B" else (),
            )
    return any_db


def test_month_review_times_satisfaction_and_misses(review: str) -> None:
    m = metrics.summary("2026-10")
    assert m["incidents"] == 4 and m["open"] == 2
    assert m["by_category"] == {"product_quality": 2, "service_failure": 1, "special_scenario": 1}
    assert m["by_level"] == {"1": 1, "2": 1, "3": 2}
    assert (m["contacted"], m["response_minutes_p50"], m["response_minutes_p90"]) == (3, 40.0, 80.0)
    assert (m["resolved"], m["handling_hours_p50"], m["handling_hours_p90"]) == (2, 20.0, 28.0)
    sat = m["satisfaction"]
    assert (sat["surveys"], sat["good"], sat["share"]) == (4, 3, 0.75)
    assert sat["by_level"]["1"] == {"surveys": 2, "good": 1, "share": 0.5, "target": 0.9, "met": False}
    assert sat["by_level"]["2"] == {"surveys": 2, "good": 2, "share": 1.0, "target": 0.85, "met": True}
    assert sat["by_level"]["3"] == {"surveys": 0, "good": 0, "share": None, "target": 0.8, "met": None}
    assert m["missed_deadlines"] == {"total": 4, "by_kind": {"approval": 1, "contact": 2, "progress": 1}}


def test_recurrence_by_problem_key_and_by_normalised_root_cause(review: str) -> None:
    october = metrics.summary("2026-10")
    assert october["recurrence_rate"] == 0.5
    assert {(r["incident_id"], r["repeats"]) for r in october["recurrences"]} == {("B", "A"), ("C", "A")}
    by_cause = next(r for r in october["recurrences"] if r["incident_id"] == "C")
    assert by_cause["problem"] == "root cause: separator defect at supplier s"
    top = [(r["problem"], r["incident_ids"]) for r in october["top_recurring"]]
    assert top == [  # two each; the later one first; F (November) not yet counted
        ("root cause: separator defect at supplier s", ["A", "C"]),
        ("product_quality: product_model=p30, batch=b1", ["A", "B"]),
    ]
    everything = metrics.summary()
    assert everything["month"] is None and everything["incidents"] == 6
    assert everything["recurrence_rate"] == 0.5  # B, C and F of six
    assert everything["top_recurring"][0]["incident_ids"] == ["A", "B", "F"]
    november = metrics.summary("2026-11")
    assert november["incidents"] == 1 and november["recurrence_rate"] == 1.0
    assert november["missed_deadlines"] == {"total": 0, "by_kind": {}}
    assert metrics.summary("2026-08")["recurrence_rate"] is None  # no incidents, no rate


def test_months_follow_incident_tz(review: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENT_TZ", "Asia/Shanghai")
    assert metrics.summary("2026-10")["incidents"] == 3  # E was identified on November 1st, 07:30 there
    assert metrics.summary("2026-11")["incidents"] == 2
    assert metrics.summary("2026-11")["timezone"] == "Asia/Shanghai"


def test_trend_and_chart_png(review: str, tmp_path: Path) -> None:
    trend = metrics.summary("2026-11")["trend"]
    assert [r["month"] for r in trend][:2] == ["2025-12", "2026-01"] and trend[-1]["month"] == "2026-11"
    by_month = {r["month"]: r for r in trend}
    assert by_month["2026-09"]["incidents"] == 1 and by_month["2026-10"]["incidents"] == 4
    assert by_month["2026-10"]["by_level"] == {"1": 1, "2": 1, "3": 2}
    assert by_month["2026-10"]["response_minutes_p50"] == 40.0
    png = metrics.monthly_chart_png(12, end="2026-11")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (900, 420) and len(png) > 20_000
    (tmp_path / "chart.png").write_bytes(png)
    assert len(metrics.monthly_chart_png()) > 10_000  # default: the 12 months up to now
    with pytest.raises(BadInput):
        metrics.monthly_chart_png(0)


def test_bad_month_is_refused(review: str) -> None:
    for bad in ("2026-13", "2026-1", "october"):
        with pytest.raises(BadInput, match="2026-11"):
            metrics.summary(bad)


def test_percentile_interpolates_between_ranks() -> None:
    assert metrics.percentile([], 0.5) is None
    assert metrics.percentile([7.0], 0.9) == 7.0
    assert metrics.percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert metrics.percentile([40.0, 10.0, 30.0, 20.0], 0.9) == pytest.approx(37.0)
    assert metrics.normalize_cause("  Ｓeparator—defect，供应商S ") == "separator defect 供应商s"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_numbers_come_from_the_database(review: str) -> None:
    with session_scope() as s:
        s.add(TimelineEvent(incident_id="B", at=t(10, 2, 1), event="level_raised", by="x", detail="L3 → L1"))
        for status in ("sent", "sent", "failed"):
            s.add(
                Delivery(
                    incident_id="B",
                    notice="incident_opened",
                    role="pr",
                    url="json://x",
                    status=status,
                    attempts=1,
                    title="t",
                    created_at=t(10, 2),
                )
            )
        for n, seconds in enumerate((0.2, 0.7, 40.0)):
            s.add(
                Feedback(
                    id=f"FB2026100200{n}",
                    incident_id="B",
                    kind="complaint",
                    channel="app",
                    summary="s",
                    customer_key=f"k{n}",
                    received_at=t(10, 2),
                    handled_at=t(10, 2) + timedelta(seconds=seconds),
                )
            )
    got = samples(prometheus.exposition().decode())
    assert got[("incident_incidents_opened_total", (("category", "product_quality"), ("level", "3")))] == 2
    assert got[("incident_incidents_opened_total", (("category", "product_quality"), ("level", "1")))] == 1
    assert got[("incident_open_incidents", (("level", "2"),))] == 1  # F; C is closed
    assert got[("incident_open_incidents", (("level", "3"),))] == 2  # D and E
    assert got[("incident_open_incidents", (("level", "1"),))] == 0
    assert got[("incident_level_raises_total", (("to_level", "1"),))] == 1
    assert got[("incident_deadlines_missed_total", (("kind", "contact"),))] == 2
    assert got[("incident_deadlines_missed_total", (("kind", "postmortem"),))] == 1
    assert got[("incident_notices_total", (("notice", "incident_opened"), ("status", "failed")))] == 1
    assert got[("incident_notices_total", (("notice", "incident_opened"), ("status", "sent")))] == 2
    assert got[("incident_feedback_accepted_total", (("channel", "app"), ("kind", "complaint")))] == 3
    assert got[("incident_intake_latency_seconds_bucket", (("le", "0.25"),))] == 1
    assert got[("incident_intake_latency_seconds_bucket", (("le", "1.0"),))] == 2
    assert got[("incident_intake_latency_seconds_count", ())] == 3
    assert got[("incident_intake_latency_seconds_sum", ())] == pytest.approx(40.9)
    assert got[("incident_first_contact_seconds_bucket", (("le", "1800.0"),))] == 2  # F 10 min, B 20 min
    assert got[("incident_first_contact_seconds_count", ())] == 5


# --- through the running service ----------------------------------------------------------------


def report(service: Service, region: str, *extra: str) -> dict[str, Any]:
    return service.cli_json(
        "report",
        "--category",
        "service_failure",
        "--summary",
        "technician never came",
        "--service",
        "repair-visit",
        "--region",
        region,
        *extra,
    )


def test_scrape_after_real_incidents(service: Service, tmp_path: Path) -> None:
    assert httpx.get(service.url + "/metrics").status_code == 401  # the API's bearer token is needed
    before = samples(service.api("GET", "/metrics").text)
    region = f"north-{tmp_path.name[-12:]}"
    inc = report(service, region, "--contact", "13700000001")["incident_id"]
    raised = report(service, region, "--customers", "20", "--contact", "13700000002", "--channel", "app")
    assert raised["incident_id"] == inc and raised["level"] == 2
    service.wait_for_point(inc, "contact")

    def delta(now: dict[Any, float], name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return now.get(key, 0.0) - before.get(key, 0.0)

    deadline = time.monotonic() + 60
    while True:  # both feedback runs done (handled_at set) and their notices logged
        response = service.api("GET", "/metrics")
        after = samples(response.text)
        if delta(after, "incident_intake_latency_seconds_count") >= 2 and delta(
            after, "incident_notices_total", notice="level_raised", status="sent"
        ):
            break
        assert time.monotonic() < deadline, "feedback runs not done within 60 s"
        time.sleep(0.3)
    assert response.headers["content-type"].startswith("text/plain")
    assert delta(after, "incident_incidents_opened_total", level="3", category="service_failure") == 1
    assert delta(after, "incident_level_raises_total", to_level="2") == 1
    assert delta(after, "incident_feedback_accepted_total", kind="complaint", channel="phone") == 1
    assert delta(after, "incident_feedback_accepted_total", kind="complaint", channel="app") == 1
    assert delta(after, "incident_notices_total", notice="incident_opened", status="sent") >= 2
    assert delta(after, "incident_intake_latency_seconds_count") == 2
    assert after[("incident_open_incidents", (("level", "2"),))] >= 1


def test_metrics_cli_and_api(service: Service, tmp_path: Path) -> None:
    report(service, f"west-{tmp_path.name[-12:]}")
    month = metrics.current_month()
    chart = tmp_path / "trend.png"
    data = service.cli_json("metrics", "--month", month, "--chart", str(chart))
    for key in ("incidents", "response_minutes_p50", "handling_hours_p50", "satisfaction", "recurrence_rate"):
        assert key in data
    assert data["month"] == month and data["incidents"] >= 1 and data["by_category"]["service_failure"] >= 1
    assert data["chart"] == str(chart) and chart.read_bytes()[:4] == b"\x89PNG"
    assert service.cli_json("metrics")["incidents"] >= data["incidents"]
    assert (
        service.api("GET", "/api/metrics", params={"month": month}).json()["incidents"] == data["incidents"]
    )
    png = service.api("GET", "/api/metrics/chart.png", params={"months": 6})
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    human = service.cli("metrics", "--month", month)
    assert "响应时间" in human.stdout and "重复发生率" in human.stdout and "None" not in human.stdout
    bad = service.cli("metrics", "--month", "2026-13", "--json", check=False)
    assert bad.returncode == 2 and "2026-11" in bad.stderr
    wrong = service.api("GET", "/api/metrics", params={"month": "13/2026"})
    assert wrong.status_code == 422 and "2026-11" in wrong.json()["error"]

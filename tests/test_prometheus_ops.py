"""``/metrics`` for operations: every known series from the start, process metrics, build info,
the watcher and backlog gauges, and the per-process HTTP counter, through the real code.

The database-derived part runs on SQLite and PostgreSQL (``any_db``); the HTTP counter through the
real ASGI app the service serves (``incident.api.web.create_web_app``), in process.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import playbooks
from incident.deadlines import calendar
from incident.feedback.inputs import FeedbackIn
from incident.metrics import prometheus
from models import Deadline, Feedback, Incident, session_scope, utcnow
from notifiers.render import CUSTOMER_KINDS, NOTICE_KINDS
from playbooks.vocabulary import codes
from tests.conftest import Service

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(got: Samples, name: str, **labels: str) -> float:
    return got[(name, tuple(sorted(labels.items())))]


def test_every_known_label_set_is_there_at_zero(any_db: str) -> None:
    got = samples(prometheus.exposition().decode())
    categories = sorted(playbooks.load_all())
    assert categories == ["product_quality", "service_failure", "special_scenario"]
    for level in ("1", "2", "3"):
        assert value(got, "incident_open_incidents", level=level) == 0
        for category in categories:
            assert value(got, "incident_incidents_opened_total", level=level, category=category) == 0
    for to_level in ("1", "2"):
        assert value(got, "incident_level_raises_total", to_level=to_level) == 0
    assert set(prometheus.DEADLINE_KINDS) == set(codes("deadline"))  # every kind the vocabulary names
    for kind in codes("deadline"):
        assert value(got, "incident_deadlines_missed_total", kind=kind) == 0
    templates = Path(__file__).resolve().parents[1] / "notifiers" / "templates"  # a zh template per kind
    kinds = {p.name.split(".")[0] for p in templates.glob("[a-z]*.zh.j2")}
    assert set(NOTICE_KINDS) | set(CUSTOMER_KINDS) == kinds
    for notice in (*NOTICE_KINDS, "zendesk_note", "freshdesk_note"):  # ticket write-backs are deliveries
        for status in ("sent", "failed", "no_recipient"):
            assert value(got, "incident_notices_total", notice=notice, status=status) == 0
    for status in ("sent", "failed", "by_person"):  # a customer's copy of a progress update
        assert value(got, "incident_notices_total", notice="customer_update", status=status) == 0
    kinds = FeedbackIn.model_fields["kind"].annotation.__args__
    channels = FeedbackIn.model_fields["channel"].annotation.__args__
    assert "alarm" in kinds and "internal" in channels
    for kind in kinds:
        for channel in channels:
            assert value(got, "incident_feedback_accepted_total", kind=kind, channel=channel) == 0
    for handler in ("intake", "api", "console", "metrics"):
        for code in ("2xx", "3xx", "4xx", "5xx"):
            assert ("incident_http_responses_total", (("code", code), ("handler", handler))) in got
    assert value(got, "incident_deadline_watch_lag_seconds") == 0
    assert value(got, "incident_feedback_unhandled_oldest_seconds") == 0
    assert value(got, "incident_intake_latency_seconds_count") == 0
    for state in ("open", "overdue", "done"):
        assert value(got, "incident_improvement_actions", state=state) == 0
    assert value(got, "incident_recurrences_total") == 0
    assert value(got, "incident_database_up") == 1
    for outcome in ("handled", "failed"):  # this process's own runs (other tests ran some): present
        assert ("incident_feedback_runs_total", (("outcome", outcome),)) in got
    for status in ("sent", "failed", "no_recipient"):
        assert ("incident_process_notices_total", (("status", status),)) in got


def test_process_and_build_metrics(db: str) -> None:
    got = samples(prometheus.exposition().decode())
    assert value(got, "incident_build_info", version=version("incident-orchestrator")) == 1
    assert value(got, "process_resident_memory_bytes") > 0
    assert value(got, "process_cpu_seconds_total") >= 0
    assert any(name == "python_info" for name, _ in got)
    # the holiday data's last year, for the alert that fires before next year's 调休 are missing
    assert value(got, "incident_holiday_data_last_year") == calendar.last_year() >= 2026


def test_watch_lag_and_backlog_follow_the_rows(any_db: str) -> None:
    """An active deadline past due (the watcher has not marked it) and an unhandled feedback show."""
    now = utcnow()
    with session_scope() as s:
        s.add(
            Incident(
                id="INC20261201001",
                category="service_failure",
                level=3,
                status="on_site",
                correlation_key="k",
                open_key="k",
                summary="s",
                customers=1,
                level_reasons=[],
                identified_at=now - timedelta(hours=3),
                solution_round=1,
                follow_up_round=1,
            )
        )
        s.flush()
        s.add(
            Deadline(
                incident_id="INC20261201001",
                kind="contact",
                due_at=now - timedelta(minutes=10),
                created_at=now - timedelta(hours=3),
            )
        )
        s.add(
            Deadline(
                incident_id="INC20261201001",
                kind="approval",
                due_at=now - timedelta(hours=2),
                created_at=now - timedelta(hours=3),
                state="met",
                met_at=now,
            )
        )
        s.add(
            Feedback(
                id="FB20261201001",
                incident_id="INC20261201001",
                kind="complaint",
                channel="app",
                summary="s",
                customer_key="c",
                customers=1,
                received_at=now - timedelta(minutes=4),
            )
        )
    got = samples(prometheus.exposition().decode())
    lag = value(got, "incident_deadline_watch_lag_seconds")
    assert 600 <= lag < 700  # the pending contact deadline, not the met (older) approval one
    backlog = value(got, "incident_feedback_unhandled_oldest_seconds")
    assert 240 <= backlog < 340
    assert value(got, "incident_open_incidents", level="3") == 1
    assert value(got, "incident_feedback_accepted_total", kind="complaint", channel="app") == 1
    with session_scope() as s:
        s.get(Feedback, "FB20261201001").handled_at = now
        for d in s.query(Deadline).filter_by(kind="contact"):
            d.state, d.missed_at = "missed", now
    got = samples(prometheus.exposition().decode())
    assert value(got, "incident_deadline_watch_lag_seconds") == 0
    assert value(got, "incident_feedback_unhandled_oldest_seconds") == 0
    assert value(got, "incident_deadlines_missed_total", kind="contact") == 1


@pytest.mark.parametrize(
    ("method", "path", "handler"),
    [
        ("POST", "/api/feedback", "intake"),
        ("POST", "/api/alarms", "intake"),
        ("GET", "/api/incidents", "api"),
        ("GET", "/metrics", "metrics"),
        ("GET", "/", "console"),
        ("GET", "/api/feedback", "api"),
    ],
)
def test_handler_labels(method: str, path: str, handler: str) -> None:
    from incident.api.requestlog import handler_of

    assert handler_of(method, path) == handler


def test_http_responses_are_counted_per_process(db: str) -> None:
    from incident.api.web import create_web_app

    app = create_web_app("tok")
    before = samples(prometheus.exposition().decode())

    async def requests() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/api/incidents")).status_code == 401  # no token
            assert (await client.post("/api/feedback", json={})).status_code == 401
            scrape = await client.get("/metrics", headers={"Authorization": "Bearer tok"})
            assert scrape.status_code == 200
            return scrape

    after = samples(asyncio.run(requests()).text)  # a scrape is counted once it has been answered

    def delta(handler: str, code: str) -> float:
        key = ("incident_http_responses_total", (("code", code), ("handler", handler)))
        return after[key] - before[key]

    assert delta("api", "4xx") == 1 and delta("intake", "4xx") == 1 and delta("intake", "5xx") == 0
    final = samples(prometheus.exposition().decode())
    key = ("incident_http_responses_total", (("code", "2xx"), ("handler", "metrics")))
    assert final[key] - before[key] == 1


def test_a_database_outage_leaves_the_process_own_series(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database away (nobody listens at its address): intake answers 503, and the scrape still
    answers 200 with the process's own series, intake's 5xx among them, and ``incident_database_up`` 0.
    Then the database back: its families are there again."""
    import models
    from incident.api.web import create_web_app

    app = create_web_app("tok")
    auth = {"Authorization": "Bearer tok"}
    body = {"category": "service_failure", "summary": "no show", "customer": "A"}

    async def scrape(client: httpx.AsyncClient) -> Samples:
        answer = await client.get("/metrics", headers=auth)
        assert answer.status_code == 200, answer.text
        return samples(answer.text)

    async def outage() -> tuple[Samples, Samples, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = await scrape(client)
            monkeypatch.setenv("INCIDENT_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:1/away")
            models.reset_engine()
            refused = await client.post("/api/feedback", json=body, headers=auth)
            during = await scrape(client)
            return before, during, refused.status_code

    before, during, refused = asyncio.run(outage())
    assert refused == 503
    assert value(before, "incident_database_up") == 1 and value(during, "incident_database_up") == 0
    key = ("incident_http_responses_total", (("code", "5xx"), ("handler", "intake")))
    assert during[key] - before[key] == 1  # the 503 is counted and scraped while the database is away
    assert value(during, "incident_build_info", version=version("incident-orchestrator")) == 1
    assert not any(name.startswith("incident_open_incidents") for name, _ in during)
    monkeypatch.setenv("INCIDENT_DB_URL", db)
    models.reset_engine()
    back = samples(prometheus.exposition().decode())
    assert value(back, "incident_database_up") == 1 and value(back, "incident_open_incidents", level="1") == 0


def worker_metrics_url(service: Service) -> str:
    """Where the service's worker serves its /metrics (its worker.ready file; port 0 in the tests)."""
    return str(json.loads((service.home / "worker.ready").read_text())["metrics_url"])


def test_the_worker_serves_its_own_series(service: Service, tmp_path: Path) -> None:
    """The worker ``incident serve`` started counts its loops' passes, the feedback runs it executed and
    the notices they sent, on its own endpoint (no token: no business data there)."""
    url = worker_metrics_url(service)
    before = samples(httpx.get(url, timeout=10).text)
    region = f"W-{tmp_path.name[-10:]}"
    body = {"category": "service_failure", "summary": "no show", "service": "install", "region": region}
    accepted = service.api("POST", "/api/feedback", json=body)
    assert accepted.status_code == 202 and accepted.json()["level"] == 3, accepted.text  # the worker's job
    service.wait_for_point(accepted.json()["incident_id"], "contact")
    deadline = time.monotonic() + 30
    handled = ("incident_feedback_runs_total", (("outcome", "handled"),))
    while True:  # the run reaches the waiting point a moment before it is counted as handled
        after = samples(httpx.get(url, timeout=10).text)
        if after[handled] > before[handled] or time.monotonic() > deadline:
            break
        time.sleep(0.3)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before[key]

    assert delta("incident_feedback_runs_total", outcome="handled") >= 1
    for status in ("sent", "failed", "no_recipient"):  # its own deliveries (the incident runs' processes
        assert ("incident_process_notices_total", (("status", status),)) in after  # send the openings)
    assert delta("incident_worker_loop_passes_total", loop="deadline_watcher", outcome="ok") >= 1
    assert value(after, "incident_worker_loop_passes_total", loop="sweep", outcome="ok") >= 1
    assert value(after, "incident_build_info", version=version("incident-orchestrator")) == 1
    assert value(after, "process_resident_memory_bytes") > 0
    assert not any(name.startswith(("incident_open_incidents", "incident_http")) for name, _ in after)

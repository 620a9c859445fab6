"""Intake: ids, distinct customers, correlation, level only up, and concurrency — SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from incident.feedback.inputs import FeedbackIn
from incident.feedback.service import IntakeResult, record, record_many, warm_up
from models import Counter, Deadline, Feedback, Incident, TimelineEvent, session_scope, utcnow


def swelling(i: int, **extra: object) -> FeedbackIn:
    return FeedbackIn(
        category="product_quality",
        summary=f"battery swelling #{i}",
        product_model="P30",
        batch="B7",
        contact=f"1380000{i:04d}",
        **extra,
    )


def test_ids_count_distinct_customers_and_only_rise(any_db: str) -> None:
    first = record(swelling(1))
    assert first.feedback_id.startswith("FB") and first.incident_id and first.incident_id.startswith("INC")
    assert first.level == 3 and first.opened
    assert first.contact_deadline is not None
    # the same customer three more times counts once
    for _ in range(3):
        again = record(swelling(1))
    assert again.incident_id == first.incident_id and again.level == 3
    assert again.contact_deadline == first.contact_deadline  # read back with the tally, not reset
    for i in range(2, 10):
        assert record(swelling(i)).level == 3  # 9 distinct customers
    tenth = record(swelling(10))
    assert tenth.level == 2 and tenth.raised_from == 3
    # raised: the contact deadline gets shorter (1 h from now at most), never longer
    assert tenth.contact_deadline <= utcnow() + timedelta(hours=1)
    with session_scope() as s:
        assert s.get_one(Incident, first.incident_id).customers == 10
        ids = list(s.scalars(select(Feedback.id)))
    assert len(ids) == len(set(ids)) == 13
    media = record(swelling(11, media=True))
    assert media.level == 1 and media.raised_from == 2


def test_a_batch_is_graded_as_if_each_report_came_alone(any_db: str) -> None:
    """``record_many`` (the service's intake in a storm): one transaction, each report's own answer."""
    bodies = [swelling(i % 12) for i in range(14)]  # 12 distinct customers; the first two report twice
    bodies.insert(3, FeedbackIn(kind="praise", summary="kind technician"))
    bodies.insert(5, FeedbackIn(category="service_failure", summary="late", service="delivery", region="x"))
    results = record_many(bodies)
    assert len({r.feedback_id for r in results}) == 16 and results[3].incident_id is None
    late = results.pop(5)
    results.pop(3)
    assert late.opened and late.level == 3 and late.incident_id != results[0].incident_id
    assert [r.opened for r in results] == [True] + [False] * 13
    assert len({r.incident_id for r in results}) == 1
    assert [r.level for r in results] == [3] * 9 + [2] * 5  # the 10th distinct customer raises it
    assert [r.raised_from for r in results] == [None] * 9 + [3] + [None] * 4
    assert results[9].contact_deadline < results[8].contact_deadline  # 1 h from now, not 2 h
    assert {r.contact_deadline for r in results[9:]} == {results[9].contact_deadline}
    with session_scope() as s:
        incident = s.get_one(Incident, results[0].incident_id)
        assert (incident.customers, incident.level) == (12, 2)
        mine = TimelineEvent.incident_id == incident.id
        events = s.scalars(select(TimelineEvent.event).where(mine).order_by(TimelineEvent.id)).all()
        assert events == ["identified"] + ["feedback_joined"] * 8 + ["level_raised"] + ["feedback_joined"] * 4
        rows = s.scalars(select(Deadline).where(Deadline.incident_id == incident.id)).all()
        [contact] = [row for row in rows if row.kind == "contact"]
        assert contact.due_at == results[9].contact_deadline and contact.subject == results[0].feedback_id
        # each later customer is owed a first contact of their own, shortened by the raise like it
        owed = [row for row in rows if row.kind == "customer_contact"]
        assert sorted(row.subject for row in owed) == sorted(r.feedback_id for r in results[1:12])
        assert {row.due_at for row in owed} == {results[9].contact_deadline}
        stored = s.scalars(select(Feedback).where(Feedback.incident_id == incident.id).order_by(Feedback.id))
        assert [f.raised_from for f in stored] == [r.raised_from for r in results]
    # the next report joins the same incident, in a batch of its own
    assert record_many([swelling(12)])[0].incident_id == incident.id


def test_correlation_keys_come_from_the_playbook(any_db: str) -> None:
    a = record(FeedbackIn(category="product_quality", summary="x", product_model="P30", batch="B7"))
    b = record(FeedbackIn(category="product_quality", summary="y", product_model="p30 ", batch="b7"))
    c = record(FeedbackIn(category="product_quality", summary="z", product_model="P30", batch="B8"))
    d = record(FeedbackIn(category="service_failure", summary="late", service="delivery", region="east"))
    e = record(FeedbackIn(category="service_failure", summary="late", service="delivery", region="east"))
    lone1 = record(FeedbackIn(category="special_scenario", summary="no keys"))
    lone2 = record(FeedbackIn(category="special_scenario", summary="no keys"))
    assert a.incident_id == b.incident_id != c.incident_id
    assert d.incident_id == e.incident_id
    assert lone1.incident_id != lone2.incident_id


def test_non_complaints_are_recorded_without_incident(any_db: str) -> None:
    praise = record(FeedbackIn(kind="praise", summary="great technician"))
    assert praise.incident_id is None and praise.level is None
    with session_scope() as s:
        assert s.get_one(Feedback, praise.feedback_id).kind == "praise"
        assert s.scalar(select(func.count(Incident.id))) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"category": "weather", "summary": "x"},
        {"category": "product_quality"},
        {"category": "product_quality", "summary": "   "},
        {"summary": "no category for a complaint"},
        {"category": "product_quality", "summary": "x", "customers": -3},
        {"category": "product_quality", "summary": "x" * 10_001},
        {"category": "product_quality", "summary": "x", "surprise": 1},
    ],
)
def test_bad_feedback_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FeedbackIn(**bad)


def test_concurrent_storm_opens_one_incident_and_loses_no_count(any_db: str) -> None:
    """200 concurrent reports about one batch from 150 distinct customers → 1 incident, L1, 150."""
    workers = 16 if any_db.startswith("postgresql") else 8
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda i: record(swelling(i % 150)), range(200)))
    assert len({r.incident_id for r in results}) == 1
    assert len({r.feedback_id for r in results}) == 200
    raised = [r for r in results if r.raised_from is not None]
    assert sorted((r.raised_from, r.level) for r in raised) == [(2, 1), (3, 2)]  # each raise once
    with session_scope() as s:
        incident = s.scalars(select(Incident)).one()
        assert incident.customers == 150 and incident.level == 1
        assert s.scalar(select(func.count(Feedback.id))) == 200


def test_reports_racing_to_open_one_incident_all_join_it(any_db: str) -> None:
    """The losers of the race on ``incidents.open_key`` join the winner's incident (no 500, no second)."""
    start = threading.Barrier(8)

    def report(i: int) -> IntakeResult:
        start.wait()
        return record(swelling(i))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(report, range(8)))
    assert len({r.incident_id for r in results}) == 1
    assert sum(r.opened for r in results) == 1
    with session_scope() as s:
        assert s.scalars(select(Incident)).one().customers == 8


def test_the_warm_up_at_start_stores_nothing(any_db: str) -> None:
    """``incident serve`` records one report at start and rolls it back: no row, no id used up."""
    warm_up()
    with session_scope() as s:
        tables = (Feedback, Incident, Deadline, TimelineEvent, Counter)
        assert [s.scalar(select(func.count()).select_from(t)) for t in tables] == [0] * 5
    assert record(swelling(1)).feedback_id.endswith("001")

"""The worker's hold on routine feedback runs while reports arrive in a burst (incident/engine/burst.py):
the rate is read off the real ids' counter; the hold starts above INCIDENT_BURST_RATE, ends when the
rate drops, and lasts INCIDENT_BURST_HOLD_SECONDS at most."""

from __future__ import annotations

import pytest

from incident.engine.burst import Burst, arrived
from incident.feedback import service as intake
from incident.feedback.inputs import FeedbackIn


def _report(summary: str, batch: str, contact: str, **signals: bool) -> FeedbackIn:
    return FeedbackIn(category="product_quality", summary=summary, product_model="P9", batch=batch,
                      contact=contact, channel="app", **signals)  # fmt: skip


def _reports(n: int, batch: str) -> list[FeedbackIn]:
    return [_report(f"swelling {i}", batch, f"1381{i:07d}") for i in range(n)]


def test_the_rate_is_the_days_accepted_reports(db: str) -> None:
    before = arrived()
    intake.record_many(_reports(30, "BURST-1"))
    intake.record_many(_reports(5, "BURST-2"))
    assert arrived() == before + 35


def test_a_burst_holds_routine_runs_until_it_ends_or_for_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCIDENT_BURST_RATE", "50")
    monkeypatch.setenv("INCIDENT_BURST_HOLD_SECONDS", "3")
    burst = Burst()
    seen = [(0.0, 100), (0.5, 110)]  # one count is no rate yet; then 20/s
    assert [burst.holding(count, at) for at, count in seen] == [False, False]
    storm = [(1.0 + 0.5 * i, 160 + 40 * i) for i in range(7)]  # 80–100/s since the last poll
    assert [burst.holding(count, at) for at, count in storm] == [True] * 6 + [False]  # 3 s, then go on
    calm = [(4.5, 403), (5.0, 406)]
    assert [burst.holding(count, at) for at, count in calm] == [False, False]  # under 50/s: over
    assert burst.holding(470, 5.5)  # a new burst is held afresh
    monkeypatch.setenv("INCIDENT_BURST_RATE", "0")  # never
    assert not burst.holding(10_000, 6.0)


def test_a_burst_is_seen_at_the_first_poll_that_spans_it() -> None:
    burst = Burst()  # INCIDENT_BURST_RATE: 50/s
    assert not burst.holding(1000, 0.0)  # one count is no rate
    assert burst.holding(1040, 0.2)  # 200/s since the last poll: held before the openings' runs start


def test_in_a_burst_the_worker_starts_level_1_runs_only(any_db: str) -> None:
    """An L3 opening waits for the burst to end (its contact is due in hours), before routine reports;
    an L1 report recorded by the API is claimed for the urgent process in intake's own transaction, so
    no worker's poll takes it first."""
    from incident.engine import queue

    l3 = intake.record(_report("fridge not cooling", "B-L3", "13800000001"))
    join = intake.record(_report("fridge not cooling either", "B-L3", "13800000002"))
    l1 = intake.record(_report("battery caught fire", "B-L1", "13800000003", injury=True))
    [api] = intake.record_many([_report("phone exploded", "B-L1b", "13800000004", injury=True)],
                               claimant="elsewhere:1:urgent")  # fmt: skip
    assert (l3.level, l3.opened, join.opened, l1.level, l1.opened) == (3, True, False, 1, True)
    assert (api.urgent_l1, api.claimed_by, l1.claimed_by) == (True, "elsewhere:1:urgent", None)
    in_burst = queue.claim(10, set(), None, routine_limit=0, urgent_levels=1)
    assert [job.feedback_id for job in in_burst] == [l1.feedback_id]
    after = queue.claim(10, set(), None, routine_limit=0)  # the burst is over; routine slots still full
    assert [job.feedback_id for job in after] == [l3.feedback_id]
    assert [job.feedback_id for job in queue.claim(10, set())] == [join.feedback_id]


def test_a_storm_that_began_just_before_a_poll_starts_no_run_until_the_next() -> None:
    """Ten reports in a poll's last 0.05 s read as 50/s over its 0.2 s: not a burst yet. They are more
    than one since the previous poll, so the reports younger than 0.1 s wait for the next poll, which
    sees the storm; one report since the last poll (the CLI's) is taken at once."""
    burst = Burst()
    assert not burst.holding(1000, 0.0)
    assert not burst.holding(1001, 0.2) and not burst.rising()  # a quiet report: taken at once
    assert not burst.holding(1011, 0.4) and burst.rising()  # 50/s over the poll: young ones wait
    assert burst.holding(1051, 0.6)  # 200/s: held
    assert burst.holding(1451, 3.5)  # a poll held up for 2.9 s (SQLite's write lock in a storm): still held


def test_young_reports_wait_for_the_next_poll_unless_level_1(any_db: str) -> None:
    from datetime import timedelta

    from incident.engine import queue
    from models import utcnow

    l3 = intake.record(_report("fridge not cooling", "B-Y3", "13800000011"))
    l1 = intake.record(_report("battery caught fire", "B-Y1", "13800000012", injury=True))
    assert [job.feedback_id for job in queue.claim(10, set(), young=60.0)] == [l1.feedback_id]
    later = utcnow() + timedelta(seconds=61)
    running = {l1.feedback_id}  # its run goes on
    assert [job.feedback_id for job in queue.claim(10, running, later, young=60.0)] == [l3.feedback_id]


def test_in_a_burst_a_storms_earlier_openings_and_raises_wait_once_it_is_level_1(any_db: str) -> None:
    """The storm's L3 opening and its L3 → L2 raise are no level-1 events, though their incident is L1
    by the time the worker polls: a burst holds them (their runs kept the Prefect server busy while
    intake needed the cores); the report that made it L1 is taken."""
    from incident.engine import queue

    results = intake.record_many(_reports(100, "B-STORM"))
    urgent = [r for r in results if r.opened or r.raised_from]
    levels = [(r.opened, r.raised_from, r.level) for r in urgent]
    assert levels == [(True, None, 3), (False, 3, 2), (False, 2, 1)]
    opening, to_2, to_1 = (r.feedback_id for r in urgent)
    in_burst = queue.claim(10, set(), None, routine_limit=0, urgent_levels=1)
    assert [job.feedback_id for job in in_burst] == [to_1]
    after = queue.claim(2, {to_1}, None, routine_limit=0)  # the burst is over: the urgent ones, L2 first
    assert [job.feedback_id for job in after] == [to_2, opening]

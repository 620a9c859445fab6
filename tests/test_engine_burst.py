"""The worker's hold on routine feedback runs while reports arrive in a burst (incident/engine/burst.py):
the rate is read off the real ids' counter; the hold starts above INCIDENT_BURST_RATE, ends when the
rate drops, and lasts INCIDENT_BURST_HOLD_SECONDS at most."""

from __future__ import annotations

import pytest

from incident.engine.burst import Burst, arrived
from incident.feedback import service as intake
from incident.feedback.inputs import FeedbackIn


def _reports(n: int, batch: str) -> list[FeedbackIn]:
    return [
        FeedbackIn(category="product_quality", summary=f"swelling {i}", product_model="P9", batch=batch,
                   contact=f"1381{i:07d}", channel="app")
        for i in range(n)
    ]  # fmt: skip


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
    storm = [(1.0 + 0.5 * i, 160 + 40 * i) for i in range(7)]  # 60–90/s over the last second
    assert [burst.holding(count, at) for at, count in storm] == [True] * 6 + [False]  # 3 s, then go on
    calm = [(4.5, 403), (5.0, 406)]
    assert [burst.holding(count, at) for at, count in calm] == [False, False]  # under 50/s: over
    assert burst.holding(470, 5.5)  # a new burst is held afresh
    monkeypatch.setenv("INCIDENT_BURST_RATE", "0")  # never
    assert not burst.holding(10_000, 6.0)

"""The worker's sweep beyond the flow runs: it writes last month's review, the integrations' loop pushes
its page, and a review that keeps failing neither stops those jobs nor is retried on every pass.

The real ``sweep_once`` against the session's Prefect server (an unknown deployment: no runs to look
at), a real database, the knowledge-base adapter pushing to the local Confluence of test_knowledge.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from incident.reviews import schedule
from incident.reviews.seed import seed_month
from models import Delivery, session_scope
from tests.confluence_fake import FakeConfluence
from tests.test_knowledge import closed_incident, confluence  # noqa: F401 (a fixture)


@pytest.fixture
def review_backoff() -> Iterator[None]:
    schedule._failed.clear()
    yield
    schedule._failed.clear()


def test_the_sweep_writes_the_monthly_review_and_a_failing_one_stops_nothing(
    prefect_api: str,
    confluence: FakeConfluence,  # noqa: F811 (the fixture)
    review_backoff: None,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from incident.engine.sweep import integrations_once, sweep_once
    from models import utcnow

    last_month = schedule.previous_month(utcnow())
    with session_scope() as s:
        seed_month(s, last_month, 12)
    (tmp_path / "reviews").write_text("not a folder: no review can be written")  # a fault that persists
    closed_incident("B-S1")  # something for the integrations to do in the same pass
    with caplog.at_level(logging.ERROR, logger="incident.reviews"):
        failed = asyncio.run(sweep_once(uuid.uuid4()))
        failed.update(asyncio.run(integrations_once()))
        assert failed.get("review_failures") == 1 and failed["knowledge"] >= 1  # pages went out anyway
        again = asyncio.run(sweep_once(uuid.uuid4()))
    assert "review_failures" not in again  # backing off: not tried on the next pass
    assert sum("could not be written" in r.getMessage() for r in caplog.records) == 1

    (tmp_path / "reviews").unlink()  # the fault repaired: the review is written after its wait
    assert asyncio.run(schedule.monthly(utcnow() + timedelta(minutes=2))) == {"reviews": 1}
    assert (tmp_path / "reviews" / f"review-{last_month}.zh.pdf").read_bytes().startswith(b"%PDF")
    with session_scope() as s:
        told = s.scalars(select(Delivery.role).where(Delivery.notice == "review_ready")).all()
    assert told == ["leadership"]
    assert asyncio.run(schedule.monthly(utcnow() + timedelta(hours=7))) == {"reviews": 0}  # written once

"""What the engine does when a part of it fails, in-process on real databases (the service-level
faults are the chaos suite's): an urgent run that fails in the API gives its claim back, a long run
keeps its claim, a blocking pause whose process is gone is known orphaned, and a database lost after
an answer was stored, or a page in Prefect's place, makes the delivery pending, never an error.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from tests.chaos import Proxy
from tests.conftest import dead_pid

RUN_ID = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
URGENT = {"category": "product_quality", "summary": "电池起火", "injury": True, "product_model": "URG"}


def _claimant(feedback_id: str) -> tuple[str | None, Any]:
    from models import Feedback, session_scope

    with session_scope() as s:
        row = s.get_one(Feedback, feedback_id)
        return row.claimed_by, row.claimed_at


def _other_worker_claims(db: str, stale_seconds: float) -> int:
    """How many rows a worker in another process takes now (a real second claimant)."""
    code = "from incident.engine import queue; print(len(queue.claim(10, set())))"
    env = {**os.environ, "INCIDENT_DB_URL": db, "INCIDENT_STALE_CLAIM_SECONDS": str(stale_seconds)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_an_urgent_run_that_fails_in_the_api_gives_its_claim_back(db: str) -> None:
    """Prefect away when an L1 report comes: the API's run fails, and the row is free for any worker's
    next poll (it stayed claimed by the live API process for INCIDENT_STALE_CLAIM_SECONDS before)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from incident.engine import queue
    from incident.feedback import service as intake

    [recorded] = intake.record_many([intake.FeedbackIn(**URGENT)], claimant=queue.WORKER_ID)
    assert recorded.level == 1 and recorded.opened and recorded.claimed_by == queue.WORKER_ID
    job = queue.Job(recorded.feedback_id, recorded.incident_id, urgent=True)
    assert _claimant(job.feedback_id)[0] == queue.WORKER_ID  # claimed where it was recorded
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # nothing listens
        assert asyncio.run(queue.handle_here(job)) is False
    assert _claimant(job.feedback_id) == (None, None)
    assert _other_worker_claims(db, 120) == 1  # at once, not after 120 s


def test_a_long_run_keeps_its_claim(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that outlasts INCIDENT_STALE_CLAIM_SECONDS is not taken over while it runs: its claim is
    beaten; once the beats stop, another worker takes the row (the check can fail)."""
    from incident.engine import queue
    from incident.feedback import service as intake
    from models import Feedback, session_scope, utcnow

    monkeypatch.setenv("INCIDENT_STALE_CLAIM_SECONDS", "2")
    recorded = intake.record(intake.FeedbackIn(**{**URGENT, "injury": False}))
    [job] = queue.claim(1, set())
    with session_scope() as s:  # claimed long ago: stale, unless beaten
        s.get_one(Feedback, job.feedback_id).claimed_at = utcnow() - timedelta(minutes=5)

    async def long_run() -> int:
        async with queue.beating(job.feedback_id, every=0.2):
            await asyncio.sleep(1.0)
            return await asyncio.to_thread(_other_worker_claims, db, 2)

    assert asyncio.run(long_run()) == 0
    assert _claimant(recorded.feedback_id)[1] > utcnow() - timedelta(seconds=2)
    with session_scope() as s:  # the run died without a word: its claim ages
        s.get_one(Feedback, job.feedback_id).claimed_at = utcnow() - timedelta(seconds=5)
    assert _other_worker_claims(db, 2) == 1


def test_a_blocking_pause_whose_process_is_gone_is_orphaned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within its window a blocking pause used to count as held, so a resume made it Running with no
    process; now its holder (the run's label) is asked first, on this host."""
    from prefect.states import Paused, Suspended

    from flows import waiting

    monkeypatch.setenv("INCIDENT_SWEEP_SECONDS", "2")
    hot = Paused(timeout_seconds=60 + waiting.ORPHAN_MARGIN, pause_key="contact")
    gone = {waiting.HOLDER: f"{waiting.HOST}:{dead_pid()}"}
    assert waiting.orphaned(hot, gone)
    assert not waiting.orphaned(hot, {waiting.HOLDER: waiting.holder()})  # alive: this process
    assert not waiting.orphaned(hot, {waiting.HOLDER: f"another-host:{dead_pid()}"})  # unknowable here
    assert not waiting.orphaned(hot)  # no label: the clock decides, and the window is young
    late = Paused(timeout_seconds=5, pause_key="contact")  # past its window (the clock's rule)
    assert waiting.orphaned(late, {waiting.HOLDER: waiting.holder()})
    suspended = Suspended(timeout_seconds=3600, pause_key="contact")
    assert not waiting.orphaned(suspended, gone)  # a suspension holds no process by design
    unreaped = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; nobody reaps it yet
    stat = Path(f"/proc/{unreaped.pid}/stat")
    while stat.read_text().rpartition(")")[2].split()[0] != "Z":
        time.sleep(0.05)
    assert waiting.orphaned(hot, {waiting.HOLDER: f"{waiting.HOST}:{unreaped.pid}"})  # its pid still answers
    unreaped.wait()


@pytest.fixture
def proxied_db(postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Proxy]:
    """The product's database reached through a TCP proxy the test can cut."""
    import models
    from models.migrate import upgrade

    proxy = Proxy(5432)
    url = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    models.Base.metadata.drop_all(models.get_engine(postgres_url))
    with models.get_engine(postgres_url).begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    models.reset_engine()
    monkeypatch.setenv("INCIDENT_HOME", str(tmp_path))
    monkeypatch.setenv("INCIDENT_DB_URL", url)
    upgrade(url)
    yield proxy
    proxy.close()
    models.reset_engine()


def test_an_answer_stored_before_the_database_went_is_pending_not_an_error(proxied_db: Proxy) -> None:
    """The answer is stored; the database goes before its delivery: "pending" (the sweep delivers it),
    not the 503 "nothing was stored" it used to become."""
    from flows.waiting import try_deliver
    from incident.feedback import service as intake
    from incident.response import service as actions
    from models import Contact, session_scope

    inc = intake.record(intake.FeedbackIn(**{**URGENT, "injury": False})).incident_id
    assert inc
    actions.contact(inc, actions.ContactIn(by="王芳"))
    proxied_db.cut()
    assert asyncio.run(try_deliver(inc)) == "pending"
    proxied_db.restore()
    with session_scope() as s:
        assert (
            s.scalar(sa.select(sa.func.count()).select_from(Contact).where(Contact.incident_id == inc)) == 1
        )


def test_an_answer_whose_delivery_gets_a_page_instead_of_prefects_json_is_pending(
    db: str, httpserver: HTTPServer
) -> None:
    """Something answers in Prefect's place with a page that is not its JSON (a proxy's maintenance
    page): the delivery fails with no network error, and the action still says "pending" (it was a 500
    telling the person the stored answer was not taken); the answer is there for the sweep."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.waiting import answer_for, try_deliver
    from incident.feedback import service as intake
    from incident.response import service as actions
    from models import Incident, session_scope

    httpserver.expect_request("/api/flow_runs/" + RUN_ID).respond_with_data(
        "<html>维护中 maintenance</html>", content_type="text/html"
    )
    inc = intake.record(intake.FeedbackIn(**{**URGENT, "injury": False})).incident_id
    assert inc
    with session_scope() as s:
        s.get_one(Incident, inc).flow_run_id = RUN_ID  # as its incident run made it
    actions.contact(inc, actions.ContactIn(by="王芳"))
    with temporary_settings(updates={PREFECT_API_URL: httpserver.url_for("/api")}):
        assert asyncio.run(try_deliver(inc)) == "pending"
    assert httpserver.log and all(r.status_code == 200 for _, r in httpserver.log)  # asked, got the page
    assert answer_for(inc, "contact") is not None

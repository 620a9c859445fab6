"""A storm through HTTP: 120 concurrent reports about one batch from 105 customers, against a real
``incident serve`` with its product database on SQLite and on PostgreSQL.

What must hold: one incident, 105 distinct customers, level 1 exactly at the 100th distinct customer
(that report's 202 says level 1, raised from 2), every 202 stored, and every feedback's
``handle_feedback`` flow run Completed in Prefect. Nothing here is timed; bench/storm.py measures.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from sqlalchemy import create_engine, text

from tests.conftest import Inbox, Service, start_service, stop_service

REPORTS, CUSTOMERS = 120, 105  # past the 100 customers of level 1, some twice
# The session's Prefect server (prefect_test_harness) keeps its database in SQLite: one run at a time
# is fastest there (settings.run_concurrency); the service cannot tell, as it did not start that server.
ENV = {"INCIDENT_RUN_CONCURRENCY": "1"}


def report(i: int, batch: str) -> dict[str, Any]:
    return {
        "category": "product_quality",
        "summary": f"battery swelling #{i}",
        "product_model": "P40",
        "batch": batch,
        "contact": f"1390000{i % CUSTOMERS:04d}",  # customers 0..14 report twice
        "channel": "app",
    }


async def storm(service: Service, batch: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {service.token}"}
    limits = httpx.Limits(max_connections=REPORTS)
    async with httpx.AsyncClient(base_url=service.url, headers=headers, limits=limits, timeout=120) as http:
        responses = await asyncio.gather(
            *(http.post("/api/feedback", json=report(i, batch)) for i in range(REPORTS))
        )
    assert [r.status_code for r in responses] == [202] * REPORTS, {r.text for r in responses}
    return [{**r.json(), "contact": report(i, batch)["contact"]} for i, r in enumerate(responses)]


def rows(db_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def check_levels(accepted: list[dict[str, Any]], db_url: str, incident_id: str) -> None:
    """Replay the arrivals in the order the database saw them: each report's timeline event is written
    while it holds the incident's row lock, so the events' ids follow the lock (= commit) order."""
    intake_events = "('identified', 'level_raised', 'feedback_joined')"
    sql = f'select "by" from timeline where incident_id = :i and event in {intake_events} order by id'
    events = rows(db_url, sql, i=incident_id)
    order = {by.split(":", 1)[1]: n for n, (by,) in enumerate(events)}
    assert set(order) == {b["feedback_id"] for b in accepted}
    seen: set[str] = set()
    for body in sorted(accepted, key=lambda b: order[b["feedback_id"]]):
        new = body["contact"] not in seen
        seen.add(body["contact"])
        distinct = len(seen)
        assert body["level"] == (3 if distinct < 10 else 2 if distinct < 100 else 1), (distinct, body)
        raised = {10: 3, 100: 2}.get(distinct) if new else None
        assert body["raised_from"] == raised, (distinct, body)
    assert len(seen) == CUSTOMERS


def wait_handled(db_url: str, incident: str, timeout: float = 240) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        sql = "select id, flow_run_id, handled_at from feedback where incident_id = :i"
        found = rows(db_url, sql, i=incident)
        pending = sum(1 for _, run, handled in found if run is None or handled is None)
        if pending == 0:
            return [(fid, run) for fid, run, _ in found]
        assert time.monotonic() < deadline, f"{pending} feedback still unhandled after {timeout} s"
        time.sleep(1)


async def run_states(ids: list[str]) -> dict[str, str]:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(i) for i in ids])), limit=len(ids)
        )
    return {str(r.id): (r.state.name if r.state else "?") for r in runs}


def run_the_storm(service: Service, db_url: str, batch: str) -> None:
    accepted = asyncio.run(storm(service, batch))
    incidents = {b["incident_id"] for b in accepted}
    assert len(incidents) == 1
    incident_id = incidents.pop()
    check_levels(accepted, db_url, incident_id)
    assert [b["raised_from"] for b in accepted if b["level"] == 1 and b["raised_from"]] == [2]

    stored = rows(db_url, "select id from feedback where incident_id = :i", i=incident_id)
    assert {b["feedback_id"] for b in accepted} == {r[0] for r in stored}  # every 202 is there, no more
    same_batch = "select count(*) from incidents where correlation_key like :k"
    assert rows(db_url, same_batch, k=f"%{batch.lower()}%")[0][0] == 1
    customers, level = rows(db_url, "select customers, level from incidents where id = :i", i=incident_id)[0]
    assert (customers, level) == (CUSTOMERS, 1)

    handled = wait_handled(db_url, incident_id)
    assert len(handled) == REPORTS and len({run for _, run in handled}) == REPORTS
    states = asyncio.run(run_states([run for _, run in handled]))
    assert len(states) == REPORTS
    assert set(states.values()) == {"Completed"}, {s for s in states.values() if s != "Completed"}
    for body in accepted:  # a 202 that carried a run id carried the run that handled it
        if body["flow_run_id"]:
            assert (body["feedback_id"], body["flow_run_id"]) in handled


def test_http_storm_on_sqlite(prefect_api: str, inbox: Inbox, tmp_path: Path) -> None:
    service = start_service(tmp_path / "home", prefect_api, inbox, ENV)
    try:
        run_the_storm(service, f"sqlite:///{tmp_path / 'home' / 'incident.db'}", "STORM-SQLITE")
    finally:
        stop_service(service)


@pytest.mark.postgres
def test_http_storm_on_postgres(prefect_api: str, inbox: Inbox, postgres_url: str, tmp_path: Path) -> None:
    import models

    engine = models.get_engine(postgres_url)  # a fresh schema: the service migrates it on start
    models.Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    models.reset_engine()
    service = start_service(tmp_path / "home", prefect_api, inbox, {**ENV, "INCIDENT_DB_URL": postgres_url})
    try:
        run_the_storm(service, postgres_url, "STORM-PG")
    finally:
        stop_service(service)

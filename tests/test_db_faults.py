"""The product's database goes away for a few seconds during intake (PostgreSQL).

While it is gone the API answers 503 with Retry-After (not 500, not a hang) and nothing is
half-written; when it is back, intake resumes without restarting the service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Inbox, Service, start_service, stop_service


@pytest.fixture
def pg_service(prefect_api: str, inbox: Inbox, postgres_url: str, tmp_path: Path) -> Iterator[Service]:
    svc = start_service(tmp_path / "home", prefect_api, inbox, {"INCIDENT_DB_URL": postgres_url})
    yield svc
    stop_service(svc)


def _admin(sql: str) -> None:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(sql)


def _rows(name: str) -> int:
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as conn:
        return conn.execute("select count(*) from feedback").fetchone()[0]


def test_database_outage_gives_503_then_recovers(pg_service: Service, postgres_url: str) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    body = {"category": "product_quality", "summary": "outage probe", "product_model": "Z", "batch": "DB-1"}
    assert pg_service.api("POST", "/api/feedback", json=body).status_code == 202
    before = _rows(name)
    _admin(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
    _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        for _ in range(3):
            started = time.monotonic()
            response = pg_service.api("POST", "/api/feedback", json=body)
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] and "retry" in response.json()["error"]
            assert time.monotonic() - started < 10
        assert pg_service.api("GET", "/api/incidents").status_code == 503
    finally:
        _admin(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    assert _rows(name) == before  # nothing half-written during the outage
    deadline = time.monotonic() + 30
    while (response := pg_service.api("POST", "/api/feedback", json=body)).status_code != 202:
        assert response.status_code == 503 and time.monotonic() < deadline
        time.sleep(0.5)
    assert _rows(name) == before + 1
    assert pg_service.api("GET", "/api/incidents").status_code == 200

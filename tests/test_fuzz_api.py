"""Schemathesis against the live ``/openapi.json``: generated requests must never cause a 5xx.

Bounded in examples per operation (``INCIDENT_FUZZ_EXAMPLES``, default 25) so CI stays short.
(Schemathesis's own pytest plugin does not run on pytest 9; its strategies are driven directly.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import Inbox, Service, start_service, stop_service

EXAMPLES = int(os.environ.get("INCIDENT_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def fuzz_service(
    prefect_api: str,
    inbox: Inbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    svc = start_service(Path(tmp_path_factory.mktemp("fuzz")), prefect_api, inbox)
    yield svc
    stop_service(svc)


def test_no_server_errors(fuzz_service: Service) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_service.url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_service.token}"}
    calls: dict[str, int] = {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        fuzz(operation, f"{operation.method.upper()} {operation.path}", headers, calls, failures)()
    assert len(calls) >= 12  # every operation of the API was exercised
    assert sum(calls.values()) >= 12 * 5
    assert failures == []
    print(f"schemathesis cases: {sum(calls.values())} over {len(calls)} operations")


def fuzz(
    operation: schemathesis.APIOperation,
    label: str,
    headers: dict[str, str],
    calls: dict[str, int],
    failures: list[str],
) -> Callable[[], None]:
    """One hypothesis test per operation, bounded by EXAMPLES."""

    @given(operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=headers, timeout=30)
        calls[label] = calls.get(label, 0) + 1
        if response.status_code >= 500:
            failures.append(f"{label} {case.path_parameters} → {response.status_code}: {response.text[:200]}")

    return check

"""A flow for the tests that run Prefect's own Runner (tests/test_prefect_machinery.py): it only waits."""

from __future__ import annotations

import time

from prefect import flow


@flow(name="linger", persist_result=False)
def linger(seconds: float = 120.0) -> None:
    time.sleep(seconds)

"""Chaos: the product's database goes away mid-storm (PostgreSQL cut for 10 s; SQLite's disk full).

Each case gives an answer (the contact of the incident the storm opened) just before the fault and
measures the five figures (tests/chaos.py):
reports are 202 (stored, then handled without a restart) or 503 (nothing stored), never a 500, a
202 without a row, or a transport error.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos import (
    Proxy,
    Storm,
    answer,
    assert_holds,
    kill_all,
    measure,
    storm_bodies,
    worker_of,
)
from tests.conftest import Inbox, fresh_postgres, start_service

pytestmark = pytest.mark.chaos


@pytest.fixture
def proxied_pg() -> Iterator[tuple[Proxy, str, str]]:
    """A PostgreSQL database of this test's own, reached through a proxy the test can cut (and directly)."""
    with fresh_postgres() as url:
        proxy = Proxy(5432)
        yield proxy, url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"), url
        proxy.close()


def test_database_cut_for_10_s_mid_storm(
    prefect_api: str, inbox: Inbox, proxied_pg: tuple[Proxy, str, str], tmp_path: Path
) -> None:
    proxy, url, direct = proxied_pg
    started = time.monotonic()
    service = start_service(tmp_path / "home", prefect_api, inbox, {"INCIDENT_DB_URL": url})
    try:
        worker = worker_of(service)
        storm, answers, back = Storm(service.url, service.token), [], threading.Timer(10, proxy.restore)

        def during(i: int) -> None:
            if i == 10:
                answers.append(answer(service, storm.incident()))  # the batch's, just before the cut
                proxy.cut()
                back.start()

        storm.send(storm_bodies("CUT-1", 70), rate=5, during=during)  # 14 s: the 10-s cut inside
        back.join()  # the database is back (the storm outlasts the cut unless the machine is slow)
        case = "PostgreSQL cut 10 s mid-storm"
        figures = measure(case, service, storm, "CUT-1", answers, started, db=direct)
        assert_holds(figures, storm, answers)
        assert set(storm.refused) == {503}, storm.refused  # refused while away (it bit): 503, never 500
        assert worker_of(service) == worker, "nothing was restarted"
    finally:
        kill_all(service)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs (needs root, as CI has): a disk that can really be filled."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:  # ENOSPC: the disk is full
            pass
    return filler


def test_disk_full_mid_storm(prefect_api: str, inbox: Inbox, small_disk: Path) -> None:
    """The product's SQLite database on a disk that fills for 25 reports (5 s) of a storm, then is freed."""
    started = time.monotonic()
    service = start_service(small_disk / "home", prefect_api, inbox)
    try:
        worker = worker_of(service)
        storm, answers, filler = Storm(service.url, service.token), [], []

        def during(i: int) -> None:
            if i == 10:
                answers.append(answer(service, storm.incident()))  # the batch's, just before the disk fills
                filler.append(_fill(small_disk))
            if i == 35:
                filler[0].unlink()  # space again, 5 s later

        storm.send(storm_bodies("FULL-1", 50), rate=5, during=during)
        figures = measure("disk full for 5 s mid-storm (SQLite)", service, storm, "FULL-1", answers, started)
        assert_holds(figures, storm, answers)
        assert set(storm.refused) == {503}, storm.refused  # some were refused (it bit), and with 503
        assert len(storm.accepted) + storm.refused[503] == 50
        assert worker_of(service) == worker, "nothing was restarted"
    finally:
        kill_all(service)

"""The chaos suite: faults a bad day brings, and what must hold through each without a restart.

For each fault it prints its figures (``pytest -s tests/test_chaos.py``): 202s without a row,
feedback never handled, answers never delivered, duplicate notices, incidents per batch. Every
address is on the loopback; every loop is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.chaos import Proxy, Storm
from tests.conftest import Inbox, Service, prefect_call, start_service, stop_service
from tests.test_crash import children_of


def _sql(name: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as conn:
        return conn.execute(query, args).fetchall()


def _figures(name: str, accepted: list[str], batch: str) -> dict[str, int]:
    rows = {r[0]: r[1] for r in _sql(name, "select id, handled_at from feedback")}
    incidents = _sql(
        name,
        "select count(distinct incident_id) from feedback f join incidents i on i.id = f.incident_id "
        "where f.batch = %s",
        batch,
    )[0][0]
    return {
        "accepted": len(accepted),
        "202_without_row": len([f for f in accepted if f not in rows]),
        "never_handled": len([f for f in accepted if f in rows and rows[f] is None]),
        "incidents_for_batch": incidents,
    }


def _wait_handled(name: str, accepted: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = _sql(name, "select count(*) from feedback where handled_at is null")[0][0]
        if waiting == 0 and accepted:
            return
        time.sleep(1)


def duplicate_notices(inbox: Inbox, incident_ids: set[str]) -> int:
    seen = Counter(
        json.dumps(m, sort_keys=True, ensure_ascii=False)
        for m in inbox.collect()
        if any(i in m.get("title", "") + m.get("message", "") for i in incident_ids)
    )
    return sum(n - 1 for n in seen.values() if n > 1)


def storm_bodies(batch: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "category": "product_quality",
            "summary": f"屏幕闪烁 {i}",
            "customer": f"客户{i}",
            "product_model": "X9",
            "batch": batch,
        }  # fmt: skip
        for i in range(n)
    ]


@pytest.fixture
def proxied_pg(postgres_url: str) -> Iterator[tuple[Proxy, str, str]]:
    proxy = Proxy(5432)
    name = postgres_url.rsplit("/", 1)[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{name}"
    yield proxy, url, name
    proxy.close()


def test_database_cut_for_10_s_mid_storm(
    prefect_api: str, inbox: Inbox, proxied_pg: tuple[Proxy, str, str], tmp_path: Path
) -> None:
    proxy, url, name = proxied_pg
    service = start_service(tmp_path / "home", prefect_api, inbox, {"INCIDENT_DB_URL": url})
    try:
        worker_before = children_of(service.proc.pid)
        storm = Storm(service.url, service.token)
        cut_at = 20

        def during(i: int) -> None:
            if i == cut_at:
                proxy.cut()
                threading.Timer(10, proxy.restore).start()

        storm.send(storm_bodies("CUT-1", 200), rate=10, during=during)
        _wait_handled(name, storm.accepted, 120)
        figures = _figures(name, storm.accepted, "CUT-1")
        incidents = {r[0] for r in _sql(name, "select id from incidents")}
        figures["duplicate_notices"] = duplicate_notices(inbox, incidents)
        figures["refused_503"] = storm.refused.get(503, 0)
        print(f"\nchaos: PostgreSQL cut 10 s mid-storm: {figures}, other refusals {storm.refused}")
        assert figures["202_without_row"] == 0
        assert figures["never_handled"] == 0
        assert figures["incidents_for_batch"] == 1
        assert figures["duplicate_notices"] == 0
        assert set(storm.refused) <= {503}, storm.refused  # refused while away: 503, never 500
        assert figures["refused_503"] > 0, "the cut should have refused some reports"
        assert children_of(service.proc.pid) == worker_before, "nothing was restarted"
        [(batch_incident,)] = _sql(name, "select distinct incident_id from feedback where batch = 'CUT-1'")
        service.wait_for_point(batch_incident, "contact")  # its run got there, the cut notwithstanding
    finally:
        stop_service(service)


def _own_prefect_service(home: Path, inbox: Inbox) -> Service:
    """A service that runs its own Prefect server (no PREFECT_API_URL): it must restart it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    roster = home / "roster.yaml"
    home.mkdir(parents=True)
    roster.write_text(
        "urls:\n" + "".join(
            f"  - json://127.0.0.1:{inbox.server.port}/{role}:\n      - tag: {role}\n"
            for role in ("customer_service", "duty_manager", "cs_manager", "leadership", "cs_director")
        )
    )  # fmt: skip
    env.update(
        INCIDENT_HOME=str(home), INCIDENT_API_TOKEN="test-token", INCIDENT_NOTIFY_CONFIG=str(roster),
        INCIDENT_SWEEP_SECONDS="2", INCIDENT_WATCH_SECONDS="1", INCIDENT_POLL_SECONDS="1",
    )  # fmt: skip
    env.pop("INCIDENT_DB_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "incident.cli", "serve", "--port", "0"],
        env=env, stdout=(home / "serve.log").open("ab"), stderr=subprocess.STDOUT, cwd=home,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (home / "service.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, (home / "serve.log").read_text()[-2000:]
        time.sleep(0.3)
    info = json.loads((home / "service.json").read_text())
    env["PREFECT_API_URL"] = info["prefect_api_url"]
    return Service(home, info["url"], "test-token", env, inbox, proc)


def _prefect_server_pid(service: Service) -> int:
    for pid in children_of(service.proc.pid):
        if b"server" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return int(pid)
    raise AssertionError("no Prefect server among the service's children")


def test_prefect_server_killed_while_incidents_wait(inbox: Inbox, tmp_path: Path) -> None:
    service = _own_prefect_service(tmp_path / "own", inbox)
    try:
        incidents = []
        for region in ("PK-1", "PK-2"):
            reported = service.cli_json(
                "report", "--category", "service_failure", "--summary", "师傅没来",
                "--service", "install", "--region", region, "--customer", "李雷",
            )  # fmt: skip
            incidents.append(reported["incident_id"])
        for incident_id in incidents:
            service.wait_for_point(incident_id, "contact")
        os.kill(_prefect_server_pid(service), signal.SIGKILL)
        answered = []
        for incident_id in incidents:
            started = time.monotonic()
            response = service.api("POST", f"/api/incidents/{incident_id}/contact", json={"by": "王芳"})
            answered.append(
                (response.status_code, response.json().get("delivery"), time.monotonic() - started)
            )
        back = time.monotonic()
        moved = []
        for incident_id in incidents:
            service.wait_until(
                incident_id, lambda s: s.get("waiting_for") == "measure", "measure", timeout=180
            )
            moved.append(incident_id)
        figures = {
            "answers": [(code, delivery, round(seconds, 1)) for code, delivery, seconds in answered],
            "delivered_after_s": round(time.monotonic() - back, 1),
            "never_delivered": len(incidents) - len(moved),
            "duplicate_notices": duplicate_notices(inbox, set(incidents)),
        }
        print(f"\nchaos: Prefect server killed while 2 incidents waited: {figures}")
        assert all(code == 200 and seconds < 10 for code, _, seconds in answered), answered
        assert figures["never_delivered"] == 0
        assert figures["duplicate_notices"] == 0
        assert httpx.get(service.url + "/healthz", timeout=5).status_code == 200
    finally:
        service.proc.send_signal(signal.SIGTERM)
        try:
            service.proc.wait(30)
        except subprocess.TimeoutExpired:
            service.proc.kill()


def test_two_services_share_one_database_and_prefect(
    prefect_api: str, inbox: Inbox, postgres_url: str, tmp_path: Path
) -> None:
    """Scale-out: two API processes and two workers on one PostgreSQL and one Prefect server."""
    name = postgres_url.rsplit("/", 1)[1]
    shared = {"INCIDENT_DB_URL": postgres_url, "INCIDENT_DEPLOYMENT": f"incident-shared-{name}"}
    first = start_service(tmp_path / "a", prefect_api, inbox, shared)
    second = start_service(tmp_path / "b", prefect_api, inbox, shared)
    try:
        storms = [Storm(first.url, first.token), Storm(second.url, second.token)]
        bodies = storm_bodies("TWO-1", 60)
        threads = [
            threading.Thread(target=storm.send, args=(bodies[i::2], 20.0)) for i, storm in enumerate(storms)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        accepted = storms[0].accepted + storms[1].accepted
        _wait_handled(name, accepted, 120)
        figures = _figures(name, accepted, "TWO-1")
        runs = _feedback_runs(prefect_api, accepted)
        figures["feedback_runs_executed_twice"] = sum(1 for n in runs.values() if n > 1)
        figures["feedback_without_run"] = len([f for f in accepted if runs.get(f, 0) == 0])
        incidents = {r[0] for r in _sql(name, "select id from incidents")}
        figures["duplicate_notices"] = duplicate_notices(inbox, incidents)
        claimants = {r[0].split(":")[1] for r in _sql(name, "select claimed_by from feedback") if r[0]}
        figures["workers_that_handled"] = len(claimants)
        print(f"\nchaos: two services on one PostgreSQL and Prefect: {figures}")
        assert figures["202_without_row"] == 0 and figures["never_handled"] == 0
        assert figures["incidents_for_batch"] == 1
        assert figures["feedback_runs_executed_twice"] == 0 and figures["feedback_without_run"] == 0
        assert figures["duplicate_notices"] == 0
    finally:
        stop_service(first)
        stop_service(second)


def _feedback_runs(prefect_api: str, feedback_ids: list[str], since: str | None = None) -> Counter[str]:
    """How many Completed ``handle_feedback`` runs Prefect has for each feedback id (started after
    ``since``: the session's Prefect server also holds other tests' runs, whose ids repeat per home)."""
    found: Counter[str] = Counter()
    names = sorted(set(feedback_ids))
    for start in range(0, len(names), 100):
        runs: dict[str, Any] = {"name": {"any_": names[start : start + 100]},
                                "state": {"type": {"any_": ["COMPLETED"]}}}  # fmt: skip
        if since:
            runs["start_time"] = {"after_": since}
        body = {"flows": {"name": {"any_": ["handle_feedback"]}}, "flow_runs": runs, "limit": 200}
        response = prefect_call("POST", f"{prefect_api}/flow_runs/filter", json=body, timeout=30)
        response.raise_for_status()
        found.update(run["name"] for run in response.json())
    return found


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
    """The product's SQLite database on a disk that fills up mid-storm, then is freed: a report is 202
    (stored, then handled without a restart) or 503 (nothing stored), never a 500 nor a 202 without a row."""
    home = small_disk / "home"
    service = start_service(home, prefect_api, inbox)
    db = f"sqlite:///{home / 'incident.db'}"
    try:
        storm = Storm(service.url, service.token)
        filler: list[Path] = []

        def during(i: int) -> None:
            if i == 20:
                filler.append(_fill(small_disk))
            if i == 60:
                filler[0].unlink()  # space again

        storm.send(storm_bodies("FULL-1", 100), rate=10, during=during)
        deadline = time.monotonic() + 120
        while _sqlite(db, "select count(*) from feedback where handled_at is null")[0][0]:
            assert time.monotonic() < deadline, "feedback accepted around the full disk was not handled"
            time.sleep(1)
        rows = {r[0] for r in _sqlite(db, "select id from feedback")}
        figures = {
            "accepted": len(storm.accepted),
            "202_without_row": len([f for f in storm.accepted if f not in rows]),
            "refused": dict(storm.refused),
            "incidents_for_batch": _sqlite(
                db, "select count(distinct incident_id) from feedback where batch = 'FULL-1'"
            )[0][0],
        }
        print(f"\nchaos: disk full for 40 reports mid-storm: {figures}")
        assert figures["202_without_row"] == 0
        assert set(storm.refused) <= {503}, storm.refused  # a full disk refuses with 503, never 500
        assert figures["incidents_for_batch"] == 1
        assert len(storm.accepted) + sum(storm.refused.values()) == 100
    finally:
        stop_service(service)


def _sqlite(url: str, query: str) -> list[tuple[Any, ...]]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def _runs_in(prefect_api: str, feedback_ids: list[str], state: str, since: str) -> int:
    """How many ``handle_feedback`` runs of these feedback, started after ``since``, Prefect shows in
    ``state`` (RUNNING: zombies)."""
    runs = {"name": {"any_": sorted(set(feedback_ids))}, "state": {"type": {"any_": [state]}},
            "start_time": {"after_": since}}  # fmt: skip
    body = {"flows": {"name": {"any_": ["handle_feedback"]}}, "flow_runs": runs}
    response = prefect_call("POST", f"{prefect_api}/flow_runs/count", json=body, timeout=30)
    response.raise_for_status()
    return int(response.json())


def test_worker_sigkilled_mid_storm(prefect_api: str, inbox: Inbox, tmp_path: Path) -> None:
    """The worker (it executes the flow runs) is SIGKILLed while a storm is being handled: the service
    starts another at once and the new one finishes the work; nothing lost, nothing done twice."""
    home = tmp_path / "home"
    since = datetime.now(UTC).isoformat()
    service = start_service(home, prefect_api, inbox)
    db = f"sqlite:///{home / 'incident.db'}"
    try:
        [worker] = children_of(service.proc.pid)
        storm = Storm(service.url, service.token)

        def during(i: int) -> None:
            if i == 40:
                os.kill(int(worker), signal.SIGKILL)

        storm.send(storm_bodies("KILLW-1", 120), rate=20, during=during)
        deadline = time.monotonic() + 150
        while _sqlite(db, "select count(*) from feedback where handled_at is null")[0][0]:
            assert time.monotonic() < deadline, "feedback accepted around the killed worker was not handled"
            time.sleep(1)
        rows = {r[0] for r in _sqlite(db, "select id from feedback")}
        runs = _feedback_runs(prefect_api, storm.accepted, since)
        incidents = {r[0] for r in _sqlite(db, "select id from incidents")}
        figures = {
            "accepted": len(storm.accepted),
            "202_without_row": len([f for f in storm.accepted if f not in rows]),
            "feedback_runs_completed_twice": sum(1 for n in runs.values() if n > 1),
            "feedback_without_completed_run": len([f for f in storm.accepted if runs.get(f, 0) == 0]),
            "runs_left_running": _runs_in(prefect_api, storm.accepted, "RUNNING", since),
            "duplicate_notices": duplicate_notices(inbox, incidents),
            "incidents_for_batch": _sqlite(
                db, "select count(distinct incident_id) from feedback where batch = 'KILLW-1'"
            )[0][0],
            "refused": dict(storm.refused),
        }
        print(f"\nchaos: worker SIGKILLed mid-storm (report 40 of 120): {figures}")
        assert figures["202_without_row"] == 0 and not storm.refused
        assert figures["feedback_runs_completed_twice"] == 0
        assert figures["feedback_without_completed_run"] == 0
        # runs_left_running is reported, not asserted: a feedback run in flight at the kill runs in the
        # worker's own process, not a deployment's, so the zombie automation does not reach it (its
        # feedback is taken over and completed by another run; the stale run stays Running in the UI).
        assert figures["duplicate_notices"] == 0 and figures["incidents_for_batch"] == 1
        assert children_of(service.proc.pid) not in ([], [worker]), "the worker was replaced"
        [(batch_incident,)] = _sqlite(db, "select distinct incident_id from feedback where batch = 'KILLW-1'")
        service.wait_for_point(batch_incident, "contact")
    finally:
        stop_service(service)

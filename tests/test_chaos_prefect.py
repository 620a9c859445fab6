"""Chaos: the Prefect server ``incident serve`` runs for itself is killed while incidents wait.

The server is SIGKILLed and its port held for 15 s (every connection reset), so the service cannot
start it again sooner: a long outage, on purpose. The services' Prefect client retries once
(``PREFECT_CLIENT_MAX_RETRIES=1``, default 5): to Prefect's runner, whose poll loop gives up after
three failed polls, 15 s are then what some three minutes are by default, and the worker must ride it
out without being replaced. During the outage: both waiting incidents are answered and a storm of
reports comes in. Then: a new Prefect server (the same port), both runs at their next point, every
report handled, one incident for the batch, no notice twice, and nothing restarted but the server.
Last, a graceful stop (SIGTERM) stops the worker, then the Prefect server, and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chaos import (
    PortHolder,
    Storm,
    answer,
    assert_holds,
    children_of,
    db_url,
    descendants_of,
    gone,
    measure,
    query,
    storm_bodies,
    waiting_incident,
    worker_of,
)
from tests.conftest import ROLES, Inbox, Service

pytestmark = pytest.mark.chaos
OUTAGE_SECONDS = 15


@pytest.fixture
def own_prefect(inbox: Inbox, tmp_path: Path) -> Iterator[Service]:
    """A service that runs its own Prefect server (no PREFECT_API_URL): it must restart it."""
    with _own_service(inbox, tmp_path) as service:
        yield service


@contextlib.contextmanager
def _own_service(inbox: Inbox, tmp_path: Path, **extra: str) -> Iterator[Service]:
    home = tmp_path / "own"
    home.mkdir()
    roster = home / "roster.yaml"
    roster.write_text("urls:\n" + "".join(
        f"  - json://127.0.0.1:{inbox.server.port}/{role}:\n      - tag: {role}\n" for role in ROLES
    ))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "INCIDENT_"))}
    env.update(
        INCIDENT_HOME=str(home), INCIDENT_API_TOKEN="test-token", INCIDENT_NOTIFY_CONFIG=str(roster),
        INCIDENT_SWEEP_SECONDS="2", INCIDENT_WATCH_SECONDS="1", INCIDENT_POLL_SECONDS="1",
        INCIDENT_HOT_WAIT_SECONDS="120", PREFECT_CLIENT_MAX_RETRIES="1", **extra,
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "incident.cli", "serve", "--port", "0"],
        env=env, stdout=(home / "serve.log").open("ab"), stderr=subprocess.STDOUT, cwd=home,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:  # the service goes with the test, also when it failed to start
        while not (home / "service.json").exists():
            alive = proc.poll() is None and time.monotonic() < deadline
            assert alive, (home / "serve.log").read_text()[-2000:]
            time.sleep(0.3)
        info = json.loads((home / "service.json").read_text())
        env["PREFECT_API_URL"] = info["prefect_api_url"]
        yield Service(home, info["url"], "test-token", env, inbox, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _prefect_server(service: Service) -> str:
    for pid in children_of(service.proc.pid):
        if b"server" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError("no Prefect server among the service's children")


def _yields_the_cores(pid: str, increment: int, service: Service) -> None:
    """A background child runs in a session of its own at the service's nice + ``increment``, and so does
    its session's autogroup (server._yield_cores: with autogroup scheduling a nice counts only inside its
    session, so the worker's runs and the Prefect server would otherwise take the API's cores)."""

    def stat(of: int | str) -> list[str]:
        return Path(f"/proc/{of}/stat").read_text().rsplit(")", 1)[1].split()  # [3] session, [16] nice

    nice = min(19, int(stat(service.proc.pid)[16]) + increment)
    assert int(stat(pid)[3]) == int(pid) != int(stat(service.proc.pid)[3]), "a session of its own"
    assert int(stat(pid)[16]) == nice
    group = Path(f"/proc/{pid}/autogroup")  # absent on a kernel without autogroup scheduling
    if group.exists():
        assert group.read_text().split()[-1] == str(nice), group.read_text()


def _open_logs(pid: int, name: str) -> int:
    """How many of the process's file descriptors are open on ``name``."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.path.basename(os.readlink(fd)) == name)


def test_prefect_server_killed_while_incidents_wait(own_prefect: Service) -> None:
    service, started = own_prefect, time.monotonic()
    incidents = [waiting_incident(service, region) for region in ("PK-1", "PK-2")]
    for incident_id in incidents:
        service.wait_for_point(incident_id, "contact")
    worker, server = worker_of(service), _prefect_server(service)
    _yields_the_cores(worker, 15, service)  # INCIDENT_BACKGROUND_NICE
    _yields_the_cores(server, 5, service)  # INCIDENT_PREFECT_NICE: less, the L1 notice goes through it
    # The UI of the server it runs talks to its own API (the random port), not to 127.0.0.1:4200.
    api_url = service.env["PREFECT_API_URL"]
    ui = httpx.get(api_url.removesuffix("/api") + "/ui-settings", timeout=10).json()
    assert ui["api_url"] == api_url and not api_url.endswith(":4200/api"), ui
    port = int(service.env["PREFECT_API_URL"].rsplit(":", 1)[1].split("/")[0])
    os.kill(int(server), signal.SIGKILL)
    killed, holder = time.monotonic(), PortHolder(port)
    try:
        answers = [answer(service, incident_id) for incident_id in incidents]  # during the outage
        storm = Storm(service.url, service.token)
        storm.send(storm_bodies("PK-STORM", 30), rate=5)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - killed)))
    finally:
        holder.release()
    case = f"Prefect server killed ({OUTAGE_SECONDS} s away) while 2 incidents waited"
    given = ", ".join(f"{a.status} {a.delivery} in {a.seconds:.1f} s" for a in answers)
    figures = measure(case, service, storm, "PK-STORM", answers, started, notes=f"answers {given}")
    assert_holds(figures, storm, answers)
    assert all(a.delivery == "pending" and a.seconds < 10 for a in answers), answers  # stored, said so
    restarted = _prefect_server(service)
    assert restarted != server and Path(f"/proc/{restarted}").exists(), "a new Prefect server serves"
    _yields_the_cores(restarted, 5, service)
    assert worker_of(service) == worker, "the worker rode the outage out: not replaced"
    log = (service.home / "serve.log").read_text()
    assert "serving incident_response again" in log  # Prefect's runner gave up, the worker served again
    assert _open_logs(service.proc.pid, "prefect-server.log") == 0  # none kept per restart
    batch = "SELECT DISTINCT incident_id FROM feedback WHERE batch = 'PK-STORM'"
    [(batch_incident,)] = query(db_url(service), batch)
    service.wait_for_point(batch_incident, "contact")  # a run made after the outage, by the new runner

    everything = descendants_of(service.proc.pid)
    service.proc.send_signal(signal.SIGTERM)  # a graceful stop: the worker, then the server; nothing left
    assert service.proc.wait(60) == 0
    assert gone(everything), "the Prefect server, the worker and its runs stop with the service"
    stopped = (service.home / "serve.log").read_text()
    # an orderly stop: the runs cancelled through Prefect within the worker's bound (its end is at INFO,
    # which the service's log leaves out; leaving past the bound is an ERROR line)
    assert "Cancelled flow run" in stopped and "worker leaving without finishing its stop" not in stopped
    assert not (service.home / "service.json").exists()


def test_a_worker_whose_service_and_prefect_died_leaves_in_bounded_time(inbox: Inbox, tmp_path: Path) -> None:
    """``incident serve`` SIGKILLed: the kernel sends SIGTERM to its Prefect server and its worker. The
    worker's orderly stop cannot tell Prefect anything; it used to wait for it for good (workers were
    found hours later holding port 9470). Now it leaves within INCIDENT_WORKER_STOP_SECONDS."""
    with _own_service(inbox, tmp_path, INCIDENT_WORKER_STOP_SECONDS="5") as service:
        incident_id = waiting_incident(service, "ORPHAN-1")
        service.wait_for_point(incident_id, "contact")  # a run in the runner's hands when all dies
        worker, server = worker_of(service), _prefect_server(service)
        everything = descendants_of(service.proc.pid)
        service.proc.kill()
        killed = time.monotonic()
        service.proc.wait(10)
        assert gone([server], timeout=20), "the Prefect server outlived its service"
        assert gone([worker], timeout=25), "the worker outlived its service and Prefect"
        print(f"worker gone {time.monotonic() - killed:.1f} s after its service was killed")
        assert time.monotonic() - killed < 5 + 10  # its stop's bound, and a margin for a loaded machine
        assert gone(everything, timeout=10), "a process of the service stayed behind"

"""The production recipe in ``deploy/systemd`` works as systemd would run it (issue 16, item 7).

There is no systemd to run units in here, so the test does what systemd does with them: for each unit in
its start order it reads ``EnvironmentFile=`` (the example files, pointed at two fresh PostgreSQL
databases and a temporary state directory), expands ``${VAR}`` in ``ExecStart=`` from that environment,
starts the command in ``WorkingDirectory=``, waits as ``Type=`` says (``oneshot``: to the end), and
stops each with its ``KillSignal=`` within ``TimeoutStopSec=``. In between, a complaint goes in through
the API and its Prefect flow run completes. ``systemd-analyze verify`` checks the unit files' syntax
when the machine has it. Only ``/opt/incident/venv``, ``/etc/incident`` and ``/var/lib/incident`` are
rewritten to this checkout's venv and temporary folders; every other line is used as written.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

UNITS = Path(__file__).resolve().parents[1] / "deploy" / "systemd"
ORDER = ("prefect-server.service", "incident-migrate.service", "incident.service", "incident-worker@.service")
PG = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections → keys → values (a key may repeat, as in systemd)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def expand(command: str, env: dict[str, str]) -> list[str]:
    """systemd's ``${VAR}`` (one word) in ExecStart; an unset variable is an error here, not empty."""
    return [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word) for word in command.split()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG, autocommit=True)
    except psycopg.OperationalError:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (trust auth, user postgres)")
    tag = uuid.uuid4().hex[:8]
    names = (f"units_{tag}_app", f"units_{tag}_prefect")
    with admin:
        for name in names:
            admin.execute(f"CREATE DATABASE {name}")
        with psycopg.connect(PG.replace("dbname=postgres", f"dbname={names[1]}"), autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # Prefect's PostgreSQL needs it
        yield names
        for name in names:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def install(tmp_path: Path, app_db: str, prefect_db: str) -> tuple[Path, Path]:
    """The units and env files as an admin installs them, under ``tmp_path`` instead of /etc and /var."""
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    state.mkdir()
    venv = Path(sys.executable).parent.parent
    rewrites = {"/opt/incident/venv": str(venv), "/etc/incident": str(etc), "/var/lib/incident": str(state)}
    for source in UNITS.iterdir():
        text = source.read_text()
        for old, new in rewrites.items():
            text = text.replace(old, new)
        (etc / source.name).write_text(text)
    prefect_port, service_port = free_port(), free_port()
    # The workers' metrics ports as written (the service's worker 9470, instance N of the worker 947N) are
    # moved to free ones here: the machine running the tests may have them taken.
    for name, written in (("incident.service", "9470"), ("incident-worker@.service", "947%i")):
        unit = etc / name
        line = f"Environment=INCIDENT_WORKER_METRICS_PORT={written}"
        assert line in unit.read_text(), name
        unit.write_text(
            unit.read_text().replace(line, f"Environment=INCIDENT_WORKER_METRICS_PORT={free_port()}")
        )
    settings = {  # what an admin edits in the example env files: addresses, secrets, database users
        "prefect.env": {
            "PREFECT_PORT": str(prefect_port),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{prefect_db}",
            "PREFECT_SERVER_API_AUTH_STRING": "admin:units-secret",
        },
        "incident.env": {
            "INCIDENT_DB_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{app_db}",
            "INCIDENT_API_TOKEN": "units-token",
            "LISTEN_HOST": "127.0.0.1",
            "LISTEN_PORT": str(service_port),
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "PREFECT_API_AUTH_STRING": "admin:units-secret",
        },
    }
    for name, values in settings.items():
        env = read_env(etc / name)
        assert set(values) <= set(env), f"{name} lacks {set(values) - set(env)}"
        env.update(values)
        (etc / name).write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    (etc / "roster.yaml").write_text("urls: []\n")
    return etc, state


def test_unit_files_pass_systemd_analyze(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    etc, _ = install(tmp_path, "app", "prefect")
    units = [str(etc / name.replace("@.", "@1.")) for name in ORDER]
    shutil.copy(etc / "incident-worker@.service", etc / "incident-worker@1.service")
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    complaints = [line for line in done.stderr.splitlines() if str(etc) in line or "service:" in line]
    assert done.returncode == 0 and not complaints, done.stderr


class Started:
    """The processes started from the units, stopped as systemd stops them (reverse order)."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen[bytes], dict[str, list[str]]]] = []

    def start(self, etc: Path, name: str, instance: str = "") -> subprocess.Popen[bytes]:
        unit = parse_unit((etc / name).read_text().replace("%i", instance))
        service = unit["Service"]
        env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
        for assignment in service.get("Environment", []):  # then EnvironmentFile= overrides, as in systemd
            key, _, value = assignment.partition("=")
            env[key] = value
        for file in service.get("EnvironmentFile", []):
            env.update(read_env(Path(file)))
        log = (etc / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            expand(service["ExecStart"][0], env),
            env=env,
            cwd=service["WorkingDirectory"][0],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if service.get("Type") == ["oneshot"]:
            assert proc.wait(120) == 0, (etc / f"{name}.log").read_text()[-2000:]
        else:
            self.running.append((name, proc, service))
        return proc

    def stop(self) -> dict[str, float]:
        took = {}
        for name, proc, service in reversed(self.running):
            sig = getattr(signal, service.get("KillSignal", ["SIGTERM"])[0])
            limit = float(service.get("TimeoutStopSec", ["90"])[0])
            started = time.monotonic()
            if proc.poll() is None:
                os.killpg(proc.pid, sig)
            try:
                proc.wait(limit)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            took[name] = time.monotonic() - started
        return took


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def test_the_units_run_the_service_on_postgresql(tmp_path: Path, databases: tuple[str, str]) -> None:
    etc, _ = install(tmp_path, *databases)
    env = read_env(etc / "incident.env")
    prefect_api, auth = env["PREFECT_API_URL"], tuple(env["PREFECT_API_AUTH_STRING"].split(":", 1))
    service_url = f"http://127.0.0.1:{env['LISTEN_PORT']}"
    units = Started()
    try:
        units.start(etc, "prefect-server.service")
        health = f"{prefect_api}/health"
        wait_for(lambda: httpx.get(health, auth=auth, timeout=2).status_code == 200, 120, "Prefect answers")
        open_door = httpx.post(f"{prefect_api}/flow_runs/filter", json={}, timeout=5)
        assert open_door.status_code == 401  # Prefect's API refuses whoever lacks the auth string
        units.start(etc, "incident-migrate.service")
        units.start(etc, "incident.service")
        wait_for(lambda: httpx.get(f"{service_url}/healthz", timeout=2).status_code == 200, 120, "service up")
        worker = units.start(etc, "incident-worker@.service", "1")
        headers = {"Authorization": f"Bearer {env['INCIDENT_API_TOKEN']}"}
        body = {"category": "service_failure", "summary": "师傅没有上门", "service": "install"}
        accepted = httpx.post(f"{service_url}/api/feedback", json=body, headers=headers, timeout=30)
        assert accepted.status_code == 202, accepted.text
        feedback_id = accepted.json()["feedback_id"]

        def handled() -> bool:
            status = httpx.get(f"{service_url}/api/feedback/{feedback_id}", headers=headers, timeout=5).json()
            run_id = status.get("flow_run_id")
            if not (status.get("handled_at") and run_id):
                return False
            run = httpx.get(f"{prefect_api}/flow_runs/{run_id}", auth=auth, timeout=5).json()
            return bool(run["state"]["type"] == "COMPLETED")

        wait_for(handled, 120, "the complaint's flow run completes")
        assert worker.poll() is None, (etc / "incident-worker@.service.log").read_text()[-2000:]
        for name in ("incident.service", "incident-worker@.service"):  # each worker's own /metrics
            port = parse_unit((etc / name).read_text())["Service"]["Environment"][0].rpartition("=")[2]
            scrape = f"http://127.0.0.1:{port}/metrics"
            wait_for(lambda url=scrape: "incident_worker_loop_passes_total" in httpx.get(url).text, 60, name)
    finally:
        took = units.stop()
    for name, proc, service in units.running:
        assert proc.returncode is not None
        assert took[name] < float(service.get("TimeoutStopSec", ["90"])[0]), (name, took)
    print(f"\nunits stopped in: { {n: round(t, 1) for n, t in took.items()} }")


COMPOSE_OF_UNIT = {
    "prefect": "prefect-server.service",
    "migrate": "incident-migrate.service",
    "incident": "incident.service",
    "worker": "incident-worker@.service",
}


def test_compose_runs_what_the_units_run() -> None:
    """deploy/compose.yaml is the same recipe: each container's command is its unit's ExecStart (the
    values systemd takes from the env file written out), with the unit's settings."""
    import yaml

    compose = yaml.safe_load((UNITS.parent / "compose.yaml").read_text())
    unit_env = read_env(UNITS / "incident.env")
    for name, unit_name in COMPOSE_OF_UNIT.items():
        unit = parse_unit((UNITS / unit_name).read_text())["Service"]
        words = unit["ExecStart"][0].split()
        command = compose["services"][name]["command"]
        assert len(command) == len(words) and command[0] == Path(words[0]).name, name
        for ours, theirs in zip(words[1:], command[1:], strict=True):
            assert "${" in ours or ours == theirs, (name, ours, theirs)
        if name != "prefect":
            assert set(compose["services"][name]["environment"]) <= set(unit_env), name


def test_compose_restarts_and_waits_for_a_healthy_prefect() -> None:
    """What runs is restarted (as the units' Restart=), and nothing starts on a Prefect not yet answering."""
    import yaml

    services = yaml.safe_load((UNITS.parent / "compose.yaml").read_text())["services"]
    for name in ("postgres", "prefect", "incident", "worker"):
        assert services[name]["restart"] == "unless-stopped", name
    assert "restart" not in services["migrate"]  # a one-shot: done once
    assert "/api/health" in " ".join(services["prefect"]["healthcheck"]["test"])
    for name in ("incident", "worker"):
        assert services[name]["depends_on"]["prefect"] == {"condition": "service_healthy"}, name
        assert services[name]["expose"] == ["9470"]  # its worker's /metrics


def compose_command() -> list[str] | None:
    """``docker compose`` (the plugin), else Debian's ``docker-compose`` 1.29 (.ci/run installs it)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


def test_docker_compose_accepts_the_file() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose is installed: the file was not checked")
    env = {**os.environ, "INCIDENT_API_TOKEN": "t", "PREFECT_AUTH_STRING": "a:b", "POSTGRES_PASSWORD": "p"}
    done = subprocess.run([*command, "-f", str(UNITS.parent / "compose.yaml"), "config", "-q"],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    broken = UNITS.parent / "compose.yaml"
    bad = subprocess.run([*command, "-f", "-", "config", "-q"], input=broken.read_text().replace(
        "services:", "servics:", 1), env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode != 0  # the check can fail

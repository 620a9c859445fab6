"""The CLI's conventions, through the installed console script in a subprocess.

``--version`` and completion answer without the service's stack; output is plain text;
every start-up error (bad option, unreachable service or database, a broken playbook) is one line on
stderr with the documented exit code, and one JSON object on stdout with ``--json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INCIDENT = str(Path(sys.executable).parent / "incident")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-79]|4[0-79]|9[0-7]|10[0-7]|38|48)(?:;[0-9;]*)?m")


def run(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "INCIDENT_URL")}
    base.update({"INCIDENT_HOME": str(home), "INCIDENT_DB_URL": f"sqlite:///{home / 'incident.db'}"})
    return subprocess.run(
        [INCIDENT, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    done = run("--version", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"incident {version('incident-orchestrator')}"


def test_version_and_db_import_no_service_stack(tmp_path: Path) -> None:
    """What `incident --version`, `--help` and `incident db current` load: no Prefect, no FastAPI.

    ``--version`` and ``--help`` load no ORM either.
    """
    probe = """
import sys
import incident.cli as cli
sys.argv = ["incident", *sys.argv[1:]]
try:
    cli.main()
except SystemExit:
    pass
heavy = [m for m in ("prefect", "fastapi", "incident.response.service", "incident.api.app")
         if m in sys.modules]
if sys.argv[1:] != ["db", "current"]:  # migrations need the models package; nothing else does
    heavy += [m for m in ("models", "sqlalchemy") if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""
    env = {**os.environ, "INCIDENT_HOME": str(tmp_path), "INCIDENT_DB_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    for args in (["--version"], ["db", "current"], ["--help"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert "HEAVY=\n" in done.stderr or done.stderr.endswith("HEAVY="), (args, done.stderr)
    # the probe can see a heavy import: `incident show` (before contacting anyone) loads the client
    done = subprocess.run(
        [sys.executable, "-c", probe.replace('"incident.api.app"', '"incident.client"'), "show", "X"],
        env={**env, "INCIDENT_URL": "http://127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "HEAVY=incident.client" in done.stderr, done.stderr


def test_shell_completion(tmp_path: Path) -> None:
    """argcomplete answers what bash asks (``eval "$(register-python-argcomplete incident)"``)."""

    def complete(line: str) -> set[str]:
        answer = tmp_path / "completions"
        env = {"_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
               "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)}  # fmt: skip
        done = run(home=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        return set(answer.read_text().split())

    assert {"db", "demo", "deputy"} <= complete("incident d") <= {"db", "demo", "deputy"}
    assert complete("incident db ") >= {"upgrade", "current", "downgrade"}
    assert "--legal-reviewed" in complete("incident propose INC1 --le")


@pytest.mark.parametrize("args", [["--help"], ["db", "current"], ["report", "--help"]])
def test_output_is_plain_text(args: list[str], tmp_path: Path) -> None:
    """No colour codes even when a terminal forces colour: output is read, copied and piped."""
    done = run(*args, home=tmp_path, env={"FORCE_COLOR": "1", "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and not COLOUR.search(done.stdout + done.stderr)


def _broken_playbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for path in (ROOT / "playbooks").glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    pq = folder / "product_quality.yaml"
    pq.write_text(pq.read_text().replace("contact_within: 30m", "contat_within: 30m", 1))
    return folder


def test_start_up_errors_are_one_line(tmp_path: Path) -> None:
    down = {"INCIDENT_URL": "http://127.0.0.1:1"}
    held = socket.socket()  # a port someone else listens on
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    taken = str(held.getsockname()[1])
    unreachable = {"INCIDENT_DB_URL": "postgresql+psycopg://u:pw@127.0.0.1:1/x"}
    prefect = {"PREFECT_API_URL": "http://127.0.0.1:1/api"}  # a worker names it; nothing starts before
    metrics_held = {"INCIDENT_WORKER_METRICS_PORT": taken}
    cases: list[tuple[list[str], dict[str, str], int, str]] = [
        (["--bogus"], {}, 2, "--bogus"),
        (["show"], {}, 2, "缺少必填参数：ID"),
        (["serve", "--port", "x"], {}, 2, "--port"),
        (["list"], down, 1, "无法连接服务"),
        (["show", "INC1", "--json"], down, 1, "无法连接服务"),
        (["serve", "--port", "0"], {"INCIDENT_DB_URL": "nosuchdialect://x"}, 2, "INCIDENT_DB_URL"),
        (["serve", "--port", "0"], unreachable, 1, "无法连接"),
        (["serve", "--port", taken], {}, 2, f"cannot listen on 127.0.0.1:{taken}"),
        (["serve", "--port", "0"], metrics_held, 2, "INCIDENT_WORKER_METRICS_PORT"),
        (["worker"], {**prefect, **unreachable}, 1, "无法连接"),
        (["worker"], {**prefect, "INCIDENT_DB_URL": "nosuchdialect://x"}, 2, "INCIDENT_DB_URL"),
        (["worker"], {**prefect, **metrics_held}, 2, "INCIDENT_WORKER_METRICS_PORT"),
        (
            ["serve", "--port", "0"],
            {"INCIDENT_PLAYBOOKS": str(_broken_playbooks(tmp_path))},
            2,
            "contat_within",
        ),
        (["db", "downgrade", "nosuchrev", "--json"], {}, 2, "nosuchrev"),
    ]
    with held:
        for args, env, code, needle in cases:
            check_one_line(args, env, code, needle, tmp_path)
    # The taken ports were found before anything started: no Prefect server, no worker was left running.
    assert not (tmp_path / "prefect-server.log").exists() and not (tmp_path / "worker.ready").exists()


def check_one_line(args: list[str], env: dict[str, str], code: int, needle: str, home: Path) -> None:
    """One line on stderr, starting ``错误：`` (zh by default), naming ``needle``, with the exit code; never a
    password."""
    done = run(*args, home=home, env=env, timeout=90)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, (args, done.returncode, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("错误："), (args, done.stderr)
    assert needle in lines[0], (args, lines)
    assert "pw@" not in done.stderr  # a password in the URL is never printed
    if "--json" in args:
        assert json.loads(done.stdout)["error"] == lines[0].removeprefix("错误：")

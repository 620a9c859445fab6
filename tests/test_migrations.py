"""Migrations as an operator runs them: stock ``alembic`` from the repository root and ``incident db``.

Each test gets a database of its own (a SQLite file; a fresh PostgreSQL database when one is reachable),
so upgrading and downgrading never disturbs the shared ``postgres_url`` of other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, pool, text

ROOT = Path(__file__).resolve().parents[1]
ALEMBIC = str(Path(sys.executable).parent / "alembic")
INCIDENT = str(Path(sys.executable).parent / "incident")


def _head() -> str:
    """The newest revision, read from the scripts (not written here: every new migration moves it)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head())


HEAD = _head()


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _model_tables() -> set[str]:
    import models

    return set(models.Base.metadata.tables)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database nobody else uses (never migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    import psycopg

    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2"
    name = f"incident_mig_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (trust auth, user postgres)")
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _run(cmd: list[str], url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INCIDENT_DB_URL": url, "INCIDENT_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_stock_alembic_upgrade_downgrade_upgrade_and_check(fresh_db: str, tmp_path: Path) -> None:
    """`alembic upgrade head` from the root builds every model table; base drops them; head again."""
    up = _run([ALEMBIC, "upgrade", "head"], fresh_db, tmp_path)
    assert up.returncode == 0, up.stderr
    assert _tables(fresh_db) == _model_tables() | {"alembic_version"}
    cur = _run([ALEMBIC, "current"], fresh_db, tmp_path)
    assert cur.returncode == 0 and f"{HEAD} (head)" in cur.stdout, cur.stdout + cur.stderr

    check = _run([ALEMBIC, "check"], fresh_db, tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr  # models and migrations agree
    assert "No new upgrade operations detected" in check.stdout

    down = _run([ALEMBIC, "downgrade", "base"], fresh_db, tmp_path)
    assert down.returncode == 0, down.stderr
    assert _tables(fresh_db) == {"alembic_version"}

    again = _run([ALEMBIC, "upgrade", "head"], fresh_db, tmp_path)
    assert again.returncode == 0, again.stderr
    assert _tables(fresh_db) == _model_tables() | {"alembic_version"}
    # The schema works for the application after the round trip: intake writes through it.
    engine = create_engine(fresh_db, poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO counters (key, value) VALUES ('FB20261201', 1)"))
        assert conn.execute(text("SELECT value FROM counters")).scalar_one() == 1
    engine.dispose()


def test_alembic_check_detects_drift(tmp_path: Path) -> None:
    """The check can fail: an index the models declare but the database lacks is reported as drift."""
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    assert _run([ALEMBIC, "upgrade", "head"], url, tmp_path).returncode == 0
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_deadlines_state_due"))
    engine.dispose()
    check = _run([ALEMBIC, "check"], url, tmp_path)
    assert check.returncode != 0
    assert "ix_deadlines_state_due" in check.stdout + check.stderr


def test_migrations_run_without_application_code(tmp_path: Path) -> None:
    """Upgrade and downgrade with `models`, `incident`, `flows`, FastAPI and Prefect made unimportable."""
    url = f"sqlite:///{tmp_path / 'bare.db'}"
    script = f"""
import sys
from importlib.abc import MetaPathFinder
BLOCKED = ("models", "incident", "flows", "playbooks", "notifiers", "prefect", "fastapi")
class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from alembic import command
from alembic.config import Config
cfg = Config({str(ROOT / "alembic.ini")!r})
cfg.set_main_option("sqlalchemy.url", {url!r})
command.upgrade(cfg, "head")
command.downgrade(cfg, "base")
command.upgrade(cfg, "head")
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert _tables(url) == _model_tables() | {"alembic_version"}


def test_stock_alembic_finds_the_database_as_the_service_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No URL in the Alembic config: env.py reads INCIDENT_DB_URL, else the SQLite file in INCIDENT_HOME,
    with the application's code unimportable, and lands where ``incident.settings.db_url()`` says."""
    from incident import settings

    script = f"""
import sys
from importlib.abc import MetaPathFinder
class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("models", "incident", "flows", "playbooks", "notifiers", "prefect"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from alembic import command
from alembic.config import Config
command.upgrade(Config({str(ROOT / "alembic.ini")!r}), "head")
print("ok")
"""
    given = tmp_path / "given.db"
    homes = {
        "INCIDENT_HOME only": {"INCIDENT_HOME": str(tmp_path / "home")},
        "INCIDENT_DB_URL": {
            "INCIDENT_HOME": str(tmp_path / "other"),
            "INCIDENT_DB_URL": f"sqlite:///{given}",
        },
    }
    for case, env in homes.items():
        base = {k: v for k, v in os.environ.items() if k not in ("INCIDENT_HOME", "INCIDENT_DB_URL")}
        done = subprocess.run(
            [sys.executable, "-c", script], env={**base, **env}, cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0 and done.stdout.strip() == "ok", (case, done.stderr)
        monkeypatch.delenv("INCIDENT_DB_URL", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        expected = settings.db_url()
        assert _tables(expected) == _model_tables() | {"alembic_version"}, case
    assert not (tmp_path / "other" / "incident.db").exists()  # INCIDENT_DB_URL wins over the home


def test_incident_db_commands(fresh_db: str, tmp_path: Path) -> None:
    """`incident db current|upgrade|downgrade` with --json; a bad revision is one line and exit 2."""

    def db(*args: str) -> subprocess.CompletedProcess[str]:
        return _run([INCIDENT, "db", *args], fresh_db, tmp_path)

    before = json.loads(db("current", "--json").stdout)
    assert before["revision"] is None and before["head"] == HEAD and before["up_to_date"] is False
    up = json.loads(db("upgrade", "--json").stdout)
    assert up["from"] is None and up["revision"] == HEAD
    assert _tables(fresh_db) == _model_tables() | {"alembic_version"}
    assert json.loads(db("current", "--json").stdout)["up_to_date"] is True

    bad = db("downgrade", "nosuchrev")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "nosuchrev" in bad.stderr
    assert _tables(fresh_db) == _model_tables() | {"alembic_version"}  # nothing was done

    down = json.loads(db("downgrade", "base", "--json").stdout)
    assert down == {**down, "from": HEAD, "revision": None}
    assert _tables(fresh_db) == {"alembic_version"}
    assert json.loads(db("upgrade", "--json").stdout)["revision"] == HEAD


def test_incident_db_unreachable_is_one_line(tmp_path: Path) -> None:
    done = _run([INCIDENT, "db", "current"], "postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "无法连接" in done.stderr  # zh by default


def test_concurrent_upgrades_take_turns(fresh_db: str, tmp_path: Path) -> None:
    """Three `incident db upgrade` at once on an empty database (replicas starting together) all succeed."""
    env = {**os.environ, "INCIDENT_DB_URL": fresh_db, "INCIDENT_HOME": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [INCIDENT, "db", "upgrade", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, err
        assert json.loads(out)["revision"] == HEAD
    assert sorted(json.loads(out)["from"] or "" for _, out, _ in results).count("") >= 1
    assert _tables(fresh_db) == _model_tables() | {"alembic_version"}

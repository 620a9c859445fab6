"""``incident db upgrade|current|downgrade [REV]``: the product's Alembic migrations by hand.

Why by hand as well as on start-up: with several replicas, the schema is upgraded once, before the
new version rolls out (see the README's Operations section), not by whichever replica starts first.
The commands talk to the database named by ``INCIDENT_DB_URL`` directly, never to the service, and
import only SQLAlchemy and Alembic (no FastAPI, no Prefect), so they work while no service runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from incident.terminal import Args, Group, emit, fail, opt

commands = Group("db", "The product's database schema (Alembic migrations).")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _reach(url: str) -> None:
    """Open and close one connection to ``url`` (a SQLite file is created, as the service would)."""
    from sqlalchemy import create_engine, pool

    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _guarded(url: str, as_json: bool, work: Callable[[], Any]) -> Any:
    """Run ``work``; a bad URL or revision is one line (exit 2), a database that does not answer exit 1.

    Only the errors of configuration and reachability are caught: anything else is a fault and keeps
    its traceback.
    """
    from alembic.util import CommandError
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    try:
        return work()
    except (CommandError, ArgumentError, NoSuchModuleError) as exc:
        fail(f"{str(exc).splitlines()[0]} (INCIDENT_DB_URL {_redacted_or_raw(url)})", as_json)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        fail(f"database {_redacted_or_raw(url)} unreachable: {reason}", as_json, 1)


def _redacted_or_raw(url: str) -> str:
    from sqlalchemy.exc import ArgumentError

    try:
        return _redacted(url)
    except ArgumentError:  # not even a URL: say what was given, minus anything after '@'
        return url.rsplit("@", 1)[-1]


def preflight() -> None:
    """Before ``incident serve`` starts: the database URL loads and the database answers."""
    from incident import settings

    url = settings.db_url()
    _guarded(url, False, lambda: _reach(url))


def run(as_json: bool, work: Callable[[str], dict[str, Any]]) -> None:
    """Run one migration step against INCIDENT_DB_URL and print what it did."""
    from incident import settings

    url = settings.db_url()
    data = _guarded(url, as_json, lambda: work(url))
    emit({"database": _redacted(url), **data}, as_json)


@commands.command("upgrade", opt("revision", nargs="?", default="head", help="target revision"))
def upgrade(a: Args) -> None:
    """Upgrade the schema to REV (default: head, the newest this version ships)."""
    from models import migrate

    def work(url: str) -> dict[str, Any]:
        before = migrate.current(url)
        migrate.upgrade(url, a.revision)
        return {"from": before, "revision": migrate.current(url), "head": migrate.head()}

    run(a.json, work)


@commands.command("current")
def current(a: Args) -> None:
    """The database's revision (null: never migrated) and the head this version ships."""
    from models import migrate

    def work(url: str) -> dict[str, Any]:
        rev, head = migrate.current(url), migrate.head()
        return {"revision": rev, "head": head, "up_to_date": rev == head}

    run(a.json, work)


@commands.command("downgrade", opt("revision", help="target revision: an id, -1, or base (drops all)"))
def downgrade(a: Args) -> None:
    """Downgrade the schema to REV. ``base`` drops every table of the product (its data too)."""
    from models import migrate

    def work(url: str) -> dict[str, Any]:
        before = migrate.current(url)
        migrate.downgrade(a.revision, url)
        return {"from": before, "revision": migrate.current(url)}

    run(a.json, work)

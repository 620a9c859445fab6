"""Declarative base, one engine per database URL, and a transaction helper.

Why one engine per URL: the CLI, the service and the tests may point one process at several
``INCIDENT_DB_URL`` values (tests switch between SQLite and PostgreSQL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, DateTime, Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from incident import settings


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


_engines: dict[str, Engine] = {}
_sessions: dict[str, sessionmaker[Session]] = {}
# The first use of a database may come from several threads at once (the API's intake thread and its
# thread pool; a test's racing reports): one makes the engine, the others wait for it. Without the lock
# a thread saw the engine before its sessionmaker was stored and failed with a KeyError (CI, 12-07).
_engines_lock = threading.Lock()


BUSY_SECONDS = 30.0  # how long a SQLite transaction waits for the write lock before it fails
TURN_MS = 2  # SQLite's own wait for the lock, per try, once connected (``_sqlite_begin``)
SQLITE_BUSY = 5


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000:.0f}")  # WAL may be set up by another
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={TURN_MS}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Every transaction takes the write lock at BEGIN, so "read then write" ones cannot deadlock. One
    that finds the lock taken tries again every few milliseconds, for ``BUSY_SECONDS``.

    Why not SQLite's own busy timeout for the whole wait: its handler sleeps 1, 2, 5, 10 … then 100 ms
    between tries, and in a storm intake takes the lock for a batch every few milliseconds; a waiting
    writer woke to find it taken again, over and over (the worker's poll waited 0.6 and 2.9 s in one
    storm). ``bench/sqlite_turns.py``: a writer's p95 wait beside such a stream 55 → 4 ms."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            code = getattr(exc.orig, "sqlite_errorcode", None)
            if code is None or code & 0xFF != SQLITE_BUSY or time.monotonic() > deadline:
                raise


IDLE_PING_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pessimistic disconnect handling (``pool_pre_ping``), for a connection that sat in the
    pool for ``IDLE_PING_SECONDS``: one that the database or a firewall closed meanwhile is replaced
    before use (the ``checkout`` event's documented ``DisconnectionError``), not failed on.

    Why not at every checkout: a ping is one more round trip per transaction, and in a storm the intake
    thread takes its connection back for each batch of a few reports, 40 times a second (measured: 8 %
    of its samples). A connection used within the last second that the database dropped fails its transaction
    as it would have a moment later, and SQLAlchemy then replaces every pooled connection."""
    pool = engine.pool

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _: object) -> None:
        if time.monotonic() - record.info.get("checked_in", 0.0) < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection closed while idle: {exc}") from exc


def get_engine(url: str | None = None) -> Engine:
    url = url or settings.db_url()
    if url in _sessions:  # made already (stored last): no lock taken
        return _engines[url]
    with _engines_lock:
        if url not in _sessions:
            _make_engine(url)
    return _engines[url]


def _make_engine(url: str) -> None:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_size=10, max_overflow=20)
        _ping_when_idle(engine)
    _engines[url] = engine
    _sessions[url] = sessionmaker(engine, expire_on_commit=False)  # last: it says the engine is ready


def reset_engine() -> None:
    """Forget cached engines (tests that switch databases)."""
    with _engines_lock:
        _sessions.clear()
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any exception."""
    url = url or settings.db_url()
    get_engine(url)
    session = _sessions[url]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# Row locks on an incident: FOR NO KEY UPDATE on PostgreSQL. Writers of one incident take turns, while
# rows that only refer to it (feedback, timeline, records: their foreign-key checks take KEY SHARE)
# go on being written by others; a plain FOR UPDATE would make those wait too.
LOCK = {"key_share": True}


def utcnow() -> datetime:
    return datetime.now(UTC)

"""SQLite's one write lock, taken at every BEGIN (models/base.py): a transaction that finds it taken waits
its turn by trying again every few milliseconds, and gives up with "database is locked" after
``BUSY_SECONDS``, having written nothing. (How much sooner than SQLite's own backoff it gets its turn
in a storm is a speed matter: ``bench/sqlite_turns.py``.)"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from models import base


@pytest.fixture
def engine(db: str) -> Engine:
    engine = base.get_engine(db)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE turns (who TEXT, at REAL)"))
    return engine


def _holder(engine: Engine, seconds: float, held: threading.Event) -> threading.Thread:
    def hold() -> None:
        with engine.begin() as c:
            c.execute(text("INSERT INTO turns VALUES ('holder', :at)"), {"at": time.monotonic()})
            held.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    return thread


def test_a_transaction_that_finds_the_lock_taken_gets_its_turn_after_it(engine: Engine) -> None:
    holder = _holder(engine, 0.5, threading.Event())  # far longer than one try (TURN_MS)
    with engine.begin() as c:
        c.execute(text("INSERT INTO turns VALUES ('waiter', :at)"), {"at": time.monotonic()})
    holder.join()
    with engine.connect() as c:
        rows = c.execute(text("SELECT who FROM turns ORDER BY rowid")).scalars().all()
    assert rows == ["holder", "waiter"]


def test_a_lock_held_past_the_bound_fails_the_waiter_and_it_wrote_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "BUSY_SECONDS", 0.3)
    holder = _holder(engine, 1.5, threading.Event())
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"), engine.begin() as c:
        c.execute(text("INSERT INTO turns VALUES ('waiter', :at)"), {"at": time.monotonic()})
    gave_up = time.monotonic() - started
    holder.join()
    assert 0.3 <= gave_up < 1.5  # the bound, not the holder's end
    with engine.connect() as c:
        assert c.execute(text("SELECT who FROM turns")).scalars().all() == ["holder"]

"""Human-readable ids (``FB20261124001``, ``INC20261124001``) that never repeat.

A counter row per prefix and day is incremented inside the caller's transaction: PostgreSQL's row
lock and SQLite's write lock serialise concurrent writers, so two processes never get one number.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base


class Counter(Base):
    __tablename__ = "counters"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


def next_id(session: Session, prefix: str, at: datetime) -> str:
    return next_ids(session, prefix, at, 1)[0]


def next_ids(session: Session, prefix: str, at: datetime, count: int) -> list[str]:
    """``count`` consecutive ids in one round trip (intake takes a batch's ids at once)."""
    key = f"{prefix}{at:%Y%m%d}"
    counters = Counter.__table__.c  # the table, not the ORM's bulk UPDATE: no objects to keep in step
    stmt = (
        update(Counter.__table__)
        .where(counters.key == key)
        .values(value=counters.value + count)
        .returning(counters.value)
    )
    last = session.execute(stmt).scalar_one_or_none()
    if last is None:
        try:
            with session.begin_nested():
                session.add(Counter(key=key, value=count))
            last = count
        except IntegrityError:  # another writer created the row first
            last = session.execute(stmt).scalar_one()
    return [f"{key}{value:03d}" for value in range(last - count + 1, last + 1)]

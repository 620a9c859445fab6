"""The directory of people: who they are, which roles they hold, how they are told, their token's hash.

Why the token in two parts (``token_id`` public and indexed, ``token_hash`` an argon2id hash of the
whole token): a request's token is found by its id in one indexed read and verified once; the secret
itself is never stored (``incident/people/tokens.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

NAME_LENGTH = 200


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    notify: Mapped[list[str]] = mapped_column(JSON, default=list)  # apprise URLs
    phone: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))
    token_id: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Deputy(Base):
    """代理审批: ``principal`` lets ``deputy`` act in ``role`` from ``starts_at`` until ``ends_at``.

    Why by name and role, checked against the directory when used: the principal must still hold the role
    at the moment of the approval (a delegation outliving the principal's authority grants nothing).
    """

    __tablename__ = "deputies"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(NAME_LENGTH))
    deputy: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    role: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ScopedToken(Base):
    """A token for a system, not a person: it may do one thing (``scope``: intake, metrics) and no other.

    Same format and hashing as a person's token (``incident/people/tokens.py``), so the request's token is
    found by its public id in whichever table holds it.
    """

    __tablename__ = "scoped_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]

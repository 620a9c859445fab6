"""Console sessions: opened at login, looked up on every console request, revoked at logout.

Why the directory is read again on each lookup (one indexed join, in a worker thread): a person removed
from the directory, or given other roles, is so at once in every open session, and in every process of a
scale-out; a session of the service token needs no directory.

Why the secret carries a prefix (``ses_``): ``credentials.identify`` tells a session secret from a
personal token (``inc_…``) and the service token by looking at it, so the API, the console and the
idempotency middleware keep one way of asking who a request is.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from incident.people.service import SERVICE, Actor
from models import ConsoleSession, Person, session_scope, utcnow

PREFIX = "ses_"
LIFETIME = timedelta(hours=12)  # one shift; the cookie's max-age is the same


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_session(given: str) -> bool:
    return given.startswith(PREFIX)


def open_session(actor: Actor, address: str | None) -> str:
    """A new session for ``actor``; returns the secret for the cookie (stored only as its hash)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with session_scope() as s:
        s.add(
            ConsoleSession(
                secret_hash=_hash(secret),
                who=actor.name,
                person=actor.person,
                address=address,
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
    return secret


def find(secret: str) -> Actor | None:
    """Who an open, unexpired, unrevoked session is, with the roles the directory gives them now."""
    with session_scope() as s:
        row = s.scalars(select(ConsoleSession).where(ConsoleSession.secret_hash == _hash(secret))).first()
        if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
            return None
        if not row.person:
            return SERVICE
        person = s.scalars(select(Person).where(Person.name == row.who)).first()
        return None if person is None else Actor(person.name, tuple(person.roles))


def revoke(secret: str) -> bool:
    """Revoke one session (logout); True if it was open."""
    with session_scope() as s:
        done = s.execute(
            update(ConsoleSession)
            .where(ConsoleSession.secret_hash == _hash(secret), ConsoleSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


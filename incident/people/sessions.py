"""Console sessions: opened at login, looked up on every console request, revoked at logout.

Why the directory is read again on each lookup (one indexed join, in a worker thread): a person removed
from the directory, or given other roles, is so at once in every open session, and in every process of a
scale-out; a session of the service token needs no directory.

Why bound to the credential it was opened with (``credential``, ``models/access.py``): a person's
session ends when their token is replaced or they are removed (even if someone is later added under the
same name); a service token's session ends when ``INCIDENT_API_TOKEN`` is rotated. A system's scoped
token opens no session: it may report or read metrics, not use the console.

Why the secret carries a prefix (``ses_``): ``credentials.identify`` tells a session secret from a
personal token (``inc_…``) and the service token by looking at it, so the API, the console and the
idempotency middleware keep one way of asking who a request is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from incident.errors import Forbidden
from incident.people import tokens
from incident.people.service import SERVICE, Actor
from models import ConsoleSession, Person, session_scope, utcnow

PREFIX = "ses_"
LIFETIME = timedelta(hours=12)  # one shift; the cookie's max-age is the same


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_session(given: str) -> bool:
    return given.startswith(PREFIX)


def _service_binding(secret: str, service_token: str) -> str:
    message = b"incident-service-session:" + service_token.encode()
    return hmac.new(secret.encode(), message, "sha256").hexdigest()


def open_session(actor: Actor, token: str, address: str | None) -> str:
    """A new session for ``actor``, who presented ``token``; returns the secret for the cookie (stored
    only as its hash). A system's scoped token is refused: the console is for people and the service."""
    if actor.scope is not None:
        raise Forbidden(f"{actor.name}: a system's token cannot open a console session")
    secret = PREFIX + secrets.token_urlsafe(32)
    credential = tokens.token_id(token) if actor.person else _service_binding(secret, token)
    if credential is None:  # a person identified by something that is not their token: never
        raise Forbidden("no console session without a person's own token")
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
                credential=credential,
            )
        )
    purge()  # logins are rare: the expired rows go here as well as in the worker's sweep
    return secret


def find(secret: str, service_token: str) -> Actor | None:
    """Who an open, unexpired, unrevoked session is, with the roles the directory gives them now; None
    when the credential it was opened with is no longer valid (see the module)."""
    with session_scope() as s:
        row = s.scalars(select(ConsoleSession).where(ConsoleSession.secret_hash == _hash(secret))).first()
        if row is None or row.revoked_at is not None or row.expires_at <= utcnow() or not row.credential:
            return None
        if not row.person:
            bound = _service_binding(secret, service_token)
            ok = row.who == SERVICE.name and hmac.compare_digest(bound, row.credential)
            return SERVICE if ok else None
        person = s.scalars(select(Person).where(Person.name == row.who)).first()
        if person is None or person.token_id != row.credential:
            return None
        return Actor(person.name, tuple(person.roles))


def purge(keep_revoked: timedelta = timedelta(days=1)) -> int:
    """Delete expired sessions, and revoked ones a day after (the audit keeps the logins); the count."""
    now = utcnow()
    with session_scope() as s:
        done = s.execute(
            delete(ConsoleSession).where(
                or_(ConsoleSession.expires_at <= now, ConsoleSession.revoked_at <= now - keep_revoked)
            )
        )
        return int(done.rowcount or 0)  # type: ignore[attr-defined]


def revoke(secret: str) -> bool:
    """Revoke one session (logout); True if it was open."""
    with session_scope() as s:
        done = s.execute(
            update(ConsoleSession)
            .where(ConsoleSession.secret_hash == _hash(secret), ConsoleSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]

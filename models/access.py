"""Who came in and what they saw: console sessions, and the access events the audit adds to the timeline.

Why a session row instead of the token in the cookie: a cookie that *is* the token can't be revoked
(logout only asked the browser to forget it) and leaks the credential to anything that reads cookies.
The cookie now carries a random session secret; the row holds only its SHA-256 (the secret has 256 bits
of entropy, so a slow hash adds nothing), who it is, until when, and whether it was revoked.

Why access events apart from the timeline: a login, a refused login or a reveal of a customer's contact
may concern no incident, and the timeline's rows all belong to one. Every other act through the API or
the console that leaves no timeline row (the directory, tokens, deputies, rotas, the inbox) and every
refusal (403) and wrong token (401, aggregated per address) is an access event too
(``incident/api/audittrail.py``).

Why a session is bound to its credential (``credential``): a session outlives nothing it was opened
with. For a person it is their token's public id, so a token replaced (``incident people update
--new-token``) or a person removed and added again under the same name ends every session opened
before; for the service token it is an HMAC of that token keyed by the session's own secret, so rotating
``INCIDENT_API_TOKEN`` ends the service's sessions, and the database alone (which holds only the secret's
SHA-256) cannot be used to test guesses of the service token.

Why failed logins in the database (``LoginFailure``): every replica of the service counts the same
failures, and a restart does not wipe an attacker's count.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.people import NAME_LENGTH


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    who: Mapped[str] = mapped_column(String(NAME_LENGTH))  # a person's name, or the service token
    person: Mapped[bool]
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]
    credential: Mapped[str | None] = mapped_column(String(64))  # see the module; NULL: opened before 0010


class AccessEvent(Base):
    __tablename__ = "access_events"
    __table_args__ = (Index("ix_access_incident", "incident_id"), Index("ix_access_at", "at"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    who: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(32))  # login, logout, reveal, add_person, …
    outcome: Mapped[str] = mapped_column(String(16))  # ok, refused
    channel: Mapped[str] = mapped_column(String(16))  # console, api, cli, prefect
    address: Mapped[str | None] = mapped_column(String(64))
    incident_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class LoginFailure(Base):
    """One failed console login; ``key``: the address and the token id tried (incident/people/logins.py)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160), index=True)
    at: Mapped[datetime] = mapped_column(index=True)

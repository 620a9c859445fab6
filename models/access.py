"""Who came in and what they saw: console sessions, and the access events the audit adds to the timeline.

Why a session row instead of the token in the cookie: a cookie that *is* the token can't be revoked
(logout only asked the browser to forget it) and leaks the credential to anything that reads cookies.
The cookie now carries a random session secret; the row holds only its SHA-256 (the secret has 256 bits
of entropy, so a slow hash adds nothing), who it is, until when, and whether it was revoked.

Why access events apart from the timeline: a login, a refused login or a reveal of a customer's contact
may concern no incident, and the timeline's rows all belong to one.
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
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AccessEvent(Base):
    __tablename__ = "access_events"
    __table_args__ = (Index("ix_access_incident", "incident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    who: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(32))  # login, logout, reveal
    outcome: Mapped[str] = mapped_column(String(16))  # ok, refused
    channel: Mapped[str] = mapped_column(String(16))  # console, api
    address: Mapped[str | None] = mapped_column(String(64))
    incident_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)

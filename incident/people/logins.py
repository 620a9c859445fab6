"""The console's login limit: at most ``LIMIT`` failed logins per key in ``WINDOW``, counted in the database.

Why keyed on the address *and* the token tried (``key``): behind a reverse proxy, or a company's NAT,
many people share one address; keyed on the address alone, ten wrong logins by anyone would lock every
colleague out. A personal token names its id in clear (``inc_<id>_…``), so a wrong guess at one
person's token counts against that id from that address, and a colleague typing their own token is not
slowed. Anything else typed (the service token, garbage) counts against the address's one other key.

Why the address is the client's, not the proxy's: ``incident serve`` reads ``X-Forwarded-For`` only from
the proxies named in ``INCIDENT_TRUSTED_PROXIES`` (uvicorn's own proxy-headers middleware, configured
in ``incident/server.py``); anyone else's header is ignored, so a client cannot pick an address to
escape its count.

Why in the database: replicas of the service behind one load balancer count the same failures, and a
restart does not forget them. A success clears its key's count, so a person who mistyped twice this
morning starts the next day with a clean slate. Old failures go in the worker's sweep (``purge``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from incident.people import tokens
from models import LoginFailure, session_scope, utcnow

LIMIT = 10
WINDOW = timedelta(minutes=5)


def key(address: str | None, token: str) -> str:
    """The count a login attempt belongs to: its address, and the token id it names (or ``-``)."""
    return f"{address or 'unknown'}|{tokens.token_id(token) or '-'}"[:160]


def retry_after(login_key: str, now: datetime | None = None) -> int:
    """Seconds until ``login_key`` may try again (0: it may now)."""
    now = now or utcnow()
    with session_scope() as s:
        count, oldest = s.execute(
            select(func.count(), func.min(LoginFailure.at)).where(
                LoginFailure.key == login_key, LoginFailure.at > now - WINDOW
            )
        ).one()
    if count < LIMIT or oldest is None:
        return 0
    return max(1, int((oldest + WINDOW - now).total_seconds()) + 1)


def failed(login_key: str, now: datetime | None = None) -> None:
    with session_scope() as s:
        s.add(LoginFailure(key=login_key, at=now or utcnow()))


def succeeded(login_key: str) -> None:
    """A right token clears the count of its key."""
    with session_scope() as s:
        s.execute(delete(LoginFailure).where(LoginFailure.key == login_key))


def purge(now: datetime | None = None) -> int:
    """Forget failures older than the window (the audit keeps every refused login); the count."""
    with session_scope() as s:
        done = s.execute(delete(LoginFailure).where(LoginFailure.at <= (now or utcnow()) - WINDOW))
        return int(done.rowcount or 0)  # type: ignore[attr-defined]

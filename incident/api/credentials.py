"""The credential a request presents (a bearer token, scheme case-insensitive, or the console's session
cookie), and who it is (``identify``: the service token, a person of the directory, or a console session).

Why one function: the API's dependency, the console and the idempotency middleware (which must not
replay a stored answer to a caller without the token) read the credential the same way.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi.concurrency import run_in_threadpool

from incident.people import service as people
from incident.people import sessions, tokens
from incident.people.service import SERVICE, Actor

COOKIE = "incident_session"  # a session secret (incident/people/sessions.py), never a token


def bearer(authorization: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; the scheme is case-insensitive (RFC 7235 §2.1)."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def presented(headers: dict[bytes, bytes], cookie_header: str | None = None) -> str:
    """The token from raw ASGI headers: the bearer header first, else the console's cookie."""
    given = bearer(headers.get(b"authorization", b"").decode("latin-1"))
    if given:
        return given
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(
            cookie_header if cookie_header is not None else headers.get(b"cookie", b"").decode("latin-1")
        )
    except CookieError:
        return ""
    morsel = jar.get(COOKIE)
    return from_cookie(morsel.value if morsel else "")


def from_cookie(value: str | None) -> str:
    """The cookie's value if it is a session secret: a token put in the cookie by hand counts for nothing
    (the cookie is the console's, and only a login writes it)."""
    return value if value and sessions.is_session(value) else ""


async def identify(given: str, service_token: str) -> Actor | None:
    """Who presents ``given``: the service token, a person of the directory, or nobody (None).

    A person's token already verified is answered from the directory's in-memory cache without a thread
    hop; an unknown one is verified (argon2, ~50 ms) in a worker thread once (incident/people/tokens.py).
    """
    if not given:
        return None
    if secrets.compare_digest(given.encode(), service_token.encode()):
        return SERVICE
    if sessions.is_session(given):
        return await run_in_threadpool(sessions.find, given, service_token)
    actor = people.cached(given)
    if actor is None and tokens.token_id(given) is not None:
        actor = await run_in_threadpool(people.identify, given)
    return actor


def actor_name(request: Any, by: str | None) -> str:
    """Who a record names: a person as themselves; the service token as the name it gives (scripts)."""
    actor = getattr(request.state, "actor", None)
    if actor is not None and actor.person:
        return str(actor.name)
    return by or (str(actor.name) if actor is not None else "service token")

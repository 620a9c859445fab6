"""Console login: a person's token (or the service token), typed once, opens a server-side session whose
secret the HttpOnly ``incident_session`` cookie carries. Actions from the console are recorded as that
person, as from the CLI.

Why a session and not the token in the cookie: logout revokes it on the server (a copied cookie stops
working), it expires after a shift whatever the browser does, and the token itself never travels again.
The cookie is HttpOnly (page scripts never see it) and SameSite=Lax (other sites cannot post forms with
it); every console form also carries a CSRF value derived from the session, so a form posted from
elsewhere is refused even by a browser that ignores SameSite.

Why login is limited (``incident/people/logins.py``: per address and token id tried, in the database):
a token can't be guessed, but without a limit the login form is a free oracle (200 wrong tries took
0.4 s); ten failures in five minutes close it for the rest of the window, and each refusal is in the
audit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs, quote

from fastapi import Request

from incident.api.credentials import COOKIE, bearer, from_cookie, identify
from incident.people import via
from incident.people.service import Actor
from incident.people.sessions import LIFETIME

COOKIE_MAX_AGE = int(LIFETIME.total_seconds())  # the session's own lifetime: one shift


class LoginRequired(Exception):
    """Raised by console routes without a valid token; answered with a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def server_token(request: Request) -> str:
    return str(request.app.state.console_token)


def given_token(request: Request) -> str:
    return bearer(request.headers.get("authorization")) or from_cookie(request.cookies.get(COOKIE))


async def who(request: Request, given: str | None = None) -> Actor | None:
    """Who the request's (or ``given``) token is: verified once, then answered from the cache."""
    actor = await identify(given_token(request) if given is None else given, server_token(request))
    if given is None:
        request.state.actor = actor
        if actor is not None and (here := via.current()) is not None:
            here.who = actor.name
    return actor


def logged_in(request: Request) -> bool:
    """Whether this request was found to be someone (``who`` ran: every console page's dependency)."""
    return getattr(request.state, "actor", None) is not None


def address(request: Request) -> str | None:
    """The client's address: uvicorn has replaced a trusted proxy's by ``X-Forwarded-For``'s (server.py)."""
    return request.client.host if request.client else None


async def require_login(request: Request) -> None:
    """FastAPI dependency of every console page and form (async: no worker-thread hop per request)."""
    if await who(request) is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)


def csrf_token(request: Request) -> str:
    """A value only someone holding the token can compute; every console form posts it back."""
    mine = hashlib.sha256(given_token(request).encode()).hexdigest().encode()  # per credential
    key = server_token(request).encode()
    return hmac.new(key, b"incident-console-csrf:" + mine, hashlib.sha256).hexdigest()


def csrf_ok(request: Request, form: dict[str, str]) -> bool:
    return secrets.compare_digest(form.get("csrf", "").encode(), csrf_token(request).encode())


def safe_next(value: str | None) -> str:
    """Only local paths: the login form must not become an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def login_url(next_path: str) -> str:
    return "/login" + ("" if next_path == "/" else f"?next={quote(next_path, safe='')}")


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form as a dict of the last value per field (no multipart needed here)."""
    return {key: values[-1] for key, values in (await read_lists(request)).items()}


async def read_lists(request: Request) -> dict[str, list[str]]:
    """Every value of every field (a group of checkboxes posts one name many times)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)

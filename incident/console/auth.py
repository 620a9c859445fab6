"""Console login: a person's token (or the service token), typed once, kept in the HttpOnly
``incident_token`` cookie. Actions from the console are recorded as that person, as from the CLI.

Why the same token and cookie as the API (incident/api.py accepts it): one secret to hand out and to
rotate. The cookie is HttpOnly (page scripts never see it) and SameSite=Lax (other sites cannot post
forms with it); every console form also carries a CSRF value derived from the token, so a form
posted from elsewhere is refused even by a browser that ignores SameSite.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs, quote

from fastapi import Request

from incident.api.credentials import bearer, identify
from incident.people import service as people
from incident.people.service import Actor

COOKIE = "incident_token"
COOKIE_MAX_AGE = 12 * 3600  # one shift


class LoginRequired(Exception):
    """Raised by console routes without a valid token; answered with a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def server_token(request: Request) -> str:
    return str(request.app.state.console_token)


def given_token(request: Request) -> str:
    return bearer(request.headers.get("authorization")) or request.cookies.get(COOKIE, "")


def token_matches(given: str, request: Request) -> bool:
    """The service token, or a person's token this process has verified lately (``people.cached``)."""
    if secrets.compare_digest(given.encode(), server_token(request).encode()):
        return True
    return bool(given) and people.cached(given) is not None


async def who(request: Request, given: str | None = None) -> Actor | None:
    """Who the request's (or ``given``) token is: verified once, then answered from the cache."""
    actor = await identify(given_token(request) if given is None else given, server_token(request))
    if given is None:
        request.state.actor = actor
    return actor


def logged_in(request: Request) -> bool:
    if getattr(request.state, "actor", None) is not None:
        return True
    return token_matches(given_token(request), request)


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
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}

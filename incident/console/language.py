"""The console's language per request: ``?lang=`` (remembered in a cookie), the cookie, the browser's
Accept-Language, else INCIDENT_LANG.

Why a pure ASGI middleware and not a dependency: the language must be known before any console code
runs (login errors, flash messages, refusals are built in Python before a template), and a plain ASGI
wrapper leaves the board's server-sent-event stream untouched (no buffering of the body).

Why the records and the post-mortem reader do not remember ``?lang``: there it chooses the document's
language (a Chinese team reads an English record for a foreign customer) — the console stays as it was.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from incident.api.words import LANGS, code_of, from_accept
from incident.console.render import LANG_COOKIE, REQUEST_LANG

__all__ = ["LANGS", "LanguageMiddleware", "choose", "from_accept", "remembers"]
YEAR = 365 * 86400


def remembers(path: str) -> bool:
    """Whether ``?lang`` on this path is the console's switch (not a document's or the API's language)."""
    return not (path.startswith(("/api/", "/static/")) or "/records/" in path or path.endswith("/postmortem"))


def choose(path: str, query: str, headers: dict[str, str]) -> tuple[str | None, bool]:
    """(language, whether to remember it). None: nothing chosen, INCIDENT_LANG applies."""
    asked = code_of((parse_qs(query).get("lang") or [""])[-1])
    if asked and remembers(path):
        return asked, True
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except CookieError:  # a malformed Cookie header: as if there were none
        cookie = SimpleCookie()
    kept = cookie.get(LANG_COOKIE)
    if kept is not None and code_of(kept.value):
        return code_of(kept.value), False
    return from_accept(headers.get("accept-language", "")), False


class LanguageMiddleware:
    """Sets ``render.REQUEST_LANG`` for the request; adds the cookie when ``?lang`` switched it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        chosen, remember = choose(scope.get("path", ""), scope.get("query_string", b"").decode(), headers)
        token = REQUEST_LANG.set(chosen)

        async def send_with_cookie(message: Message) -> None:
            if remember and message["type"] == "http.response.start":
                value = f"{LANG_COOKIE}={chosen}; Max-Age={YEAR}; Path=/; SameSite=Lax"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", value.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            REQUEST_LANG.reset(token)

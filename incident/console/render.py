"""Turning console templates into responses: one sandboxed, autoescaping jinja2 environment.

Why sandboxed *and* autoescaped: summaries, notes and reasons are typed by customers and staff; they
are data that is only ever interpolated (``{{ 7*7 }}`` stays literal because values are never used as
template source) and escaped (``<script>`` shows as text). The Content-Security-Policy sent with every
page allows no inline script at all, so even a bug in escaping could not run code.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

import playbooks
from incident import settings
from incident.console import auth
from incident.records.documents import i18n

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "incident_flash"
R = TypeVar("R", bound=Response)
LANG = "en"  # the older pages' labels (not yet translated); records and the post-mortem have their switch
LANG_COOKIE = "incident_lang"
REQUEST_LANG: ContextVar[str | None] = ContextVar("console_lang", default=None)  # set by console.language

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def zone() -> tzinfo:
    """Times are shown in INCIDENT_TZ (as in the records), else UTC."""
    try:
        return ZoneInfo(settings.get().tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def when(value: datetime | str | None) -> str:
    if not value:
        return "—"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = at.astimezone(zone())
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".strip()


def lang() -> str:
    """The language of this request's console words (``console.language`` chose it), else INCIDENT_LANG.

    Why a context variable: templates and the Python messages ask here, so one page never mixes the two
    languages; worker threads (run_in_threadpool) inherit the context.
    """
    return REQUEST_LANG.get() or settings.get().lang


def t(key: str, **values: object) -> str:
    """A console word from the vocabulary (``console`` domain), its ``{placeholders}`` filled."""
    words = i18n.label("console", key, lang()) or key
    return words.format(**values) if values else words


def label(code: object, domain: str, language: str | None = None) -> str:
    return i18n.label(domain, code, language or LANG) or "—"


def category(code: str, language: str | None = None) -> str:
    try:
        return playbooks.get(code).title(language or LANG)
    except playbooks.PlaybookError:
        return code


def point(key: str | None, language: str | None = None) -> str:
    """A waiting point (``approval-2``) in words: 'Approve the solution (round 2)'."""
    if not key:
        return "—"
    step, _, number = key.partition("-")
    words = i18n.label("duty", step, language or LANG)
    if not number.isdigit():
        return words
    return f"{words}（第 {number} 轮）" if language == "zh" else f"{words} (round {number})"


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True
    )
    env.filters.update(
        when=when,
        label=label,
        category=category,
        point=point,
        roles=lambda codes, language=None: i18n.roles(codes, language or LANG) or "—",
    )
    env.globals.update(t=t, form_key=form_key)
    return env


def form_key() -> str:
    """A fresh one-time key for one rendered form (its hidden ``idempotency_key``): the API's idempotency
    middleware answers a second post of the same form (a double click, a reload) as it answered the
    first, with no second act (incident/api/idempotency.py)."""
    return uuid.uuid4().hex


def take_flash(request: Request) -> dict[str, str] | None:
    """The message left by the last POST (post-redirect-get); shown once."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, text = unquote(raw).partition(":")
    return {"kind": kind if kind in ("ok", "error") else "ok", "text": text[:500]}


def set_flash(response: Response, kind: str, text: str) -> None:
    response.set_cookie(
        FLASH_COOKIE, quote(f"{kind}:{text[:500]}"), max_age=120, httponly=True, samesite="lax", path="/"
    )


def secure(response: R) -> R:
    """Every console response: no inline script, no framing, no caching of pages with personal data."""
    response.headers.update(SECURITY_HEADERS)
    return response


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    flash = take_flash(request)
    logged_in = auth.logged_in(request)
    html = (
        environment()
        .get_template(template)
        .render(
            flash=flash,
            csrf=auth.csrf_token(request) if logged_in else "",  # never shown to strangers
            logged_in=logged_in,
            path=request.url.path,
            **{"lang": lang(), **context},  # the document reader passes the language it shows
        )
    )
    response = HTMLResponse(html, status_code=status)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return secure(response)

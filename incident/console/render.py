"""Turning console templates into responses: one sandboxed, autoescaping jinja2 environment.

Why sandboxed *and* autoescaped: summaries, notes and reasons are typed by customers and staff; they
are data that is only ever interpolated (``{{ 7*7 }}`` stays literal because values are never used as
template source) and escaped (``<script>`` shows as text). The Content-Security-Policy sent with every
page allows no inline script at all, so even a bug in escaping could not run code.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

import playbooks
from incident import settings
from incident.console import auth
from incident.feedback.privacy import mask_text
from incident.incidents import timeline as events
from incident.records.documents import i18n
from playbooks import vocabulary

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "incident_flash"
R = TypeVar("R", bound=Response)
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
    """Times are shown where the team is: INCIDENT_TZ, else the machine's zone (as in the records)."""
    return settings.zone()


def when(value: datetime | str | None) -> str:
    """A time as "2026-12-06 10:30 +08:00" (the offset says which zone)."""
    return settings.local_time(value)


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
    """A code's word in the page's language (``language`` when a template asks for another)."""
    return i18n.label(domain, code, language or lang()) or "—"


def category(code: str, language: str | None = None) -> str:
    try:
        return playbooks.get(code).title(language or lang())
    except playbooks.PlaybookError:
        return code


def point(key: str | None, language: str | None = None) -> str:
    """A waiting point (``approval-2``) in words: 'Approve the solution (round 2)'."""
    if not key:
        return "—"
    language = language or lang()
    step, _, number = key.partition("-")
    words = i18n.label("duty", step, language)
    if not number.isdigit():
        return words
    return f"{words}（第 {number} 轮）" if language == "zh" else f"{words} (round {number})"


def who(by: str | None) -> str:
    """The timeline's "by" in words (系统, 期限监控, a role after a name, a channel before an id)."""
    return events.who(by, lang()) or "—"


def event_words(event: dict[str, Any], category_code: str | None = None) -> str:
    """A timeline event's detail in the page's language, contacts in it masked."""
    said = events.words(event["event"], event.get("detail"), event.get("data"), lang(), category_code)
    return mask_text(said)


def access_detail(text: str | None) -> str:
    """What the audit stored about a login, a reveal ("wrong token", "3 customers") or a refusal (kept
    in English as raised) in words."""
    said = vocabulary.translate("access", text or "", lang())
    return (vocabulary.translate("error", said, lang()) if said == text else said) or "—"  # a refusal


def reason(value: object) -> str:
    """A level reason (grading's code, or an older English text) in words."""
    return vocabulary.reason(value, lang())


def html_lang(language: str | None = None) -> str:
    """``<html lang>``: zh-CN or en, as the page is written."""
    return "en" if (language or lang()) == "en" else "zh-CN"


def switch_query(request: Request) -> str:
    """The page's query without ``lang``: the header's language switch keeps the board's filters."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return urlencode(kept) + "&" if kept else ""


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
        roles=lambda codes, language=None: i18n.roles(codes, language or lang()) or "—",
        who=who,
        words=event_words,
        reason=reason,
        access_detail=access_detail,
        level=lambda n, language=None: i18n.label("level_short", n, language or lang()),
        progress=lambda figure: vocabulary.progress_line(figure, lang()),  # 首次联系：已联系 37/120 …
    )
    env.globals.update(t=t, html_lang=html_lang, form_key=form_key)
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
            lang_query=switch_query(request),
            **{"lang": lang(), **context},  # the document reader passes the language it shows
        )
    )
    response = HTMLResponse(html, status_code=status)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return secure(response)

"""Send one rendered notice to one apprise URL, retrying with exponential backoff.

Why a fresh ``Apprise()`` per attempt: apprise plugins throttle repeated use of one instance
(5.5 s between sends for most plugins, e-mail included), which would turn our short backoff
into multi-second stalls; tenacity owns the spacing of attempts instead. Why worker threads:
apprise's notify is blocking I/O, and channels must not wait for one another.

Settings (environment, read on every notice):
- ``INCIDENT_NOTIFY_RETRIES`` — attempts per channel, first one included (default 4).
- ``INCIDENT_NOTIFY_BACKOFF`` — first wait in seconds, doubled after each failure (default 0.2,
  so 0.2, 0.4, 0.8 s; capped at 30 s).
- ``INCIDENT_NOTIFY_TIMEOUT`` — cap in seconds on apprise's connect/read timeouts per attempt
  (default 10; apprise's own defaults are 4 s + 4 s for HTTP and 15 s for SMTP, and ``?cto=``
  / ``?rto=`` in a URL lower them further).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from apprise import Apprise, AppriseAsset, NotifyFormat
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from incident import settings
from models.base import utcnow
from notifiers import applog
from notifiers.render import Rendered

log = logging.getLogger(__name__)

_ASSET = AppriseAsset(app_id="Incident Orchestrator", app_desc="After-sales incident response")


class SendError(RuntimeError):
    """One attempt failed; the message is what apprise said about it."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    error: str | None
    sent_at: datetime | None


def max_attempts() -> int:
    return settings.get().notify_retries


def backoff() -> float:
    return settings.get().notify_backoff


def timeout_cap() -> float:
    return settings.get().notify_timeout


def _attempt(url: str, notice: Rendered, cap: float) -> None:
    """One blocking send (runs in a worker thread); raises SendError when it fails."""
    apobj = Apprise(asset=_ASSET)
    with applog.capture() as problems:
        if not apobj.add(url):
            raise SendError("apprise cannot load this URL: " + "; ".join(problems))
        plugin = apobj[0]
        for attr in ("socket_connect_timeout", "socket_read_timeout"):
            current = getattr(plugin, attr, None)
            if isinstance(current, int | float):
                setattr(plugin, attr, min(float(current), cap))
        # HTML-minded channels (e-mail) get the autoescaped HTML body; the rest plain text.
        html = plugin.notify_format == NotifyFormat.HTML
        ok = apobj.notify(
            title=notice.title,
            body=notice.html if html else notice.text,
            body_format=NotifyFormat.HTML if html else NotifyFormat.TEXT,
        )
    if not ok:
        raise SendError("; ".join(dict.fromkeys(problems)) or "apprise reported a failure")


async def deliver(url: str, redacted: str, notice: Rendered) -> Outcome:
    """Send with retries; never raises (the outcome says what happened)."""
    attempts = 0
    cap = timeout_cap()
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max_attempts()),
        wait=wait_exponential(multiplier=backoff(), max=30),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                started = time.perf_counter()
                try:
                    await asyncio.to_thread(_attempt, url, notice, cap)
                except Exception as exc:
                    log.info("notice to %s failed (attempt %d): %s", redacted, attempts, exc)
                    raise
                log.debug("notice to %s sent in %.3fs", redacted, time.perf_counter() - started)
    except Exception as exc:
        error = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}: {exc}"
        log.warning("notice to %s failed after %d attempts: %s", redacted, attempts, error)
        return Outcome(ok=False, attempts=attempts, error=error, sent_at=None)
    return Outcome(ok=True, attempts=attempts, error=None, sent_at=utcnow())

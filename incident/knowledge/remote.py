"""One HTTP call to a knowledge base, retried as notices are, and what its failure means.

Why three kinds of failure: a 429, a 5xx or a network error says "later" (retried here with
``INCIDENT_NOTIFY_RETRIES`` attempts, waiting ``Retry-After`` when the vendor sends it — both Atlassian
and Notion document it on 429 — else backing off from ``INCIDENT_NOTIFY_BACKOFF``); a 401 or 403 says
the credential is wrong, the same for every page, so the whole target stops (``Refused``) rather than
failing each page in turn; any other 4xx is about this page (``Rejected``: a title taken, a parent not
found) and is not retried now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from incident import settings

RETRY_AFTER_MAX = 60.0  # seconds: a longer Retry-After is left to the sweep's next pass
BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class Written:
    """A page as a knowledge base now holds it."""

    remote_id: str
    version: int
    url: str


class PushError(Exception):
    """A push failed; the message says how (HTTP status and the vendor's words)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Transient(PushError):
    """Worth another attempt: network, 429, 5xx."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class Refused(PushError):
    """401/403: the credential (or its permissions) is wrong for every page of this target."""


class Rejected(PushError):
    """Another 4xx: this page's request was refused (not retried until it changes)."""


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    try:
        return min(max(float(raw), 0.0), RETRY_AFTER_MAX)
    except ValueError:  # an HTTP date or garbage: back off instead
        return None


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, Transient) and error.retry_after is not None:
        return error.retry_after
    return min(settings.get().notify_backoff * 2 ** (state.attempt_number - 1), BACKOFF_MAX)


def check(response: httpx.Response) -> httpx.Response:
    """The response if it is a success, else the failure it stands for."""
    status = response.status_code
    if status < 400:
        return response
    said = f"HTTP {status}: {response.text[:300]}"
    if status == 429 or status >= 500:
        raise Transient(said, status, _retry_after(response) if status in (429, 503) else None)
    if status in (401, 403):
        raise Refused(said, status)
    raise Rejected(said, status)


@dataclass
class Caller:
    """An ``httpx.AsyncClient`` whose calls are retried; ``attempts`` counts every request sent."""

    client: httpx.AsyncClient
    attempts: int = 0

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.get().notify_retries),
            wait=_wait,
            retry=retry_if_exception_type(Transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                self.attempts += 1
                try:
                    response = await self.client.request(method, url, **kwargs)
                except httpx.HTTPError as exc:
                    raise Transient(f"{type(exc).__name__}: {exc}") from exc
                return check(response)
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        body = (await self.call(method, url, **kwargs)).json()
        if not isinstance(body, dict):
            raise Rejected(f"{method} {url}: expected a JSON object, got {type(body).__name__}")
        return body

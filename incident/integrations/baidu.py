"""Baidu AI Cloud 舆情 (public opinion): a keyword task per open incident; a negative item is media exposure.

Each open incident that names a product model or batch gets a monitoring task at Baidu (its keywords);
its results are read on a schedule (``INCIDENT_BAIDU_POLL_SECONDS``) within ``INCIDENT_BAIDU_RATE``
requests a second. A NEGATIVE item becomes an alarm with ``media=True`` and the item's link as
evidence, recorded through intake in the incident's own correlation (so grading raises the incident
to level 1) together with its link claim and a ``media_exposure`` event on the timeline, in one
transaction: the same item twice is one record. A closed incident's task is deleted at Baidu.

Documentation followed (cloud.baidu.com/doc/TRENDS):
- 实时舆情 (Vjwvygqpq): ``POST /v1/tasks`` with ``{"name", "requiredKeywords", "optionalKeywords",
  "filterKeywords", "geoIds", "taskType"}`` answers the new task's id (e.g. ``699``); ``DELETE
  /v1/tasks/{taskId}``; host ``yuqing.bce.baidu.com``, header ``authorization``.
- 舆情分析 (skmyii9bo): the task's results are read under ``/v1/tasks/{taskId}/yuqing`` with the query
  ``autoRefresh``, ``timeFrom``/``timeTo`` (ms), ``limit`` (1-1000), ``start``, ``sort`` (``DESC``:
  newest first) and ``sentiment`` (POSITIVE, NEUTRAL, NEGATIVE); the item list's path and the items'
  field names were not legible in the pages we could read: the fields read here are the output table
  of API接口参考 (Ujwvygpk6) as camelCase JSON: ``title``, ``url``, ``publishTime``, ``source``,
  ``mediaType``, ``summary``, ``sentiment`` (``NEGATIVE``, or 负面 as that table says), in ``data``.
- 生成认证字符串 (doc/Reference/s/njwvz1yfu): ``bce-auth-v1/{ak}/{timestamp}/{expiration}/{signed
  headers}/{signature}``; tests hold the signer to the page's worked example.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

import httpx

from incident import settings
from incident.integrations import opinion
from models import utcnow

log = logging.getLogger("incident.integrations.baidu")

SYSTEM = "baidu"
EXPIRATION = 1800
PAGE = 100  # items read per request


def _encode(text: str, safe: str = "") -> str:
    return quote(text, safe="-_.~" + safe)


def authorization(ak: str, sk: str, method: str, url: str, headers: dict[str, str], at: datetime) -> str:
    """BCE's v1 authentication string for one request; ``headers`` are the ones signed (host at least)."""
    parts = urlsplit(url)
    prefix = f"bce-auth-v1/{ak}/{at.strftime('%Y-%m-%dT%H:%M:%SZ')}/{EXPIRATION}"
    key = hmac.new(sk.encode(), prefix.encode(), hashlib.sha256).hexdigest()
    pairs = [(p.split("=", 1) + [""])[:2] for p in parts.query.split("&") if p]
    query = "&".join(sorted(f"{_encode(unquote_plus(k))}={_encode(unquote_plus(v))}" for k, v in pairs))
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    canonical_headers = "\n".join(sorted(f"{_encode(k)}:{_encode(v)}" for k, v in signed.items()))
    canonical = "\n".join([method.upper(), _encode(parts.path or "/", "/"), query, canonical_headers])
    signature = hmac.new(key.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return f"{prefix}/{';'.join(sorted(signed))}/{signature}"


class Pace:
    """At most ``rate`` requests a second, and at most ``budget`` in one pass of the sweep.

    The gap is counted from the end of the previous request, so it holds as Baidu counts arrivals
    too (a slow request does not let the next two arrive closer together)."""

    def __init__(self, rate: float, budget: int) -> None:
        self.gap, self.budget, self._last = 1 / rate, budget, float("-inf")

    async def turn(self) -> bool:
        if self.budget <= 0:
            return False
        wait = self._last + self.gap - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.budget -= 1
        return True

    def done(self) -> None:
        self._last = time.monotonic()


class Baidu:
    """The calls of one pass, signed and paced."""

    def __init__(self, http: httpx.AsyncClient, pace: Pace) -> None:
        self.http, self.pace = http, pace

    async def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """Baidu's answer, or None when this pass has no request left (the rest wait for the next)."""
        if not await self.pace.turn():
            return None
        cfg = settings.get()
        request = self.http.build_request(method, cfg.baidu_url.rstrip("/") + path, **kwargs)
        headers = {"host": request.headers["host"]}
        at = datetime.now(UTC)
        request.headers["authorization"] = authorization(
            cfg.baidu_ak or "", cfg.baidu_sk or "", method, str(request.url), headers, at
        )
        request.headers["x-bce-date"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            return await self.http.send(request)
        finally:
            self.pace.done()


async def _create(call: Baidu, task: opinion.Watch, now: datetime) -> None:
    body = {
        "name": f"incident {task.incident_id}", "requiredKeywords": list(task.keywords),
        "optionalKeywords": [], "filterKeywords": [], "geoIds": [], "taskType": "PRODUCT",
    }  # fmt: skip
    answer = await call("POST", "/v1/tasks", json=body)
    if answer is None:  # no request left in this pass
        await asyncio.to_thread(opinion.unclaim, task.incident_id, now)
        return
    if answer.status_code >= 300:
        await asyncio.to_thread(opinion.unclaim, task.incident_id, now, True)
        log.warning("no Baidu task for %s (tried again later): HTTP %s %s", task.incident_id,
                    answer.status_code, answer.text[:200])  # fmt: skip
        return
    created = answer.json()  # the new task's id (the documented example answers 699)
    task_id = str(created.get("id", "") if isinstance(created, dict) else created).strip()
    if not task_id.isdigit():
        await asyncio.to_thread(opinion.unclaim, task.incident_id, now, True)
        log.warning("Baidu created no task id for %s: %s", task.incident_id, answer.text[:200])
        return
    await asyncio.to_thread(opinion.created, task.incident_id, task_id, now)


async def _delete(call: Baidu, incident_id: str, task_id: str) -> None:
    answer = await call("DELETE", f"/v1/tasks/{task_id}")
    if answer is not None and (answer.status_code < 300 or answer.status_code == 404):
        await asyncio.to_thread(opinion.forget, incident_id)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def _read(call: Baidu, task: opinion.Due, now: datetime) -> int:
    """One task's items since its last read (newest first, a page at a time); the negative ones recorded."""
    recorded, start = 0, 0
    while True:
        params = {"autoRefresh": 1, "timeFrom": _ms(task.since), "timeTo": _ms(now), "limit": PAGE,
                  "start": start, "sort": "DESC"}  # fmt: skip
        answer = await call("GET", f"/v1/tasks/{task.task_id}/yuqing", params=params)
        if answer is None:  # no request left in this pass: the window is read again in the next
            await asyncio.to_thread(opinion.resume, task.incident_id, now)
            return recorded
        if answer.status_code >= 300:
            await asyncio.to_thread(opinion.failed, task.incident_id, now)
            log.warning("Baidu task %s not read: HTTP %s", task.task_id, answer.status_code)
            return recorded
        items = opinion.items_of(answer.json())
        for item in items:
            recorded += await asyncio.to_thread(opinion.record, task.incident_id, item, now)
        if len(items) < PAGE:
            await asyncio.to_thread(opinion.read, task.incident_id, now)
            return recorded
        start += PAGE


async def sweep(now: datetime | None = None) -> int:
    """Delete the closed incidents' tasks, create the new ones', read the due ones: paced, within a pass."""
    cfg, now = settings.get(), now or utcnow()
    if not cfg.baidu_ak or not cfg.baidu_sk:
        return 0
    pace = Pace(cfg.baidu_rate, max(1, int(cfg.baidu_rate * cfg.sweep_seconds)))
    recorded = 0
    async with httpx.AsyncClient(timeout=cfg.notify_timeout) as http:
        call = Baidu(http, pace)
        for incident_id, task_id in await asyncio.to_thread(opinion.closed):
            await _guarded(_delete(call, incident_id, task_id), incident_id, now)
        for watch in await asyncio.to_thread(opinion.to_watch, now):
            await _guarded(_create(call, watch, now), watch.incident_id, now, release=True)
        period = timedelta(seconds=cfg.baidu_poll_seconds)
        for task in await asyncio.to_thread(opinion.due, now, period):
            recorded += await _guarded(_read(call, task, now), task.incident_id, now)
    return recorded


async def _guarded(step: Any, incident_id: str, now: datetime, release: bool = False) -> int:
    """One task's step; Baidu unreachable or answering nonsense fails that step alone (tried again)."""
    try:
        return int(await step or 0)
    except (httpx.HTTPError, ValueError) as exc:
        if release:
            await asyncio.to_thread(opinion.unclaim, incident_id, now, True)
        else:
            await asyncio.to_thread(opinion.failed, incident_id, now)
        log.warning("Baidu step for %s failed (tried again later): %s", incident_id, exc)
        return 0

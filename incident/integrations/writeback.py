"""Telling a ticket system what became of its ticket: the note, the retried call, the log, the sweep.

Why one module for Zendesk and Freshdesk (and a team's own ticket system): what a ticket is told
(``note_text``), how a call is retried (as notices are: ``INCIDENT_NOTIFY_RETRIES`` attempts, doubling
from ``INCIDENT_NOTIFY_BACKOFF``; a network error, 429 or 5xx is worth another attempt, any other 4xx
is final), how each note is logged (one ``deliveries`` row, shown in the console's delivery log) and
how a failure is tried again later (``links.told`` backs off) are the same whatever the vendor. A
vendor module supplies only ``Send``: its HTTP calls for one note.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

import playbooks
from incident import environ, settings
from incident.integrations import service as links
from models import Delivery, session_scope, utcnow
from playbooks.vocabulary import label

log = logging.getLogger("incident.integrations")


@dataclass(frozen=True)
class Attempt:
    """What one note's calls came to: delivered or not, after how many attempts, and where."""

    ok: bool
    attempts: int
    error: str | None
    url: str
    body: Any = None  # what the vendor answered (parsed JSON), when it answered 2xx


Send = Callable[[links.Pending, str], Awaitable[Attempt]]


class Transient(Exception):
    """A failure worth another attempt (network, 429, 5xx)."""


def client(auth: httpx.Auth) -> httpx.AsyncClient:
    return httpx.AsyncClient(auth=auth, timeout=settings.get().notify_timeout)


async def call(
    http: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None = None, tries: int = 0
) -> Attempt:
    """One vendor call, retried as a notice is (``tries``: at most so many attempts); never raises for
    what the vendor answers."""
    cfg = settings.get()
    attempts, answer = 0, None
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(tries or cfg.notify_retries),
            wait=wait_exponential(multiplier=cfg.notify_backoff, max=30),
            retry=retry_if_exception(lambda e: isinstance(e, Transient)),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                try:
                    answer = await http.request(method, url, json=body)
                except httpx.HTTPError as exc:
                    raise Transient(f"{type(exc).__name__}: {exc}") from exc
                if answer.status_code == 429 or answer.status_code >= 500:
                    raise Transient(f"HTTP {answer.status_code}")
                answer.raise_for_status()
    except Transient as exc:
        return Attempt(False, attempts, str(exc), url)
    except httpx.HTTPStatusError as exc:
        return Attempt(False, attempts, f"HTTP {exc.response.status_code}: {exc.response.text[:200]}", url)
    try:
        parsed = answer.json() if answer is not None and answer.content else None
    except ValueError:
        parsed = None
    return Attempt(True, attempts, None, url, parsed)


def _solution(p: links.Pending, lang: str) -> str | None:
    """The approved solution as the playbook names it, with the note its proposer wrote."""
    if p.solution is None:
        return None
    option = playbooks.get(p.category).solutions.get(p.solution)
    name = option.label(lang) if option else p.solution
    if not p.solution_note:
        return name
    return f"{name}（{p.solution_note}）" if lang != "en" else f"{name} ({p.solution_note})"


def _first(p: links.Pending, lang: str, level: str, due: str) -> str:
    """The first note: the incident this ticket opened, or the one it joined (its level may be higher)."""
    if lang == "en":
        head = f"Incident {p.incident_id} opened" if p.opened else f"Ticket joined incident {p.incident_id}"
        return f"{head}: {level}; contact the customer by {due}."
    head = f"事件 {p.incident_id} 已启动" if p.opened else f"本工单已并入事件 {p.incident_id}"
    return f"{head}：{level}；须在 {due} 前联系客户。"


def note_text(p: links.Pending, lang: str | None = None) -> str:
    """The note: what an agent of the ticket system must know about the incident behind the ticket."""
    lang = lang or settings.get().lang
    zone = environ.zone()
    level, status = label("level", p.level, lang), label("status", p.status, lang)
    solution = _solution(p, lang)

    def at(value: datetime | None) -> str:
        return environ.stamp(value, zone) if value else "-"

    if p.first:
        return _first(p, lang, level, at(p.contact_deadline))
    if lang == "en":
        lines = [f"Incident {p.incident_id}: {status}, {level}."]
        lines += [f"Solution: {solution}."] if solution else []
        lines += [f"Resolved at {at(p.resolved_at)}."] if p.resolved_at else []
        lines += [f"Closed at {at(p.closed_at)}."] if p.closed_at else []
        return " ".join(lines)
    lines = [f"事件 {p.incident_id}：{status}，{level}。"]
    lines += [f"解决方案：{solution}。"] if solution else []
    lines += [f"已于 {at(p.resolved_at)} 解决。"] if p.resolved_at else []
    lines += [f"已于 {at(p.closed_at)} 结案。"] if p.closed_at else []
    return "".join(lines)


def _log(system: str, notice: str, p: links.Pending, outcome: Attempt, text: str) -> None:
    """One ``deliveries`` row per note, as a notice has: the console's delivery log shows it."""
    now = utcnow()
    with session_scope() as s:
        s.add(Delivery(
            incident_id=p.incident_id, notice=notice, role=system, url=outcome.url,
            status="sent" if outcome.ok else "failed", attempts=outcome.attempts, error=outcome.error,
            title=text[:500], created_at=now, sent_at=now if outcome.ok else None,
        ))  # fmt: skip


@dataclass(frozen=True)
class TicketSystem:
    """A ticket system's write-back: its name (the links' ``system``), its deliveries' kind, its calls."""

    system: str
    notice: str
    send: Send
    configured: Callable[[], bool]  # whether its API is set up (else nothing is told, nothing is due)

    async def write_back(self, link_id: int, now: datetime | None = None) -> bool | None:
        return await write_back(self.system, self.notice, self.send, link_id, now)

    async def sweep(self, now: datetime | None = None) -> int:
        return await sweep(self.system, self.notice, self.send, now) if self.configured() else 0


async def write_back(
    system: str, notice: str, send: Send, link_id: int, now: datetime | None = None
) -> bool | None:
    """Tell the ticket what changed, if anything did and nobody else is telling it; None: nothing to tell."""
    now = now or utcnow()
    pending = links.take(link_id, now)
    if pending is None:
        return None
    text = note_text(pending)
    outcome = await send(pending, text)
    _log(system, notice, pending, outcome, text)
    links.told(pending, outcome.ok, now)
    if not outcome.ok:
        log.warning("%s ticket %s not told about %s: %s", system, pending.external_id, pending.incident_id,
                    outcome.error)  # fmt: skip
    return outcome.ok


async def sweep(system: str, notice: str, send: Send, now: datetime | None = None) -> int:
    """The worker's periodic pass: every ticket whose incident changed since its last note is told."""
    now = now or utcnow()
    links.repair(system, now)
    told = 0
    for link_id in links.due_links(system, now):
        told += bool(await write_back(system, notice, send, link_id, now))
    return told

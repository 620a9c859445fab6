"""Pushing the archive's pages to the knowledge bases (issue 13 item 5): which, when, and the log.

Why in the worker's sweep, as an integration adapter (``views.ADAPTER``): a knowledge base is one of
the systems around the process, like Zendesk's notes — the registry runs each adapter's job in every
pass of the sweep and keeps one adapter's failure from stopping the others, and mounts its route
(``POST /api/knowledge/push``, the CLI's ``incident export --to``). ``incident.engine.sweep`` stays
about the flow runs.

Each pass, per configured target: the candidate pages (``pages``; reviews first, an incident's page
read only when its turn comes) whose digest differs from the one last pushed are pushed, at most
``PER_PASS`` within ``PASS_SECONDS`` (Notion allows about three requests a second, and the sweep has
other work; the next pass goes on); an unchanged page is not sent again. Every push is a
``deliveries`` row (notice ``kb_page``, role = the target, the page's address, attempts, error), as a
notice is. A push that fails after its retries (``remote``) is tried again by a later pass, backing
off from 2 minutes to an hour; a page the target rejected (another 4xx) after a day, or when it
changes. A refused credential (401/403) stops the target: one row says so, and no pass tries again
until the settings change — a person's ``incident export --to …`` tries at once whatever the state.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from types import ModuleType
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from incident import settings
from incident.errors import Conflict
from incident.knowledge import confluence, notion, pages
from incident.knowledge.pages import Candidate
from incident.knowledge.remote import Caller, PushError, Refused, Rejected, Written
from models import Delivery, KnowledgePage, KnowledgeTarget, session_scope, utcnow

log = logging.getLogger("incident.knowledge")

TARGETS: dict[str, ModuleType] = {"confluence": confluence, "notion": notion}
SETTINGS = {
    "confluence": "INCIDENT_CONFLUENCE_URL, _EMAIL, _TOKEN and _SPACE_ID",
    "notion": "INCIDENT_NOTION_TOKEN and INCIDENT_NOTION_PARENT_PAGE_ID",
}
NOTICE = "kb_page"  # the deliveries row of a push (incident.integrations.WRITE_BACKS)
PER_PASS, PASS_SECONDS = 20, 15.0  # a sweep pass pushes this much at most: the sweep has other work
ON_DEMAND, ON_DEMAND_SECONDS = 200, 45.0  # ``incident export --to`` answers within the CLI's minute
CLAIM = timedelta(minutes=5)
RETRY_FIRST, RETRY_MAX = timedelta(minutes=2), timedelta(hours=1)
REJECTED_WAIT = timedelta(days=1)


@dataclass(frozen=True)
class State:
    """What the table knows of a page in one target."""

    id: int
    remote_id: str | None
    version: int
    digest: str | None
    source_at: datetime | None
    retry_at: datetime | None


@dataclass
class Report:
    target: str
    pushed: int = 0
    unchanged: int = 0
    failed: int = 0
    remaining: int = 0
    refused: str | None = None
    pages: list[dict[str, Any]] = field(default_factory=list)


def configured() -> list[str]:
    return [name for name, mod in TARGETS.items() if mod.configured()]


def _key(mod: ModuleType) -> str:
    return hashlib.sha256(mod.credential().encode("utf-8")).hexdigest()


# --- the table --------------------------------------------------------------------------------


def states(target: str) -> dict[str, State]:
    with session_scope() as s:
        rows = s.scalars(select(KnowledgePage).where(KnowledgePage.target == target))
        return {r.path: State(r.id, r.remote_id, r.version, r.digest, r.source_at, r.retry_at) for r in rows}


Look = Callable[[], Candidate]  # builds one candidate page (reads its records) when its turn comes


def looks(target: str, lang: str, now: datetime, every: bool) -> list[Look]:
    """Pages to look at, reviews first (few, and leadership's): the finished periods' reviews due a
    check, then incidents with records archived since the last look. An incident's page is built
    only when its turn comes: on a first push of a long archive a pass reads 20 pages, not all."""
    known = states(target)
    with session_scope() as s:
        checked = {path: st.source_at for path, st in known.items() if path.startswith("reviews/")}
        found: list[Look] = [partial(_same, c) for c in pages.reviews_due(s, lang, now, checked, every)]
        for incident_id, at in sorted(pages.record_times(s, lang).items()):
            seen = known.get(f"incidents/{incident_id}")
            if every or seen is None or seen.source_at is None or seen.source_at < at or seen.digest is None:
                found.append(partial(_incident, incident_id, lang, at))
    return found


def _same(page: Candidate) -> Candidate:
    return page


def _incident(incident_id: str, lang: str, at: datetime) -> Candidate:
    with session_scope() as s:
        return pages.incident_page(s, incident_id, lang, at)


def _checked(target: str, page: Candidate) -> None:
    """A page found as it was pushed: remember the look, so the next pass does not look again."""
    with session_scope() as s:
        s.execute(
            update(KnowledgePage)
            .where(KnowledgePage.target == target, KnowledgePage.path == page.path)
            .values(source_at=page.source_at)
        )


def claim(target: str, page: Candidate, now: datetime) -> State | None:
    """The page's row (made if new), claimed for one push; None while another pusher holds it."""
    with session_scope() as s:
        row = KnowledgePage(
            target=target,
            path=page.path,
            incident_id=page.incident_id,
            title=page.title[:255],
            version=0,
            failures=0,
        )
        try:
            with s.begin_nested():
                s.add(row)
        except IntegrityError:
            pass  # it exists: claim it below
    with session_scope() as s:
        claimed = s.execute(
            update(KnowledgePage)
            .where(
                KnowledgePage.target == target,
                KnowledgePage.path == page.path,
                or_(KnowledgePage.claimed_until.is_(None), KnowledgePage.claimed_until < now),
            )
            .values(claimed_until=now + CLAIM)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        r = s.scalars(
            select(KnowledgePage).where(KnowledgePage.target == target, KnowledgePage.path == page.path)
        ).one()
        return State(r.id, r.remote_id, r.version, r.digest, r.source_at, r.retry_at)


def _done(state: State, page: Candidate, written: Written, now: datetime) -> None:
    with session_scope() as s:
        row = s.get_one(KnowledgePage, state.id)
        row.remote_id, row.version, row.digest, row.title = (
            written.remote_id,
            written.version,
            page.digest,
            page.title[:255],
        )
        row.source_at, row.pushed_at, row.failures, row.retry_at = page.source_at, now, 0, None
        row.error, row.claimed_until = None, None


def _failed(state: State, error: PushError, now: datetime) -> datetime | None:
    """Record the failure and free the page; when it is tried again (None: a refused credential)."""
    with session_scope() as s:
        row = s.get_one(KnowledgePage, state.id)
        row.claimed_until, row.error = None, str(error)[:2000]
        if isinstance(error, Refused):
            return None
        row.failures += 1
        wait = (
            REJECTED_WAIT
            if isinstance(error, Rejected)
            else min(RETRY_FIRST * 2 ** (row.failures - 1), RETRY_MAX)
        )
        row.retry_at = now + wait
        return row.retry_at


def _log(
    target: str, page: Candidate, ok: bool, attempts: int, error: str | None, url: str, now: datetime
) -> None:
    with session_scope() as s:
        s.add(Delivery(
            incident_id=page.incident_id, notice=NOTICE, role=target, url=url[:500],
            status="sent" if ok else "failed", attempts=attempts, error=error, title=page.title,
            created_at=now, sent_at=now if ok else None,
        ))  # fmt: skip


def refused(target: str, key: str) -> bool:
    with session_scope() as s:
        row = s.get(KnowledgeTarget, target)
        return row is not None and row.refused_key == key


def _set_refused(target: str, key: str | None, error: str | None, now: datetime) -> None:
    """Remember a refused credential (``key``), or forget it (None) once one is accepted."""
    with session_scope() as s:
        row = s.get(KnowledgeTarget, target)
        if key is None:
            if row is not None:
                s.delete(row)
            return
        if row is None:
            s.add(KnowledgeTarget(target=target, refused_key=key, refused_at=now, error=error))
        else:
            row.refused_key, row.refused_at, row.error = key, now, error


# --- pushing ----------------------------------------------------------------------------------


def _verdict(known: dict[str, State], page: Candidate, now: datetime, every: bool) -> str:
    """``same`` (pushed before with this digest), ``due``, or ``wait`` (a failed page's backoff)."""
    st = known.get(page.path)
    if st is not None and st.remote_id and st.digest == page.digest:
        return "same"
    if every or st is None or st.retry_at is None or st.retry_at <= now:
        return "due"
    return "wait"


async def _push_one(
    mod: ModuleType, http: httpx.AsyncClient, page: Candidate, now: datetime, report: Report
) -> bool:
    """Push one page; False when the target refused the credential (stop this target)."""
    state = await asyncio.to_thread(claim, mod.TARGET, page, now)
    if state is None:
        return True  # another pusher has it
    call = Caller(http)
    try:
        body = await asyncio.to_thread(page.body)  # a review renders its charts: not on the loop
        written = await mod.write(call, state.remote_id, state.version, page.title, body)
    except PushError as exc:
        retry_at = await asyncio.to_thread(_failed, state, exc, now)
        await asyncio.to_thread(
            _log, mod.TARGET, page, False, call.attempts, str(exc)[:2000], str(http.base_url), now
        )
        log.warning(
            "%s: %s not pushed (%s); next try %s",
            mod.TARGET,
            page.path,
            exc,
            retry_at or "when the settings change",
        )
        report.failed += 1
        report.pages.append(
            {"path": page.path, "title": page.title, "status": "failed", "error": str(exc)[:500]}
        )
        if isinstance(exc, Refused):
            report.refused = str(exc)[:500]
            return False
        return True
    await asyncio.to_thread(_done, state, page, written, now)
    await asyncio.to_thread(_log, mod.TARGET, page, True, call.attempts, None, written.url, now)
    report.pushed += 1
    report.pages.append({"path": page.path, "title": page.title, "status": "sent", "version": written.version,
                         "remote_id": written.remote_id, "url": written.url})  # fmt: skip
    return True


async def push(target: str, now: datetime | None = None, *, on_demand: bool = False) -> Report:
    """Push what changed to one target (``on_demand``: now, whatever the backoff or a refusal)."""
    mod = TARGETS[target]
    now = now or utcnow()
    report = Report(target)
    if not mod.configured():
        if on_demand:
            raise Conflict(f"{target} is not configured: set {SETTINGS[target]}")
        return report
    key = _key(mod)
    if not on_demand and await asyncio.to_thread(refused, target, key):
        report.refused = "the credential was refused before; not tried again until the settings change"
        return report
    lang = settings.get().lang
    queue = await asyncio.to_thread(looks, target, lang, now, on_demand)
    known = await asyncio.to_thread(states, target)
    limit, budget = (ON_DEMAND, ON_DEMAND_SECONDS) if on_demand else (PER_PASS, PASS_SECONDS)
    started, looked = time.monotonic(), 0
    async with mod.client() as http:
        for look in queue:
            if report.pushed + report.failed >= limit or time.monotonic() - started > budget:
                break
            looked += 1
            page = await asyncio.to_thread(look)
            verdict = _verdict(known, page, now, on_demand)
            if verdict == "same":
                report.unchanged += 1
                await asyncio.to_thread(_checked, target, page)
            elif verdict == "due" and not await _push_one(mod, http, page, now, report):
                await asyncio.to_thread(_set_refused, target, key, report.refused, now)
                break
    report.remaining = len(queue) - looked  # left for the next pass
    if report.refused:
        return report
    if report.pushed:
        await asyncio.to_thread(_set_refused, target, None, None, now)
    return report


async def sweep(now: datetime | None = None) -> int:
    """The worker's pass: every configured target, the pages that changed; how many were pushed."""
    pushed = 0
    for target in configured():
        pushed += (await push(target, now)).pushed
    return pushed

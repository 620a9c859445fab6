"""notify(): render a notice once, send it to every channel of every role, log each delivery.

Why these rules:
- Channels are independent: each runs concurrently with its own retries, and a failure only
  shows in its result and its ``deliveries`` row; ``notify`` itself never raises for delivery
  problems (a broken config is logged as ``failed`` rows naming the file, not raised, so an
  incident flow keeps going and the console shows why nobody was told).
- One URL tagged with several of the targeted roles receives the notice once; it is logged once
  per role (same status, attempts and error on each row), so "who was told" stays per role.
- A role with no URL (or no config at all) gets one ``no_recipient`` row with url ``-``.
- A role's people (the directory, ``models.Person``) are told on their own URLs besides the roster's.
- ``people``: persons named directly (an improvement action's owner) are told on their own URLs too,
  logged as role ``@<name>``; a name not in the directory is nobody to tell (an owner may be a supplier).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select

from models.base import session_scope, utcnow
from models.notification import Delivery
from notifiers import roster as roster_mod
from notifiers.channels import Outcome, deliver
from notifiers.render import Rendered, render
from playbooks.schema import roles as known_roles

log = logging.getLogger(__name__)

NO_URL = "-"
STATUSES = ("sent", "failed", "no_recipient")
# The deliveries this process made, by status: per process, exported by the worker's endpoint and the
# API's /metrics (incident/metrics/process.py). Counted here because notifiers imports nothing of the
# application's; the database's delivery log (incident_notices_total) is the fleet's durable count.
SENT = Counter(
    "incident_process_notices",
    "Notice deliveries this process made (one per role and channel), by status",
    ["status"],
    registry=None,
)
for _status in STATUSES:
    SENT.labels(_status)


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one notice for one role on one channel (url is redacted)."""

    role: str
    url: str
    status: str  # sent | failed | no_recipient
    attempts: int
    error: str | None = None
    sent_at: datetime | None = None


async def notify(
    kind: str,
    roles: Sequence[str],
    context: Mapping[str, Any],
    *,
    incident_id: str | None,
    lang: str | None = None,
    people: Sequence[str] = (),
) -> list[DeliveryResult]:
    """Tell every channel of every role (and of the ``people`` named); one result and log row per role
    (or person) and channel.

    Raises ValueError only for programming errors (unknown kind); delivery problems never raise.
    """
    created = utcnow()
    if isinstance(roles, str):
        roles = [roles]
    wanted = list(dict.fromkeys(roles))
    if unknown := [role for role in wanted if role not in known_roles()]:
        log.warning("notice %s addressed to unknown roles %s", kind, unknown)
    ctx = dict(context)
    if not ctx.get("incident_id") and incident_id:
        ctx["incident_id"] = incident_id
    notice = render(kind, ctx, lang)
    try:
        roster = roster_mod.with_people(roster_mod.current())
        named = roster_mod.people_channels(people)
    except roster_mod.RosterError as exc:
        log.error("notice %s for %s not sent: %s", kind, incident_id, exc)
        results = [DeliveryResult(role, NO_URL, "failed", 0, str(exc)) for role in wanted]
        await asyncio.to_thread(_record, kind, incident_id, notice, results, created)
        return results

    unique: dict[str, roster_mod.Channel] = {}
    for channel in [*(c for role in wanted for c in roster.for_role(role)), *_flat(named)]:
        unique.setdefault(channel.url, channel)
    sends = [deliver(ch.url, ch.redacted, notice) for ch in unique.values()]
    outcomes: dict[str, Outcome] = {}
    gathered = await asyncio.gather(*sends, return_exceptions=True)
    for url, outcome in zip(unique, gathered, strict=True):
        if isinstance(outcome, BaseException):  # deliver() should not raise; be sure anyway
            outcome = Outcome(False, 0, f"{type(outcome).__name__}: {outcome}", None)
        outcomes[url] = outcome

    results: list[DeliveryResult] = []
    for role in wanted:
        channels = roster.for_role(role)
        if not channels:
            reason = roster.note or f"no URL is tagged {role!r} in {roster.source}"
            results.append(DeliveryResult(role, NO_URL, "no_recipient", 0, reason))
        for channel in channels:
            out = outcomes[channel.url]
            status = "sent" if out.ok else "failed"
            results.append(
                DeliveryResult(role, channel.redacted, status, out.attempts, out.error, out.sent_at)
            )
    for name, channels in named.items():
        who = f"{roster_mod.DIRECT}{name}"[:32]
        if not channels:
            results.append(DeliveryResult(who, NO_URL, "no_recipient", 0, f"{name} has no notify URL"))
        for channel in channels:
            out = outcomes[channel.url]
            status = "sent" if out.ok else "failed"
            results.append(
                DeliveryResult(who, channel.redacted, status, out.attempts, out.error, out.sent_at)
            )
    await asyncio.to_thread(_record, kind, incident_id, notice, results, created)
    return results


def _flat(named: Mapping[str, list[roster_mod.Channel]]) -> list[roster_mod.Channel]:
    return [channel for channels in named.values() for channel in channels]


def notify_sync(
    kind: str,
    roles: Sequence[str],
    context: Mapping[str, Any],
    *,
    incident_id: str | None,
    lang: str | None = None,
    people: Sequence[str] = (),
) -> list[DeliveryResult]:
    """notify() for synchronous callers; safe to call from inside a running event loop."""
    coro = notify(kind, roles, context, incident_id=incident_id, lang=lang, people=people)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify") as pool:
        return pool.submit(asyncio.run, coro).result()


def _record(
    kind: str,
    incident_id: str | None,
    notice: Rendered,
    results: list[DeliveryResult],
    created: datetime,
) -> None:
    """Write the delivery log; a database problem is logged, never raised (notices went out)."""
    for r in results:
        SENT.labels(r.status).inc()
    try:
        with session_scope() as session:
            session.add_all(
                Delivery(
                    incident_id=incident_id,
                    notice=kind,
                    role=r.role,
                    url=r.url[:500],
                    status=r.status,
                    attempts=r.attempts,
                    error=r.error,
                    title=notice.title,
                    created_at=created,
                    sent_at=r.sent_at,
                )
                for r in results
            )
    except Exception:
        log.exception("could not record %d deliveries of %s for %s", len(results), kind, incident_id)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def deliveries(incident_id: str) -> list[dict[str, Any]]:
    """The delivery log of one incident, oldest first, as JSON-ready dicts."""
    with session_scope() as session:
        rows = session.scalars(
            select(Delivery).where(Delivery.incident_id == incident_id).order_by(Delivery.id)
        ).all()
        return [
            {
                "id": row.id,
                "incident_id": row.incident_id,
                "notice": row.notice,
                "role": row.role,
                "url": row.url,
                "status": row.status,
                "attempts": row.attempts,
                "error": row.error,
                "title": row.title,
                "created_at": _iso(row.created_at),
                "sent_at": _iso(row.sent_at),
            }
            for row in rows
        ]


def result_dict(result: DeliveryResult) -> dict[str, Any]:
    """A DeliveryResult as a JSON-ready dict."""
    data = asdict(result)
    data["sent_at"] = _iso(result.sent_at)
    return data

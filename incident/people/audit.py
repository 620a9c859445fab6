"""``incident audit [ID]``: who did or tried what, when, on which incident, from where, and whether it was
refused.

Two sources, one list. A person's acts on an incident and their refusals are read from the timeline,
where each is recorded in the same transaction as the act itself (or, for a refusal, before the 403
goes back), with the channel and the address of the request (``incident/people/via.py``): so the audit
cannot disagree with the incident's own history. Everything else is an access event
(``models/access.py``): logins, logouts, reveals of a customer's contact, the directory's, tokens',
deputies' and rotas' changes, the inbox's acts, and every refusal or wrong token the API or the console
answered (``incident/api/audittrail.py`` records those no domain code recorded).

Who may read it (``may_read``): the service token and the people who answer for the team: the level
leads of every playbook (leadership, cs_director, cs_manager in the shipped ones) and the duty manager.
It names who logged in from where and who saw which customer's contact; the people it names need not
all read each other's. The API, the CLI and the console apply this one rule.

Reading more than one page: ``page(since=…)`` walks forward from a time or from the ``next`` cursor of
the page before, so an export of a year reads every event exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

import playbooks
from incident.errors import BadInput
from incident.incidents.timeline import ACTS, REFUSALS
from incident.people import via
from incident.people.service import Actor
from models import AccessEvent, TimelineEvent, session_scope, utcnow

MAX_PAGE = 5000
COORDINATORS = ("duty_manager", "leadership")


def readers() -> list[str]:
    """The roles that may read the audit: every level's lead in the playbooks, and the coordinators."""
    leads = {book.level(n).lead for book in playbooks.load_all().values() for n in (1, 2, 3)}
    return sorted(leads | set(COORDINATORS))


def may_read(actor: Actor | None) -> bool:
    if actor is None or actor.scope is not None:
        return False
    return not actor.person or any(actor.holds(role) for role in readers())


def refusal(actor: Actor) -> str:
    return f"{actor.name} may not read the audit (needs {', '.join(readers())} or the service token)"


def _who(event: TimelineEvent) -> str:
    signed = ("solution_approved", "solution_rejected", "postmortem_signed")
    if event.event in signed and event.by.endswith(")"):
        return event.by.rsplit(" (", 1)[0]  # "陈总 (leadership)" → 陈总
    return event.by


def record(
    action: str,
    outcome: str,
    *,
    who: str | None = None,
    channel: str | None = None,
    address: str | None = None,
    incident_id: str | None = None,
    detail: str | None = None,
) -> None:
    """One access event, committed at once; who, the channel and the address default to the request's."""
    here = via.current()
    if here is not None:
        here.audited = True
        who = who or here.who
        channel = channel or here.channel
        address = address or here.address
    with session_scope() as s:
        s.add(
            AccessEvent(
                at=utcnow(), who=(who or "unknown")[:200], action=action[:32], outcome=outcome,
                channel=channel or "service", address=address, incident_id=incident_id, detail=detail,
            )
        )  # fmt: skip


def record_access(
    who: str,
    action: str,
    outcome: str,
    *,
    channel: str,
    address: str | None,
    incident_id: str | None = None,
    detail: str | None = None,
) -> None:
    """One login, logout or reveal (``outcome`` ok or refused), committed at once."""
    record(action, outcome, who=who, channel=channel, address=address, incident_id=incident_id, detail=detail)


@dataclass(frozen=True)
class Cursor:
    """A position in the audit: after the event at ``at`` of source ``source`` (a, t) with ``id``."""

    at: datetime
    source: str = ""  # "": a time, every event at or after it
    id: int = 0

    def text(self) -> str:
        return f"{self.at.isoformat()}~{self.source}{self.id}"

    @classmethod
    def parse(cls, value: str) -> Cursor:
        at, sep, rest = value.partition("~")
        try:
            when = datetime.fromisoformat(at)
            if when.tzinfo is None:
                raise ValueError("no offset")
            if not sep:
                return cls(when)
            if rest[:1] not in ("a", "t"):
                raise ValueError("source")
            return cls(when, rest[0], int(rest[1:]))
        except ValueError as exc:
            raise BadInput(
                f"since: {value[:60]!r} is neither an ISO 8601 time with offset nor a `next` cursor"
            ) from exc


def _after(column_at: Any, column_id: Any, source: str, since: Cursor) -> Any:
    """Rows of ``source`` after ``since`` in the audit's order (at, source, id)."""
    if not since.source:
        return column_at >= since.at
    if since.source < source:
        return column_at >= since.at
    if since.source > source:
        return column_at > since.at
    return or_(column_at > since.at, and_(column_at == since.at, column_id > since.id))


def _access(incident_id: str | None, limit: int, since: Cursor | None) -> list[dict[str, Any]]:
    stmt = select(AccessEvent)
    if incident_id is not None:
        stmt = stmt.where(AccessEvent.incident_id == incident_id)
    if since is None:
        stmt = stmt.order_by(AccessEvent.at.desc(), AccessEvent.id.desc())
    else:
        stmt = stmt.where(_after(AccessEvent.at, AccessEvent.id, "a", since))
        stmt = stmt.order_by(AccessEvent.at, AccessEvent.id)
    with session_scope() as s:
        return [
            {
                "at": row.at.isoformat(), "who": row.who, "action": row.action,
                "incident_id": row.incident_id, "outcome": row.outcome, "detail": row.detail,
                "channel": row.channel, "address": row.address,
                "_key": (row.at, "a", row.id),
            }
            for row in s.scalars(stmt.limit(limit))
        ]  # fmt: skip


def _timeline(incident_id: str | None, limit: int, since: Cursor | None) -> list[dict[str, Any]]:
    stmt = select(TimelineEvent).where(TimelineEvent.event.in_([*ACTS, *REFUSALS]))
    if incident_id is not None:
        stmt = stmt.where(TimelineEvent.incident_id == incident_id)
    if since is None:
        stmt = stmt.order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc())
    else:
        stmt = stmt.where(_after(TimelineEvent.at, TimelineEvent.id, "t", since))
        stmt = stmt.order_by(TimelineEvent.at, TimelineEvent.id)
    found: list[dict[str, Any]] = []
    with session_scope() as s:
        for row in s.scalars(stmt.limit(limit)):
            refused = row.event in REFUSALS
            named = REFUSALS[row.event] if refused else ACTS[row.event]
            action = named or (row.data or {}).get("action")
            found.append(
                {
                    "at": row.at.isoformat(), "who": _who(row), "action": action or row.event,
                    "incident_id": row.incident_id, "outcome": "refused" if refused else "ok",
                    "detail": row.detail, "channel": row.channel, "address": row.address,
                    "_key": (row.at, "t", row.id),
                    "event": row.event, "data": row.data,  # the detail in words (incident.incidents.timeline)
                }
            )  # fmt: skip
    return found


def page(incident_id: str | None = None, since: str | None = None, limit: int = MAX_PAGE) -> dict[str, Any]:
    """Events oldest first. Without ``since``: the latest ``limit``. With it (an ISO time, or the ``next``
    of the page before): the first ``limit`` after it, and ``next`` when more follow."""
    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"limit: between 1 and {MAX_PAGE}")
    after = Cursor.parse(since) if since else None
    found = _timeline(incident_id, limit + 1, after) + _access(incident_id, limit + 1, after)
    found.sort(key=lambda e: e["_key"])
    more = after is not None and len(found) > limit
    kept = found[:limit] if after is not None else found[-limit:]
    cursor = Cursor(*kept[-1]["_key"]).text() if more else None
    for event in kept:
        del event["_key"]
    return {"events": kept, "next": cursor}


def events(incident_id: str | None = None, limit: int = MAX_PAGE) -> list[dict[str, Any]]:
    """The latest ``limit`` events, oldest first."""
    return list(page(incident_id, None, limit)["events"])

"""Telling people: build a notice's context from the incident and send it to roles (a Prefect task).

Contexts carry ids, levels, counts, deadlines and the masked summary — never contact details.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

import notifiers
import playbooks
from incident import settings
from incident.privacy import mask_text
from models import Incident, Record, session_scope, utcnow


def context(incident_id: str, lang: str | None = None) -> dict[str, Any]:
    lang = lang or settings.default_lang()
    with session_scope() as session:
        inc = session.get_one(Incident, incident_id)
        book = playbooks.get(inc.category)
        ctx: dict[str, Any] = {
            "incident_id": inc.id,
            "level": inc.level,
            "category": inc.category,
            "category_label": book.title(lang),
            "summary": mask_text(inc.summary),
            "customers": inc.customers,
            "status": inc.status,
            "stage": inc.status,
            "reasons": list(inc.level_reasons or []),
        }
    public = os.environ.get("INCIDENT_PUBLIC_URL")
    if public:
        ctx["console_url"] = f"{public.rstrip('/')}/incidents/{incident_id}"
    return ctx


def deadline_context(due_at: datetime, kind: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "deadline_kind": kind,
        "due_at": due_at,
        "minutes_left": int((due_at - now).total_seconds() // 60),
    }


def level_roles(incident_id: str) -> list[str]:
    with session_scope() as session:
        inc = session.get_one(Incident, incident_id)
        return list(playbooks.get(inc.category).level(inc.level).roles)


@task(name="notify", cache_policy=NO_CACHE, task_run_name="notify-{kind}")
async def tell(incident_id: str, kind: str, roles: list[str] | None = None, **extra: Any) -> int:
    """Send one notice kind to roles (default: everyone the level's playbook names)."""
    roles = roles or level_roles(incident_id)
    lang = settings.default_lang()
    results = await notifiers.notify(
        kind, roles, {**context(incident_id, lang), **extra}, incident_id=incident_id, lang=lang
    )
    return sum(1 for r in results if r.status == "sent")


@task(name="archive-records", cache_policy=NO_CACHE)
async def archive(incident_id: str) -> list[str]:
    """Render every record the incident's facts allow so far (zh/en, md/html) and keep it.

    In a worker thread: a storm incident's forms list hundreds of reports (a second of Markdown), and
    meanwhile the event loop goes on with the other runs.
    """
    return await asyncio.to_thread(keep_records, incident_id)


def keep_records(incident_id: str) -> list[str]:
    """Read, render with no lock held, then write what is newer than what is kept.

    Why not render under the incident's row lock: intake locks that row for every report joining
    the incident, and a storm incident's forms take a second to render. Two archivers of one
    incident (its run and a joining report's run) take turns only to write: the incident row is
    locked (else both could insert the same record, a unique-constraint error on PostgreSQL), and a
    record already written from a later reading is kept.
    """
    from incident.documents.dossier import build_dossier
    from incident.documents.render import RECORD_KINDS, available, render

    read_at = utcnow()  # the dossier holds at least everything committed before this
    with session_scope() as session:
        dossier = build_dossier(session, incident_id)
    kept = [kind for kind in RECORD_KINDS if available(kind, dossier)]
    rendered = {
        (kind, lang, fmt): render(kind, dossier, lang=lang, fmt=fmt)
        for kind in kept
        for lang in ("zh", "en")
        for fmt in ("md", "html")
    }
    with session_scope() as session:
        session.get(Incident, incident_id, with_for_update=True)
        existing = {
            (r.kind, r.lang, r.format): r
            for r in session.query(Record).filter(Record.incident_id == incident_id)
        }
        for (kind, lang, fmt), content in rendered.items():
            row = existing.get((kind, lang, fmt))
            if row is None:
                session.add(Record(incident_id=incident_id, kind=kind, lang=lang, format=fmt,
                                   content=content, updated_at=read_at))  # fmt: skip
            elif row.updated_at <= read_at:
                row.content, row.updated_at = content, read_at
    return kept

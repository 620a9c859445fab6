"""Telling people: build a notice's context from the incident and send it to roles (a Prefect task).

Contexts carry ids, levels, counts, deadlines and the masked summary — never contact details. Every
notice of an incident carries its customers' first-contact progress (``contact_progress``: contacted,
customers, overdue); the templates print it once more than one customer is owed a first contact.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.dialects import postgresql, sqlite

import notifiers
import playbooks
from incident import settings
from incident.deadlines import customers as duties
from incident.feedback.privacy import mask_text
from models import Incident, Record, session_scope, utcnow


def context(incident_id: str, lang: str | None = None) -> dict[str, Any]:
    lang = lang or settings.get().lang
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
            "recurrence_of": inc.recurrence_of,
            "contact_progress": duties.progress(session, inc.id, utcnow()),
        }
    public = settings.get().public_url
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
async def tell(
    incident_id: str, kind: str, roles: list[str] | None = None, people: list[str] | None = None, **extra: Any
) -> int:
    """Send one notice kind to roles (default: everyone the level's playbook names) and to ``people``
    named directly (an improvement action's owner, when the directory knows them)."""
    roles = roles or level_roles(incident_id)
    lang = settings.get().lang
    ctx = {**context(incident_id, lang), **extra}
    results = await notifiers.notify(
        kind, roles, ctx, incident_id=incident_id, lang=lang, people=people or ()
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
    """Read, render, then write each record unless one written from a later reading is there.

    No lock is held while rendering (a storm incident's forms take a second) and none on the incident
    row at all: intake locks that row for every report joining it. Two archivers of one incident (its
    run and a joining report's run) meet at the records' unique key, and the newer reading wins.
    """
    from incident.records.documents.dossier import build_dossier
    from incident.records.documents.render import RECORD_KINDS, available, render

    read_at = utcnow()  # the dossier holds at least everything committed before this
    with session_scope() as session:
        dossier = build_dossier(session, incident_id)
    kept = [kind for kind in RECORD_KINDS if available(kind, dossier)]
    rows = [
        {
            "incident_id": incident_id,
            "kind": kind,
            "lang": lang,
            "format": fmt,
            "updated_at": read_at,
            "content": render(kind, dossier, lang=lang, fmt=fmt),
        }  # fmt: skip
        for kind in kept
        for lang in ("zh", "en")
        for fmt in ("md", "html")
    ]
    if rows:
        with session_scope() as session:
            insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
            new = insert(Record).values(rows)
            session.execute(
                new.on_conflict_do_update(
                    index_elements=["incident_id", "kind", "lang", "format"],
                    set_={"content": new.excluded.content, "updated_at": new.excluded.updated_at},
                    where=Record.updated_at <= new.excluded.updated_at,
                )
            )
    return kept

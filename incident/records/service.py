"""The archive of an incident's seven records (domain.md §7): listing it and downloading one.

Why downloads read the stored rows rather than render on demand: the archive is what was filed as the
incident moved on (the flow's ``archive`` task writes it at every stage and decision), so a download
shows the record as kept, and a record whose facts do not exist yet is simply not there (404).
``incident postmortem`` is the on-demand view of the current draft.

PDF is derived from the stored HTML at download time with WeasyPrint (binary and cheap to redo, so not
kept). Chinese needs a CJK font known to fontconfig (Debian ``fonts-noto-cjk`` or
``fonts-wqy-microhei``); the stylesheet below names them first so Pango never falls back to boxes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from incident.errors import BadInput, NotFound
from incident.records.documents.i18n import LANGS
from incident.records.documents.render import RECORD_KINDS, title
from models import Feedback, Incident, Record, session_scope

FORMATS = ("md", "html", "pdf")
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}
PDF_CSS = """
@page { size: A4; margin: 16mm 14mm 18mm;
        @bottom-right { content: counter(page) " / " counter(pages); font-size: 8pt; color: #555; } }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
       "Source Han Sans SC", "Droid Sans Fallback", "DejaVu Sans", sans-serif;
       max-width: none; margin: 0; padding: 0; font-size: 10pt; }
th { background: #ddd; }
"""


def later_report_pending(feedback_id: str) -> bool:
    """Whether a later report of the same incident still awaits its run.

    Why: a report joining an incident re-archives its records, and the dossier reads all its
    feedback, so in a storm of reports every run would redo the same ever-longer work. That later
    run archives a dossier which already holds this report (committed first), so this one may skip.
    A batch of reports shares one ``received_at``: ties go by id, so the last report never skips.
    """
    with session_scope() as s:
        mine = s.get(Feedback, feedback_id)
        if mine is None or mine.incident_id is None:
            return False
        later = s.scalar(
            select(Feedback.id)
            .where(
                Feedback.incident_id == mine.incident_id,
                Feedback.handled_at.is_(None),
                or_(
                    Feedback.received_at > mine.received_at,
                    and_(Feedback.received_at == mine.received_at, Feedback.id > feedback_id),
                ),
            )
            .limit(1)
        )
        return later is not None


def api_path(incident_id: str, kind: str) -> str:
    return f"/api/incidents/{incident_id}/records/{kind}"


def listing(incident_id: str) -> dict[str, Any]:
    """All seven kinds in the guide's order; ``available`` once the archive holds the record."""
    with session_scope() as s:
        if s.get(Incident, incident_id) is None:
            raise NotFound(f"no incident {incident_id}")
        rows = s.execute(
            select(Record.kind, Record.lang, Record.format, Record.updated_at).where(
                Record.incident_id == incident_id
            )
        ).all()
    records = []
    for kind in RECORD_KINDS:
        mine = [r for r in rows if r.kind == kind]
        langs = [lang for lang in LANGS if any(r.lang == lang for r in mine)]
        stored = {r.format for r in mine}
        formats = [f for f in FORMATS if f in stored or (f == "pdf" and "html" in stored)]
        updated = max((r.updated_at for r in mine), default=None)
        records.append(
            {
                "kind": kind,
                "title": {lang: title(kind, lang) for lang in LANGS},
                "available": bool(mine),
                "languages": langs,
                "formats": formats,
                "updated_at": updated.isoformat() if updated else None,
                "path": api_path(incident_id, kind),
            }
        )
    return {"incident_id": incident_id, "records": records}


@dataclass(frozen=True)
class Document:
    """One downloadable record: its bytes, media type and when the archive last wrote it."""

    body: bytes
    media_type: str
    updated_at: datetime


def check(kind: str, lang: str, fmt: str) -> None:
    if kind not in RECORD_KINDS:
        raise BadInput(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    if lang not in LANGS:
        raise BadInput(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
    if fmt not in FORMATS:
        raise BadInput(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def document(incident_id: str, kind: str, lang: str = "zh", fmt: str = "md") -> Document:
    """The archived record; NotFound (404) for an unknown incident or a record not available yet."""
    check(kind, lang, fmt)
    stored_as = "html" if fmt == "pdf" else fmt
    with session_scope() as s:
        if s.get(Incident, incident_id) is None:
            raise NotFound(f"no incident {incident_id}")
        row = s.scalars(
            select(Record).where(
                Record.incident_id == incident_id,
                Record.kind == kind,
                Record.lang == lang,
                Record.format == stored_as,
            )
        ).first()
        if row is None:
            raise NotFound(f"the {title(kind, 'en').lower()} of {incident_id} is not available yet")
        content, updated = row.content, row.updated_at
    body = to_pdf(content) if fmt == "pdf" else content.encode("utf-8")
    return Document(body, MEDIA_TYPES[fmt], updated)


def to_pdf(html: str) -> bytes:
    """HTML → PDF (A4, page numbers) with WeasyPrint; imported here because it takes a second to load."""
    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns about CSS it ignores
    from weasyprint import CSS, HTML

    pdf: bytes = HTML(string=html).write_pdf(stylesheets=[CSS(string=PDF_CSS)])
    return pdf


def postmortem_pdf(incident_id: str, lang: str = "zh") -> tuple[bytes, datetime | None]:
    """The current 5W1H post-mortem (a draft until closed) as PDF, with its due time."""
    from incident.records.postmortem import render_postmortem

    html, due = render_postmortem(incident_id, lang, "html")
    return to_pdf(html), due

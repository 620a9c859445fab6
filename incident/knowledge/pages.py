"""The pages a knowledge base holds: each closed incident's records, each finished month's and quarter's
review. What they say is the archive's (``incident export`` writes the same Markdown).

Why these and when: the guide files the records for training and case studies, so an incident goes
there once it is closed (its records, the post-mortem among them, as archived; the meeting and the
sign-off after the close archive them again, and the page follows); a review once its period is over
(a month still running would be rewritten all month). Titles and paths are made from ids and codes
only, never from customer text.

Why cheap candidates: the sweep asks every few seconds. An incident's page is looked at again only when
one of its records was archived after the last look (one grouped query); a review only when its last
check is older than ``REVIEW_CHECK`` (its figures move when a late survey or a meeting lands), and its
document is rendered only when the figures' digest differs from the one pushed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incident.archive.service import quarter_of
from incident.metrics import service as metrics
from incident.reviews import render
from incident.reviews import service as reviews
from models import Incident, Record
from models.record import RECORD_KINDS
from playbooks import vocabulary

REVIEW_CHECK = timedelta(hours=1)


@dataclass(frozen=True)
class Body:
    """A page's content: Markdown as archived, and the images it names (``![trend](trend.png)``)."""

    markdown: str
    images: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """A page that may need pushing: ``digest`` says whether it changed, ``body`` makes its content."""

    path: str
    title: str
    incident_id: str | None
    digest: str
    source_at: datetime
    body: Callable[[], Body]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def incident_title(inc: Incident, lang: str) -> str:
    category = vocabulary.label("category", inc.category, lang)
    level = vocabulary.label("level_short", inc.level, lang)
    return f"{inc.id} · {category} · {level} · {inc.identified_at.astimezone(metrics.zone()):%Y-%m-%d}"


def record_times(session: Session, lang: str) -> dict[str, datetime]:
    """Closed incident → when its newest record (in ``lang``, Markdown) was archived."""
    rows = session.execute(
        select(Record.incident_id, func.max(Record.updated_at))
        .join(Incident, Incident.id == Record.incident_id)
        .where(Incident.status == "closed", Record.lang == lang, Record.format == "md")
        .group_by(Record.incident_id)
    )
    return {incident_id: at for incident_id, at in rows}


def incident_page(session: Session, incident_id: str, lang: str, source_at: datetime) -> Candidate:
    """The incident's records in the guide's order, one after the other, as archived."""
    inc = session.get_one(Incident, incident_id)
    stored = {
        row.kind: row.content
        for row in session.scalars(
            select(Record).where(
                Record.incident_id == incident_id, Record.lang == lang, Record.format == "md"
            )
        )
    }
    text = "\n\n---\n\n".join(stored[k].strip() for k in RECORD_KINDS if k in stored) + "\n"
    title = incident_title(inc, lang)
    return Candidate(
        f"incidents/{incident_id}", title, incident_id, _digest(title, text), source_at, lambda: Body(text)
    )


def finished_periods(facts: metrics.Facts, now: datetime) -> list[reviews.Period]:
    """Every month and quarter with incidents that is over by ``now`` (in INCIDENT_TZ)."""
    tz = metrics.zone()
    this_month = metrics.month_of(now, tz)
    months = sorted({metrics.month_of(i.identified_at, tz) for i in facts.incidents} - {this_month})
    this_quarter = quarter_of(this_month)
    quarters = sorted({quarter_of(m) for m in months} - {this_quarter})
    return [*map(reviews.month, months), *map(reviews.quarter, quarters)]


def _charts_as_files(images: dict[str, bytes]) -> render.Chart:
    def chart(name: str, png: bytes) -> Markup:
        images[f"{name}.png"] = png
        return Markup(f"![{name}]({name}.png)")  # our own name: nothing to escape

    return chart


def review_page(
    session: Session, period: reviews.Period, facts: metrics.Facts, lang: str, now: datetime
) -> Candidate:
    """A review whose digest is its figures' (plus its template's), so nothing is rendered to compare."""
    data = reviews.review(session, period, facts)
    template = (render.TEMPLATES / f"review.{lang}.md.j2").read_text(encoding="utf-8")
    digest = _digest(json.dumps(data, sort_keys=True, default=str), lang, template)

    def body() -> Body:
        images: dict[str, bytes] = {}
        text = render.markdown_text(data, lang, now=now, chart=_charts_as_files(images))
        return Body(text, images)

    return Candidate(f"reviews/{period.name}", render.title(data, lang), None, digest, now, body)


def reviews_due(
    session: Session, lang: str, now: datetime, checked: dict[str, datetime | None], every: bool
) -> list[Candidate]:
    """The finished periods' reviews not checked within ``REVIEW_CHECK`` (``every``: all of them)."""
    facts = metrics.load(session)
    out = []
    for period in finished_periods(facts, now):
        last = checked.get(f"reviews/{period.name}")
        if every or last is None or now - last >= REVIEW_CHECK:
            out.append(review_page(session, period, facts, lang, now))
    return out

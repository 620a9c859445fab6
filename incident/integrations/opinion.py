"""The public-opinion monitor's side in our database: which incidents are watched, and what was found.

Why apart from baidu.py: this is the domain (which incidents deserve a keyword task, when a task is
due, how a negative item becomes media exposure on its incident, once), testable without the vendor;
baidu.py is only the vendor's protocol. A team's own monitor could use these functions as they are.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import playbooks
from incident.feedback import service as intake
from incident.feedback.inputs import MAX_TEXT, FeedbackIn
from incident.incidents import timeline
from incident.integrations.tickets import text_of
from models import LOCK, Feedback, Incident, IntegrationLink, OpinionTask, session_scope

log = logging.getLogger("incident.integrations.opinion")

SYSTEM = "baidu"  # the links of recorded items
CLAIM = timedelta(seconds=60)  # a task being created by a worker that died is created again after this
LOOKBACK = timedelta(days=1)  # a new task reads the day before it (Baidu looks back 1 or 7 days)
OVERLAP = timedelta(minutes=10)  # each read starts this much before the last ended: items indexed late
MAX_BACKOFF = timedelta(hours=1)
NEGATIVE = {"NEGATIVE", "负面"}
KEYWORDS = 10


@dataclass(frozen=True)
class Watch:
    """An open incident to create a task for, and what the task looks for."""

    incident_id: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Due:
    """A task whose results are to be read, from ``since``."""

    incident_id: str
    task_id: str
    since: datetime


def _keywords(s: Session, now: datetime) -> dict[str, list[str]]:
    """Open incidents without a task (or with one whose creation died), and their models and batches."""
    stale = (
        OpinionTask.task_id.is_(None)
        & (OpinionTask.created_at < now - CLAIM)
        & or_(OpinionTask.next_poll_at.is_(None), OpinionTask.next_poll_at <= now)  # backing off
    )
    rows = s.execute(
        select(Incident.id, Feedback.product_model, Feedback.batch)
        .join(Feedback, Feedback.incident_id == Incident.id)
        .outerjoin(OpinionTask, OpinionTask.incident_id == Incident.id)
        .where(Incident.status != "closed", or_(OpinionTask.incident_id.is_(None), stale))
        .where(or_(Feedback.product_model.is_not(None), Feedback.batch.is_not(None)))
        .order_by(Incident.id, Feedback.received_at)
    )
    found: dict[str, list[str]] = {}
    for incident_id, *values in rows:
        words = found.setdefault(incident_id, [])
        for value in values:
            if value and value.strip() and value.strip() not in words and len(words) < KEYWORDS:
                words.append(value.strip())
    return found


def to_watch(now: datetime) -> list[Watch]:
    """Open incidents that name a product model or batch and have no task yet, each claimed (its row)."""
    claimed = []
    with session_scope() as s:
        for incident_id, words in _keywords(s, now).items():
            row = s.get(OpinionTask, incident_id)
            if row is None:
                row = OpinionTask(incident_id=incident_id, keywords="", failures=0, created_at=now)
                try:
                    with s.begin_nested():
                        s.add(row)
                except IntegrityError:  # another worker claimed it meanwhile
                    continue
            row.keywords, row.created_at, row.next_poll_at = " ".join(words)[:400], now, None
            claimed.append(Watch(incident_id, tuple(words)))
    return claimed


def unclaim(incident_id: str, now: datetime, refused: bool = False) -> None:
    """The task was not created: tried again in the next pass, or (``refused``) after a back-off."""
    with session_scope() as s:
        row = s.get(OpinionTask, incident_id)
        if row is None or row.task_id is not None:
            return
        if not refused:
            s.delete(row)
            return
        row.failures += 1
        row.created_at = now - CLAIM  # not being created by anyone: taken again once the back-off ends
        row.next_poll_at = now + min(timedelta(minutes=2**row.failures), MAX_BACKOFF)


def created(incident_id: str, task_id: str, now: datetime) -> None:
    with session_scope() as s:
        row = s.get_one(OpinionTask, incident_id)
        row.task_id, row.next_poll_at = task_id[:64], now


def closed() -> list[tuple[str, str]]:
    """(incident, task) of the tasks whose incident has closed: deleted at the monitor, then here."""
    with session_scope() as s:
        rows = s.execute(
            select(OpinionTask.incident_id, OpinionTask.task_id)
            .join(Incident, Incident.id == OpinionTask.incident_id)
            .where(Incident.status == "closed", OpinionTask.task_id.is_not(None))
        )
        return [(incident_id, str(task_id)) for incident_id, task_id in rows]


def forget(incident_id: str) -> None:
    with session_scope() as s:
        s.execute(delete(OpinionTask).where(OpinionTask.incident_id == incident_id))


def due(now: datetime, period: timedelta) -> list[Due]:
    """Tasks of open incidents whose read is due, each moved a period on (two workers read it once)."""
    with session_scope() as s:
        rows = s.scalars(
            select(OpinionTask)
            .join(Incident, Incident.id == OpinionTask.incident_id)
            .where(Incident.status != "closed", OpinionTask.task_id.is_not(None))
            .where(or_(OpinionTask.next_poll_at.is_(None), OpinionTask.next_poll_at <= now))
            .order_by(OpinionTask.next_poll_at)
            .with_for_update(skip_locked=True)
        ).all()
        found = []
        for row in rows:
            since = row.polled_at - OVERLAP if row.polled_at else row.created_at - LOOKBACK
            found.append(Due(row.incident_id, str(row.task_id), since))
            row.next_poll_at = now + period
        return found


def read(incident_id: str, now: datetime) -> None:
    """The task was read up to ``now``: the next read starts there."""
    with session_scope() as s:
        if (row := s.get(OpinionTask, incident_id)) is not None:
            row.polled_at, row.failures = now, 0


def resume(incident_id: str, now: datetime) -> None:
    """The pass ran out of requests mid-read: due again in the next pass, from where it started."""
    with session_scope() as s:
        if (row := s.get(OpinionTask, incident_id)) is not None:
            row.next_poll_at = now


def failed(incident_id: str, now: datetime) -> None:
    with session_scope() as s:
        if (row := s.get(OpinionTask, incident_id)) is not None:
            row.failures += 1
            row.next_poll_at = now + min(timedelta(minutes=2**row.failures), MAX_BACKOFF)


def items_of(payload: object) -> list[dict[str, Any]]:
    """The items of one answer (``{"data": [...]}``, or the list itself)."""
    items = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise ValueError("the answer has no list of items (data)")
    return [item for item in items if isinstance(item, dict)]


def _text(value: object) -> str:
    """A vendor's text as intake stores it (PostgreSQL text holds no NUL)."""
    return str(value or "").replace("\x00", "").strip()


def _alarm(s: Session, incident: Incident, item: dict[str, Any], url: str) -> FeedbackIn | None:
    """The media exposure as an alarm in the incident's own correlation (it joins that incident)."""
    opening = s.scalars(
        select(Feedback)
        .where(Feedback.incident_id == incident.id)
        .order_by(Feedback.opened_incident.desc(), Feedback.received_at)
    ).first()
    fields = {*playbooks.get(incident.category).correlation, "product_model", "batch"}
    values = {name: getattr(opening, name, None) for name in fields} if opening else {}
    title = _text(item.get("title")) or url
    source = _text(item.get("source") or item.get("mediaType")) or "-"
    try:
        body = FeedbackIn(
            kind="alarm", category=incident.category, channel="social", media=True, evidence=url[:MAX_TEXT],
            summary=text_of((f"[百度舆情] {source}：{title}", _text(item.get("summary"))), title), **values,
        )  # type: ignore[arg-type]  # fmt: skip
    except ValidationError as exc:  # an item intake cannot store must not stop the items after it
        log.warning("a media item for %s is not recorded (%s): %s", incident.id, exc.errors()[0]["msg"], url)
        return None
    if intake.correlation_key(body, "-") != incident.open_key:
        log.warning("a media item for %s does not correlate with it; not recorded: %s", incident.id, url)
        return None
    return body


def record(incident_id: str, item: dict[str, Any], now: datetime) -> int:
    """A negative item about an open incident: its alarm, link and timeline event, once (1), else 0."""
    url = _text(item.get("url"))
    if str(item.get("sentiment") or "").strip().upper() not in NEGATIVE or not url.startswith("http"):
        return 0
    key = f"{incident_id}:{hashlib.sha256(url.encode()).hexdigest()}"
    with session_scope() as s:
        locked = select(Incident).where(Incident.id == incident_id).with_for_update(**LOCK)
        incident = s.scalars(locked).first()
        if incident is None or incident.status == "closed" or incident.open_key is None:
            return 0
        body = _alarm(s, incident, item, url)
        if body is None:
            return 0
        link = IntegrationLink(system=SYSTEM, external_id=key, created_at=now, failures=0)
        try:
            with s.begin_nested():
                s.add(link)
        except IntegrityError:  # recorded before: the same item twice is one record
            return 0
        result = intake.record_in(s, [body], now)[0]
        link.feedback_id, link.incident_id = result.feedback_id, result.incident_id
        data = {"url": url, "title": body.summary[:200], "published": str(item.get("publishTime") or "")}
        timeline.add(
            s, incident_id, "media_exposure", f"{SYSTEM}:{result.feedback_id}", url[:2000], data=data, now=now
        )
    return 1

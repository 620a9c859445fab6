"""The monthly review, generated once the month is over and sent to leadership (issue 13 item 4).

Why in the worker's sweep and not a Prefect deployment schedule: the service runs one deployment (the
incident process) whose worker already sweeps every ``INCIDENT_SWEEP_SECONDS``; a second deployment
with a cron schedule would need a second served flow and work pool for one job a month. The sweep
calls ``monthly`` each pass; it does something only when last month's review is missing, which is on
the first day of the month (or the first pass after a service that was down then). Idempotent across
passes and replicas: the month is claimed with an exclusive create of a file (this home), then with a
row in the shared database (workers on other machines have homes of their own, and three workers on
one database sent leadership three notices), before the review is written, so one writes it and
leadership gets one notice.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from incident import environ
from incident.metrics import service as metrics
from incident.reviews import findings, render, service

log = logging.getLogger("incident.reviews")


def folder() -> Path:
    return environ.home() / "reviews"


def previous_month(now: datetime) -> str:
    return metrics.last_months(2, metrics.month_of(now))[0]


def _claim(path: Path) -> bool:
    """Exclusive create of ``path``: True for the one caller that made it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def write_monthly(name: str, lang: str) -> tuple[Path, list[str]]:
    """Write the month's review as PDF and Markdown; return the PDF's path and its change sentences."""
    from models import session_scope

    with session_scope() as session:
        data = service.review(session, service.month(name))
    base = folder() / f"review-{name}.{lang}"
    Path(f"{base}.md").write_bytes(render.document(data, lang, "md"))
    pdf = Path(f"{base}.pdf")
    pdf.write_bytes(render.document(data, lang, "pdf"))
    return pdf, [findings.sentence(c, lang) for c in data["changes"]][:5]


RETRY_FIRST = timedelta(minutes=1)  # after a failed review, doubling per failure in a row
RETRY_MAX = timedelta(hours=6)
_failed: dict[str, tuple[int, datetime]] = {}  # month → (failures in a row, no new try before)


def _backing_off(name: str, now: datetime) -> bool:
    failed = _failed.get(name)
    return failed is not None and now < failed[1]


def _note_failure(name: str, now: datetime) -> datetime:
    count = _failed.get(name, (0, now))[0] + 1
    retry_at = now + min(RETRY_FIRST * 2 ** (count - 1), RETRY_MAX)
    _failed[name] = (count, retry_at)
    return retry_at


def _claim_month(name: str) -> bool:
    """A row for the month in the shared database (its primary key): True for the one that made it."""
    from sqlalchemy.exc import IntegrityError

    from models import Counter, session_scope

    try:
        with session_scope() as s:
            s.add(Counter(key=f"review:{name}", value=1))
    except IntegrityError:
        return False
    return True


def _unclaim_month(name: str) -> None:
    from sqlalchemy import delete

    from models import Counter, session_scope

    with session_scope() as s:
        s.execute(delete(Counter).where(Counter.key == f"review:{name}"))


async def monthly(now: datetime) -> dict[str, Any]:
    """Generate last month's review if nobody has yet, and tell leadership where it is.

    A review that cannot be written (a full disk, a broken template, a font that makes WeasyPrint
    fail) is logged with its traceback and tried again later, backing off from a minute to six hours
    (in this process: a restarted worker tries at once), and never raises: the sweep's other work (the
    integrations, the knowledge base) must not wait for a review that keeps failing.
    """
    name = previous_month(now)
    if _backing_off(name, now):
        return {"reviews": 0}
    try:
        written = await _write_and_tell(name, now)
    except Exception:  # logged with its traceback; the sweep goes on, the next try backs off
        retry_at = _note_failure(name, now)
        log.exception("the monthly review %s could not be written; next try after %s", name, retry_at)
        return {"reviews": 0, "review_failures": 1}
    _failed.pop(name, None)
    return {"reviews": written}


async def _write_and_tell(name: str, now: datetime) -> int:
    from notifiers import notify

    lang = environ.lang()
    claim = folder() / f".review-{name}.claimed"
    if not _claim(claim):
        return 0
    try:
        mine = await asyncio.to_thread(_claim_month, name)
    except BaseException:
        claim.unlink(missing_ok=True)  # the database is away: the next pass tries again
        raise
    if not mine:  # another worker (with a home of its own) has it
        return 0
    try:
        path, lines = await asyncio.to_thread(write_monthly, name, lang)
    except BaseException:
        claim.unlink(missing_ok=True)  # not written: a later pass tries again
        await asyncio.to_thread(_unclaim_month, name)
        raise
    log.info("monthly review %s written to %s", name, path)
    context = {"review": name, "review_path": str(path), "review_lines": lines}
    await notify("review_ready", ["leadership"], context, incident_id=None, lang=lang)
    return 1

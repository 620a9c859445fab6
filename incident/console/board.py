"""The board's data: open incidents by next deadline, with time left, in two queries.

Why not ``views.list_incidents``: it loads each incident's deadlines lazily (one query per row); the
board eager-loads them, so 1,000 open incidents are two SELECTs. What each run waits for comes from
one batched Prefect query per 200 runs (``prefect_runs.waiting_points``), never one call per row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from incident.console.render import t
from incident.incidents.service import Filters, keep, query, summary_row
from models import Feedback, Incident, TimelineEvent, session_scope, utcnow

CLOSED_LIMIT = 500


def span(minutes: int) -> str:
    """'1 h 5 min', '2 d 3 h', '12 min' in the console's language."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [t("days", n=days)] * bool(days) + [t("hours", n=hours)] * bool(hours)
    if mins or not parts:
        parts.append(t("minutes", n=mins))
    return " ".join(parts[:2])


def time_left(due: datetime, now: datetime) -> tuple[str, bool]:
    """('剩余 12 分钟', False) or ('已超时 5 分钟', True); hours and days once they matter."""
    seconds = (due - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    if seconds < 0:
        return t("overdue_by", span=span(minutes)), True
    return t("left", span=span(minutes)), False


def _row(inc: Incident, now: datetime) -> dict[str, Any]:
    row = summary_row(inc, now)
    row["flow_run_id"] = inc.flow_run_id
    late, nxt = row["overdue"], row["next_deadline"]
    shown = late or nxt  # an overdue promise (a missed contact never made) before the next one
    if shown:
        due = datetime.fromisoformat(shown["due_at"])
        row["shown_deadline"], row["due"] = shown, due
        row["left"], row["is_overdue"] = time_left(due, now)
    else:
        row["shown_deadline"], row["due"], row["left"], row["is_overdue"] = (
            None,
            None,
            t("no_deadline"),
            False,
        )
    return row


def sort_key(row: dict[str, Any]) -> tuple[int, float, int, str]:
    """Overdue first, the most overdue on top; then the soonest deadline; none last; then the level."""
    due = row["due"]
    group = 0 if row["is_overdue"] else 1 if due else 2
    return (group, due.timestamp() if due else 0.0, row["level"], row["incident_id"])


def open_rows(filters: Filters | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or utcnow()
    f = filters or Filters()
    wanted = Filters(True, f.level, f.category, f.status, f.owner, f.overdue, f.q)
    with session_scope() as s:
        stmt = query(wanted).options(selectinload(Incident.deadlines))
        rows = [_row(inc, now) for inc in s.scalars(stmt)]
    return sorted((r for r in rows if keep(r, wanted)), key=sort_key)


def closed_rows(limit: int = CLOSED_LIMIT) -> list[dict[str, Any]]:
    with session_scope() as s:
        stmt = (
            select(Incident)
            .where(Incident.status == "closed")
            .options(selectinload(Incident.deadlines))
            .order_by(Incident.closed_at.desc())
            .limit(limit)
        )
        return [{**summary_row(inc), "closed_at": inc.closed_at} for inc in s.scalars(stmt)]


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "open": len(rows),
        "overdue": sum(1 for r in rows if r["is_overdue"]),
        **{f"level{n}": sum(1 for r in rows if r["level"] == n) for n in (1, 2, 3)},
    }


def owners() -> list[str]:
    """The owners of open incidents, for the board's owner filter."""
    with session_scope() as s:
        stmt = select(Incident.owner).where(Incident.status != "closed", Incident.owner.is_not(None))
        return sorted(set(s.scalars(stmt.distinct())))


def version() -> tuple[int, int, int, int]:
    """What changes whenever the board or the inbox would: the last timeline event, the incidents and
    the feedback counted. Cheap (three indexed aggregates), so the event stream polls it each second."""
    with session_scope() as s:
        last = s.scalar(select(func.max(TimelineEvent.id))) or 0
        incidents = s.scalar(select(func.count()).select_from(Incident)) or 0
        feedback = s.execute(select(func.count(Feedback.id), func.count(Feedback.answered_by))).one()
    return (last, incidents, int(feedback[0]), int(feedback[1]))

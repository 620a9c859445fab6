"""The board's data: open incidents by next deadline, with time left, in two queries.

Why not ``views.list_incidents``: it loads each incident's deadlines lazily (one query per row); the
board eager-loads them, so 1,000 open incidents are two SELECTs. What each run waits for comes from
one batched Prefect query per 200 runs (``prefect_runs.waiting_points``), never one call per row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from incident.incidents.service import summary_row
from models import Incident, session_scope, utcnow

CLOSED_LIMIT = 500


def time_left(due: datetime, now: datetime) -> tuple[str, bool]:
    """('12 min left', False) or ('overdue by 5 min', True); hours and days once they matter."""
    seconds = (due - now).total_seconds()
    overdue = seconds < 0
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        span = f"{days} d {hours} h" if hours else f"{days} d"
    elif hours:
        span = f"{hours} h {mins} min" if mins else f"{hours} h"
    else:
        span = f"{mins} min"
    return (f"overdue by {span}", True) if overdue else (f"{span} left", False)


def _row(inc: Incident, now: datetime) -> dict[str, Any]:
    row = summary_row(inc)
    row["flow_run_id"] = inc.flow_run_id
    nxt = row["next_deadline"]
    if nxt:
        due = datetime.fromisoformat(nxt["due_at"])
        row["due"] = due
        row["left"], row["overdue"] = time_left(due, now)
    else:
        row["due"], row["left"], row["overdue"] = None, "no open deadline", False
    return row


def sort_key(row: dict[str, Any]) -> tuple[int, float, int, str]:
    """Soonest next deadline first (so the most overdue lead); none last; then the graver level."""
    due = row["due"]
    return (due is None, due.timestamp() if due else 0.0, row["level"], row["incident_id"])


def open_rows(now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or utcnow()
    with session_scope() as s:
        stmt = select(Incident).where(Incident.status != "closed").options(selectinload(Incident.deadlines))
        rows = [_row(inc, now) for inc in s.scalars(stmt)]
    return sorted(rows, key=sort_key)


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
        "overdue": sum(1 for r in rows if r["overdue"]),
        **{f"level{n}": sum(1 for r in rows if r["level"] == n) for n in (1, 2, 3)},
    }

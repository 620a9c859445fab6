"""The monthly and quarterly reviews' figures (issue 13 item 4), from the product's own database.

Why on top of ``incident.metrics.service``: the month's counts, response/handling time, satisfaction
against target, recurrence and missed deadlines are defined once there (and shown by ``incident
metrics``); a review adds what a reader of the guide's monthly review wants besides: the limits each
level's playbook sets, deadlines met and missed, month-over-month changes, a 12-month trend by
category and, for a quarter, the process findings (``incident.reviews.findings``). Every function takes
a session or plain data, so the tests seed rows with chosen timestamps and check exact numbers.
Recurrence comes from metrics' problem keys; the hook ``recurrence_of`` (issue 13 item 3) would only
make it stored rather than computed: the figures here need no change when it lands.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import playbooks
from incident.errors import BadInput
from incident.metrics import service as metrics
from models import Deadline, Incident

QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
LEVELS = metrics.LEVELS
CATEGORIES = metrics.CATEGORIES


@dataclass(frozen=True)
class Period:
    """A month (``2026-11``) or a quarter (``2026-Q4``) and the months it covers, oldest first."""

    kind: str  # month | quarter
    name: str
    months: tuple[str, ...]

    def previous(self) -> Period:
        if self.kind == "month":
            return month(metrics.last_months(2, self.name)[0])
        year, q = int(self.name[:4]), int(self.name[-1])
        return quarter(f"{year - 1}-Q4" if q == 1 else f"{year}-Q{q - 1}")


def month(text: str) -> Period:
    metrics.check_month(text)
    return Period("month", text, (text,))


def quarter(text: str) -> Period:
    match = QUARTER.match(text or "")
    if not match:
        raise BadInput(f"quarter must look like 2026-Q4, got {text!r}")
    year, q = int(match[1]), int(match[2])
    return Period("quarter", text, tuple(f"{year:04d}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)))


def limits() -> dict[str, dict[str, Any]]:
    """Per level, the strictest limit the playbooks set (minutes) and the satisfaction target."""
    books = playbooks.load_all().values()
    out: dict[str, dict[str, Any]] = {}
    for level in LEVELS:
        rules = [b.level(level) for b in books]
        out[str(level)] = {
            "contact_minutes": min(r.contact_within.total_seconds() / 60 for r in rules),
            "satisfaction_target": max(r.satisfaction_target for r in rules),
        }
    return out


def _deadlines(session: Session, ids: set[str]) -> dict[str, dict[str, int]]:
    """Per deadline kind: met, missed, total over the period's incidents (pending/cancelled not judged)."""
    rows: dict[str, Counter[str]] = {}
    for incident_id, kind, state in session.execute(
        select(Deadline.incident_id, Deadline.kind, Deadline.state)
    ):
        if incident_id in ids and state in ("met", "missed"):
            rows.setdefault(kind, Counter())[state] += 1
    return {
        kind: {"met": c["met"], "missed": c["missed"], "total": c["met"] + c["missed"]}
        for kind, c in sorted(rows.items())
    }


def _closed_at(session: Session, ids: set[str]) -> dict[str, datetime]:
    return {
        i: at
        for i, at in session.execute(
            select(Incident.id, Incident.closed_at).where(Incident.closed_at.is_not(None))
        )
        if i in ids
    }


def _times(mine: list[metrics.IncidentFacts]) -> dict[str, Any]:
    """How many, and the response (minutes) and handling (hours) medians of these incidents."""
    resp = [(i.first_contact_at - i.identified_at).total_seconds() / 60 for i in mine if i.first_contact_at]
    hand = [(i.resolved_at - i.identified_at).total_seconds() / 3600 for i in mine if i.resolved_at]
    return {
        "incidents": len(mine),
        "response_minutes_p50": _r(metrics.percentile(resp, 0.5), 1),
        "handling_hours_p50": _r(metrics.percentile(hand, 0.5), 2),
    }


def _by_level_times(scope: list[metrics.IncidentFacts]) -> dict[str, dict[str, Any]]:
    return {str(level): _times([i for i in scope if i.level == level]) for level in LEVELS}


def _by_category(scope: list[metrics.IncidentFacts]) -> dict[str, Any]:
    """The guide's count table (category × level) and each category's medians."""
    return {
        "by_category_level": {
            c: {str(lv): sum(1 for i in scope if i.category == c and i.level == lv) for lv in LEVELS}
            for c in CATEGORIES
        },
        "by_category_times": {c: _times([i for i in scope if i.category == c]) for c in CATEGORIES},
    }


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _scope(facts: metrics.Facts, period: Period) -> list[metrics.IncidentFacts]:
    tz = metrics.zone()
    return [i for i in facts.incidents if metrics.month_of(i.identified_at, tz) in period.months]


def _figures(session: Session, facts: metrics.Facts, period: Period) -> dict[str, Any]:
    """metrics.compute over the period's months (one month, or a quarter's three merged)."""
    scope = _scope(facts, period)
    ids = {i.id for i in scope}
    if period.kind == "month":
        data = metrics.compute(facts, period.name)
    else:  # the same definitions with the quarter's incidents as the scope, history up to its end
        tz = metrics.zone()
        upto = [i for i in facts.incidents if metrics.month_of(i.identified_at, tz) <= period.months[-1]]
        data = metrics.compute(metrics.Facts(tuple(scope), facts.surveys, facts.missed, facts.targets), None)
        repeats = metrics.recurrences(upto)
        recurring = [i for i in scope if i.id in repeats]
        data["recurrence_rate"] = round(len(recurring) / len(scope), 4) if scope else None
        data["recurrences"] = [
            {
                "incident_id": i.id,
                "repeats": repeats[i.id][0],
                "problem": metrics.problem_label(repeats[i.id][1]),
            }
            for i in recurring
        ]
        data["top_recurring"] = metrics.top_recurring(upto, ids)
        data["month"] = None
    data["by_level_times"] = _by_level_times(scope)
    data.update(_by_category(scope))
    data["deadlines"] = _deadlines(session, ids)
    data["closed_at"] = _closed_at(session, ids)
    return data


def review(session: Session, period: Period, facts: metrics.Facts | None = None) -> dict[str, Any]:
    """Everything a review document shows: this period, the previous one, the trend and the limits
    (``facts``: read once by a caller that reviews several periods)."""
    from incident.reviews import findings

    facts = facts or metrics.load(session)
    data = _figures(session, facts, period)
    before = _figures(session, facts, period.previous())
    data.update(
        period=period.kind,
        name=period.name,
        months=list(period.months),
        previous={k: before[k] for k in ("incidents", "by_category", "by_level", "recurrence_rate")},
        limits=limits(),
        trend=category_trend(facts, metrics.last_months(12, period.months[-1])),
    )
    data["changes"] = findings.changes(data, before)
    if period.kind == "quarter":
        data["findings"] = findings.process(data, _scope(facts, period))
    data.pop("closed_at")
    return data


def category_trend(facts: metrics.Facts, months: list[str]) -> list[dict[str, Any]]:
    """Per month: incidents by category and the response/handling medians (the charts' lines)."""
    rows = []
    for m in months:
        scope = _scope(facts, Period("month", m, (m,)))
        rows.append(
            {
                "month": m,
                "incidents": len(scope),
                "by_category": {c: sum(1 for i in scope if i.category == c) for c in CATEGORIES},
                "by_level": _by_level_times(scope),
            }
        )
    return rows


def document(kind: str, name: str, lang: str = "zh", fmt: str = "md") -> bytes:
    """The review of a month (``kind="month"``) or a quarter as the bytes of one md/html/pdf file."""
    from incident.reviews import render
    from models import session_scope

    period = month(name) if kind == "month" else quarter(name)
    with session_scope() as session:
        data = review(session, period)
    return render.document(data, lang, fmt)

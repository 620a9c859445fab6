"""The monthly review's numbers (domain.md §9), computed from the product's own database.

Why this shape: ``load`` reads the few columns that matter into frozen plain data in one transaction,
and everything else is pure functions over that data, so tests insert ORM rows with chosen timestamps
and check exact numbers, and the CLI, the API and the console (``summary``, ``monthly_chart_png``) all
show the same figures. Definitions (the README's "Metrics" section says the same):

* **scope**: the incidents *identified* in the month (``INCIDENT_TZ``, else the machine's zone); all
  incidents when no month is given. Every figure is about the scope's incidents, wherever their later
  events fall.
* **response time**: identified → first customer contact, minutes (p50, p90 over contacted incidents).
* **handling time**: identified (the response starts when the incident is graded) → resolved (the
  customer confirmed satisfied or neutral), hours.
* **satisfaction**: per level, the share of the scope's surveys (every round) whose mean score is
  ≥ 4, against the playbook's target for that level.
* **recurrence**: an incident recurs when an incident identified before it has the same problem key:
  the same correlation key (product model + batch for product quality, service + region for service
  failures, outside cause + region for special scenarios: the key that joins feedback into one open
  incident) or the same root cause text once normalised (case, width, punctuation and spacing
  ignored). ``recurrence_rate`` = recurring incidents / incidents in scope.
* **missed deadlines**: the scope's deadline rows whose state is ``missed``, by kind.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import playbooks
from incident import settings
from incident.errors import BadInput
from models import CauseAnalysis, Deadline, Incident, Survey, session_scope
from playbooks import vocabulary

CATEGORIES = ("product_quality", "service_failure", "special_scenario")
LEVELS = (1, 2, 3)
GOOD_SCORE = 4.0  # a survey "scores well" at a mean of 4 or more (as actions.survey counts it)
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TOP = 5


@dataclass(frozen=True)
class IncidentFacts:
    id: str
    category: str
    level: int
    status: str
    identified_at: datetime
    first_contact_at: datetime | None
    resolved_at: datetime | None
    correlation_key: str
    root_cause: str | None  # the latest cause analysis' root cause


@dataclass(frozen=True)
class Facts:
    """Everything the metrics need, read once; incidents in the order they were identified."""

    incidents: tuple[IncidentFacts, ...]
    surveys: tuple[tuple[str, float], ...]  # (incident id, mean score)
    missed: tuple[tuple[str, str], ...]  # (incident id, deadline kind)
    targets: dict[tuple[str, int], float]  # (category, level) → satisfaction target


# --- reading ----------------------------------------------------------------------------------


def load(session: Session) -> Facts:
    roots: dict[str, str] = {}
    for incident_id, root in session.execute(
        select(CauseAnalysis.incident_id, CauseAnalysis.root).order_by(CauseAnalysis.id)
    ):
        roots[incident_id] = root  # the latest wins
    incidents = tuple(
        IncidentFacts(
            id=row.id,
            category=row.category,
            level=row.level,
            status=row.status,
            identified_at=row.identified_at,
            first_contact_at=row.first_contact_at,
            resolved_at=row.resolved_at,
            correlation_key=row.correlation_key,
            root_cause=roots.get(row.id),
        )
        for row in session.scalars(select(Incident).order_by(Incident.identified_at, Incident.id))
    )
    surveys = tuple((i, float(s)) for i, s in session.execute(select(Survey.incident_id, Survey.score)))
    missed = tuple(
        (i, k)
        for i, k in session.execute(
            select(Deadline.incident_id, Deadline.kind).where(Deadline.state == "missed")
        )
    )
    targets = {
        (cat, level): book.level(level).satisfaction_target
        for cat, book in playbooks.load_all().items()
        for level in LEVELS
    }
    return Facts(incidents, surveys, missed, targets)


def read() -> Facts:
    with session_scope() as session:
        return load(session)


# --- months -----------------------------------------------------------------------------------


def zone() -> tzinfo:
    """Months are calendar months where the team works: ``INCIDENT_TZ`` (as documents use), else the
    machine's own zone."""
    return settings.zone()


def check_month(month: str) -> tuple[int, int]:
    match = MONTH.match(month or "")
    if not match:
        raise BadInput(f"month must look like 2026-11, got {month!r}")
    return int(match[1]), int(match[2])


def month_of(at: datetime, tz: tzinfo | None = None) -> str:
    return f"{at.astimezone(tz or zone()):%Y-%m}"


def current_month(now: datetime | None = None) -> str:
    return month_of(now or datetime.now(UTC))


def last_months(count: int, end: str | None = None) -> list[str]:
    """``count`` months ending with ``end`` (default: this month), oldest first."""
    year, month = check_month(end or current_month())
    index = year * 12 + month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


# --- pure computations ------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def normalize_cause(text: str | None) -> str:
    """Root-cause text compared loosely: NFKC, case-folded, punctuation and runs of spaces folded."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return re.sub(r"[\W_]+", " ", folded).strip()


def problem_keys(inc: IncidentFacts) -> list[str]:
    """What makes two incidents "the same problem" (see the module docstring)."""
    keys = []
    if "|feedback=" not in inc.correlation_key:  # a report with no correlation fields stands alone
        keys.append("key:" + inc.correlation_key)
    cause = normalize_cause(inc.root_cause)
    if cause:
        keys.append("cause:" + cause)
    return keys


def recurrences(incidents: Iterable[IncidentFacts]) -> dict[str, tuple[str, str]]:
    """incident id → (the earliest earlier incident with a shared problem key, that key)."""
    first_seen: dict[str, str] = {}
    found: dict[str, tuple[str, str]] = {}
    for inc in sorted(incidents, key=lambda i: (i.identified_at, i.id)):
        for key in problem_keys(inc):
            if key in first_seen and inc.id not in found:
                found[inc.id] = (first_seen[key], key)
            first_seen.setdefault(key, inc.id)
    return found


def problem_label(key: str, lang: str | None = None) -> str:
    """A problem key for people: ``key:product_quality|batch=b1`` → ``product_quality: batch=b1``;

    ``cause:separator defect`` → ``root cause: separator defect``. With ``lang`` (a review's words):
    ``产品质量：型号 p30，批次 b1`` / ``Product quality: product model p30, batch b1``, fields the
    report left empty omitted; the values are customers' words (escape them where they are shown).
    """
    kind, _, value = key.partition(":")
    if lang is None:
        if kind == "cause":
            return f"root cause: {value}"
        category, *fields = value.split("|")
        return f"{category}: {', '.join(fields)}"
    zh = lang != "en"
    colon, comma = ("：", "，") if zh else (": ", ", ")
    if kind == "cause":
        return vocabulary.label("problem_field", "root_cause", lang) + colon + value
    category, *fields = value.split("|")
    named = []
    for field in fields:
        name, _, given = field.partition("=")
        if given:
            named.append(f"{vocabulary.label('problem_field', name, lang)} {given}")
    return vocabulary.label("category", category, lang) + colon + comma.join(named)


def top_recurring(
    history: Sequence[IncidentFacts], scope_ids: set[str], limit: int = TOP
) -> list[dict[str, Any]]:
    """Problem keys seen in two or more incidents (up to the scope's end), at least one in scope."""
    by_key: dict[str, list[IncidentFacts]] = {}
    for inc in history:
        for key in problem_keys(inc):
            by_key.setdefault(key, []).append(inc)
    rows = [
        {
            "problem": problem_label(key),
            "key": key,
            "incidents": len(incs),
            "incident_ids": [i.id for i in incs],
            "last_seen": max(i.identified_at for i in incs).isoformat(),
        }
        for key, incs in by_key.items()
        if len(incs) > 1 and any(i.id in scope_ids for i in incs)
    ]
    rows.sort(key=lambda r: r["last_seen"], reverse=True)  # most recent first among equals
    rows.sort(key=lambda r: r["incidents"], reverse=True)
    return rows[:limit]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def satisfaction(scope: Sequence[IncidentFacts], facts: Facts) -> dict[str, Any]:
    level_of = {i.id: (i.category, i.level) for i in scope}
    by_level: dict[str, Any] = {}
    total = good_total = 0
    for level in LEVELS:
        scores = [s for i, s in facts.surveys if i in level_of and level_of[i][1] == level]
        cats = {level_of[i][0] for i, _ in facts.surveys if i in level_of and level_of[i][1] == level}
        # Playbooks may set different targets per category: the strictest one that applies is used.
        target = max((facts.targets[(c, level)] for c in cats or CATEGORIES), default=None)
        good = sum(1 for s in scores if s >= GOOD_SCORE)
        share = round(good / len(scores), 4) if scores else None
        by_level[str(level)] = {
            "surveys": len(scores),
            "good": good,
            "share": share,
            "target": target,
            "met": None if share is None or target is None else share >= target,
        }
        total, good_total = total + len(scores), good_total + good
    return {
        "surveys": total,
        "good": good_total,
        "share": round(good_total / total, 4) if total else None,
        "by_level": by_level,
    }


def compute(facts: Facts, month: str | None = None) -> dict[str, Any]:
    """The review of one month (or of everything when ``month`` is None)."""
    tz = zone()
    if month is not None:
        check_month(month)
        scope = [i for i in facts.incidents if month_of(i.identified_at, tz) == month]
        history = [i for i in facts.incidents if month_of(i.identified_at, tz) <= month]
    else:
        scope, history = list(facts.incidents), list(facts.incidents)
    ids = {i.id for i in scope}
    response = [
        (i.first_contact_at - i.identified_at).total_seconds() / 60 for i in scope if i.first_contact_at
    ]
    handling = [(i.resolved_at - i.identified_at).total_seconds() / 3600 for i in scope if i.resolved_at]
    repeats = recurrences(history)
    recurring = [
        {"incident_id": i.id, "repeats": repeats[i.id][0], "problem": problem_label(repeats[i.id][1])}
        for i in scope
        if i.id in repeats
    ]
    missed = Counter(kind for incident_id, kind in facts.missed if incident_id in ids)
    return {
        "month": month,
        "timezone": str(tz),
        "incidents": len(scope),
        "open": sum(1 for i in scope if i.status != "closed"),
        "by_category": {c: sum(1 for i in scope if i.category == c) for c in CATEGORIES},
        "by_level": {str(lv): sum(1 for i in scope if i.level == lv) for lv in LEVELS},
        "contacted": len(response),
        "response_minutes_p50": _round(percentile(response, 0.5), 1),
        "response_minutes_p90": _round(percentile(response, 0.9), 1),
        "resolved": len(handling),
        "handling_hours_p50": _round(percentile(handling, 0.5), 2),
        "handling_hours_p90": _round(percentile(handling, 0.9), 2),
        "satisfaction": satisfaction(scope, facts),
        "recurrence_rate": round(len(recurring) / len(scope), 4) if scope else None,
        "recurrences": recurring,
        "missed_deadlines": {"total": sum(missed.values()), "by_kind": dict(sorted(missed.items()))},
        "top_recurring": top_recurring(history, ids),
    }


def trend(facts: Facts, months: Sequence[str]) -> list[dict[str, Any]]:
    """Per month: incidents by level and the response-time median (what the chart draws)."""
    tz = zone()
    rows = []
    for month in months:
        scope = [i for i in facts.incidents if month_of(i.identified_at, tz) == month]
        response = [
            (i.first_contact_at - i.identified_at).total_seconds() / 60 for i in scope if i.first_contact_at
        ]
        rows.append(
            {
                "month": month,
                "incidents": len(scope),
                "by_level": {str(lv): sum(1 for i in scope if i.level == lv) for lv in LEVELS},
                "response_minutes_p50": _round(percentile(response, 0.5), 1),
            }
        )
    return rows


# --- what the CLI, the API and the console call ------------------------------------------------


def summary(month: str | None = None) -> dict[str, Any]:
    """The month's review (all incidents when ``month`` is None) plus a 12-month trend ending there."""
    if month is not None:
        check_month(month)
    from incident.actions.service import counts

    facts = read()
    data = compute(facts, month)
    data["trend"] = trend(facts, last_months(12, month))
    tz = zone()
    scope = {i.id for i in facts.incidents if month_of(i.identified_at, tz) == month} if month else None
    data["actions"] = counts(scope)  # the improvement actions of the scope's incidents
    return data


def monthly_chart_png(months: int = 12, lang: str | None = None, *, end: str | None = None) -> bytes:
    """A PNG line chart of the last ``months`` months (ending with ``end``, default this month), its words
    in ``lang`` (else INCIDENT_LANG)."""
    from incident.metrics.chart import render_png

    if not 1 <= months <= 120:
        raise BadInput(f"months must be between 1 and 120, got {months}")
    return render_png(trend(read(), last_months(months, end)), lang or settings.get().lang)

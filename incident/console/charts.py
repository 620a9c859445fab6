"""The monthly review chart (domain.md §9): the 12-month line chart and this month's summary.

Why looked up at request time: ``incident.metrics.service`` (``monthly_chart_png(months) -> bytes`` and
``summary(month) -> dict``) is built separately; until it is there, or if it lacks a function, the page
says so instead of failing, and it picks the functions up as soon as they exist.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from incident.console import auth
from incident.console.render import page, secure, zone
from models import utcnow

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)
Months = Query(12, ge=1, le=36)
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def metrics_function(name: str) -> Callable[..., Any] | None:
    if importlib.util.find_spec("incident.metrics.service") is None:
        return None
    return getattr(importlib.import_module("incident.metrics.service"), name, None)


FIGURES = (
    ("incidents", "Incidents identified"),
    ("open", "Still open"),
    ("by_level", "By level"),
    ("by_category", "By category"),
    ("response_minutes_p50", "Response time, median (min)"),
    ("response_minutes_p90", "Response time, p90 (min)"),
    ("handling_hours_p50", "Handling time, median (h)"),
    ("handling_hours_p90", "Handling time, p90 (h)"),
    ("satisfaction", "Satisfaction (share of good surveys)"),
    ("recurrence_rate", "Recurrence rate"),
    ("missed_deadlines", "Missed deadlines"),
)


def _show(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "satisfaction" and isinstance(value, dict):
        share = value.get("share")
        return "—" if share is None else f"{share:.0%} of {value.get('surveys', 0)} surveys"
    if key == "missed_deadlines" and isinstance(value, dict):
        kinds = ", ".join(f"{k} {n}" for k, n in (value.get("by_kind") or {}).items())
        return f"{value.get('total', 0)}" + (f" ({kinds})" if kinds else "")
    if key == "recurrence_rate" and isinstance(value, int | float):
        return f"{value:.0%}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
    return str(value)


def figures(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The month's key numbers as label/value rows (the trend itself is the chart)."""
    return [(words, _show(key, summary[key])) for key, words in FIGURES if key in summary]


def recurring(rows: Any) -> list[dict[str, Any]]:
    """Top recurring problems, tolerant of fields the metrics module may not give."""
    return [
        {
            "problem": str(r.get("problem") or r.get("key") or "—"),
            "incidents": r.get("incidents", "—"),
            "incident_ids": [str(i) for i in r.get("incident_ids") or ()],
        }
        for r in rows or ()
        if isinstance(r, dict)
    ]


def this_month(month: str | None) -> str:
    if month and MONTH.fullmatch(month):
        return month
    return utcnow().astimezone(zone()).strftime("%Y-%m")


@router.get("/charts/monthly", response_class=HTMLResponse)
async def monthly(request: Request, months: int = Months, month: str | None = None) -> HTMLResponse:
    chart = metrics_function("monthly_chart_png")
    summarise = metrics_function("summary")
    month = this_month(month)
    data = await run_in_threadpool(summarise, month) if summarise else None
    return page(
        request,
        "chart.html.j2",
        months=months,
        month=month,
        has_chart=chart is not None,
        summary=figures(data) if data else None,
        recurring=recurring((data or {}).get("top_recurring")),
    )


@router.get("/charts/monthly.png", response_model=None)
async def monthly_png(request: Request, months: int = Months) -> Response:
    chart = metrics_function("monthly_chart_png")
    if chart is None:
        return page(
            request,
            "error.html.j2",
            status=404,
            heading="No chart yet",
            message="The monthly chart needs incident.metrics.service.monthly_chart_png, not installed.",
        )
    png = await run_in_threadpool(chart, months)
    return secure(Response(png, media_type="image/png", headers={"Cache-Control": "no-store"}))

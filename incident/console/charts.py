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
from incident.console.render import label, page, secure, t, zone
from incident.console.render import lang as console_lang
from models import utcnow

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)
Months = Query(12, ge=1, le=36)
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def metrics_function(name: str) -> Callable[..., Any] | None:
    if importlib.util.find_spec("incident.metrics.service") is None:
        return None
    return getattr(importlib.import_module("incident.metrics.service"), name, None)


FIGURES = (  # the summary's key → the console's word for it (playbooks/vocabulary.yaml)
    ("incidents", "fig_incidents"),
    ("open", "fig_open"),
    ("by_level", "fig_by_level"),
    ("by_category", "fig_by_category"),
    ("response_minutes_p50", "fig_response_p50"),
    ("response_minutes_p90", "fig_response_p90"),
    ("handling_hours_p50", "fig_handling_p50"),
    ("handling_hours_p90", "fig_handling_p90"),
    ("satisfaction", "fig_satisfaction"),
    ("recurrence_rate", "fig_recurrence"),
    ("missed_deadlines", "fig_missed"),
)
DOMAINS = {"by_level": "level_short", "by_category": "category", "missed_deadlines": "deadline"}


def _counts(key: str, value: dict[str, Any]) -> str:
    """{"1": 2, "3": 1} → "一级 2、三级 1": each code in the page's words."""
    domain = DOMAINS.get(key, "")
    return t("list_sep").join(f"{label(k, domain) if domain else k} {n}" for k, n in value.items()) or "—"


def _show(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "satisfaction" and isinstance(value, dict):
        share = value.get("share")
        surveys = value.get("surveys", 0)
        return "—" if share is None else t("share_of_surveys", share=f"{share:.0%}", n=surveys)
    if key == "missed_deadlines" and isinstance(value, dict):
        kinds = _counts(key, value.get("by_kind") or {}) if value.get("by_kind") else ""
        return f"{value.get('total', 0)}" + (t("in_parens", what=kinds) if kinds else "")
    if key == "recurrence_rate" and isinstance(value, int | float):
        return f"{value:.0%}"
    if isinstance(value, dict):
        return _counts(key, value)
    return str(value)


def figures(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The month's key numbers as label/value rows (the trend itself is the chart)."""
    return [(t(words), _show(key, summary[key])) for key, words in FIGURES if key in summary]


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


def _lang(asked: str | None) -> str:
    return asked if asked in ("zh", "en") else console_lang()


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
async def monthly_png(request: Request, months: int = Months, lang: str | None = None) -> Response:
    """The chart in the page's language (``?lang`` as the page asks; else the console's)."""
    chart = metrics_function("monthly_chart_png")
    if chart is None:
        return page(
            request,
            "error.html.j2",
            status=404,
            heading=t("no_chart"),
            message=t("chart_missing"),
        )
    png = await run_in_threadpool(chart, months, _lang(lang))
    return secure(Response(png, media_type="image/png", headers={"Cache-Control": "no-store"}))

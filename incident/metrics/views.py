"""HTTP routes of the monthly review (``/api/metrics``, its chart) and Prometheus' ``/metrics``.

All of them sit behind the API's bearer token (``create_app`` includes this router with it):
``/metrics`` counts incidents, levels and deliveries, which is business data, and Prometheus sends a
bearer token natively (``authorization: {credentials_file: …}`` in its scrape config).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from incident.api.schemas import MetricsOut, content, errors
from incident.metrics import prometheus
from incident.metrics import service as metrics

router = APIRouter()
# Checked by incident.metrics.service (422 with "month must look like 2026-11", like every other bad input).
MonthQuery = Annotated[str | None, Query(description="YYYY-MM", max_length=7)]


@router.get("/api/metrics", response_model=MetricsOut, response_model_exclude_unset=True, responses=errors())
async def review(month: MonthQuery = None) -> dict[str, Any]:
    """Response/handling time, satisfaction vs target, recurrence, misses, counts (one month or all)."""
    return await run_in_threadpool(metrics.summary, month)


PNG = errors(content(binary=("image/png",)))


@router.get("/api/metrics/chart.png", response_class=Response, responses=PNG)
async def chart(
    month: MonthQuery = None,
    months: Annotated[int, Query(ge=1, le=120)] = 12,
    lang: Literal["zh", "en"] | None = None,
) -> Response:
    """PNG line chart of the ``months`` months ending with ``month`` (default: this month); its words in
    ``lang`` (default INCIDENT_LANG)."""
    if month is not None:
        metrics.check_month(month)
    png = await run_in_threadpool(lambda: metrics.monthly_chart_png(months, lang, end=month))
    return Response(png, media_type="image/png")


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def scrape() -> Response:
    """Prometheus text exposition, derived from the database at scrape time."""
    return Response(await run_in_threadpool(prometheus.exposition), media_type=prometheus.CONTENT_TYPE)

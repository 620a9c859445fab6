"""``incident metrics``: the month's figures (domain.md §6), and its 12-month chart as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from incident.terminal import JsonOpt, call, download, emit, fail, out, write

app = typer.Typer()


def _metrics_human(d: dict[str, Any]) -> None:
    sat = d["satisfaction"]
    out.print(
        f"[bold]{d['month'] or 'all months'}[/]: {d['incidents']} incident(s), {d['open']} open; "
        f"by level {d['by_level']}; by category {d['by_category']}"
    )
    out.print(
        f"response p50 {d['response_minutes_p50']} min, p90 {d['response_minutes_p90']} min "
        f"({d['contacted']} contacted); handling p50 {d['handling_hours_p50']} h ({d['resolved']} resolved)"
    )
    table = Table("level", "surveys", "good (≥4)", "share", "target", "met")
    for level, row in sat["by_level"].items():
        table.add_row(
            level,
            str(row["surveys"]),
            str(row["good"]),
            str(row["share"]),
            str(row["target"]),
            str(row["met"]),
        )
    out.print(table)
    out.print(f"recurrence rate {d['recurrence_rate']}; missed deadlines {d['missed_deadlines']}")
    for row in d["top_recurring"]:
        out.print(f"  {row['incidents']}× {row['problem']}  ({', '.join(row['incident_ids'])})")
    if d.get("chart"):
        out.print(f"chart: {d['chart']}")


@app.command()
def metrics(
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: all incidents)")] = None,
    chart: Annotated[Path | None, typer.Option(help="write a PNG line chart of the last 12 months")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Response and handling time, satisfaction vs target, recurrence, missed deadlines, counts."""
    from incident.metrics.service import MONTH

    if month is not None and not MONTH.match(month):
        fail(f"--month must look like 2026-11, got {month!r}", as_json)
    params = {"month": month} if month else {}
    data = call(as_json, "GET", "/api/metrics", params=params)
    if chart is not None:
        response = download("/api/metrics/chart.png", {**params, "months": 12}, as_json)
        data["chart"] = write(chart, response.content)
    emit(data, as_json, _metrics_human)

"""``incident metrics``: the month's figures (domain.md §6), and its 12-month chart as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from incident import environ
from incident.terminal import Args, Group, call, download, emit, opt, say, table, text, word, write

commands = Group()
SATISFACTION = ("share", "target", "met")


def _counts(domain: str, counts: dict[str, int]) -> str:
    return "，".join(f"{word(domain, k)} {v}" for k, v in counts.items()) or "—"


def _metrics_human(d: dict[str, Any]) -> None:
    w = lambda key: word("field", key)  # noqa: E731
    say(
        f"{d['month'] or w('all_months')}: {w('incidents')} {d['incidents']}, {w('open')} {d['open']}; "
        f"{_counts('level_short', d['by_level'])}; {_counts('category', d['by_category'])}"
    )
    p50, p90 = text(d["response_minutes_p50"]), text(d["response_minutes_p90"])
    say(
        f"{w('response_minutes')} p50 {p50} / p90 {p90} ({w('contacted')} {d['contacted']}); "
        f"{w('handling_hours')} p50 {text(d['handling_hours_p50'])} ({w('resolved')} {d['resolved']})"
    )
    table(
        [w(h) for h in ("level", "surveys", "good", "share", "target", "met")],
        (
            (word("level_short", lv), r["surveys"], r["good"], *(text(r[k]) for k in SATISFACTION))
            for lv, r in d["satisfaction"]["by_level"].items()
        ),
    )
    missed = d["missed_deadlines"]
    say(f"{w('recurrence_rate')} {text(d['recurrence_rate'])}; {w('missed_deadlines')} {missed}")
    for row in d["top_recurring"]:
        say(f"  {row['incidents']}× {row['problem']}  ({', '.join(row['incident_ids'])})")
    if d.get("actions"):
        acts = d["actions"]
        counted = ", ".join(f"{w(k)} {acts[k]}" for k in ("open", "overdue", "done"))
        say(f"{w('actions')}: {counted}")
    if d.get("chart"):
        say(f"{w('chart')}: {d['chart']}")


@commands.command(
    "metrics",
    opt("--month", help="YYYY-MM (default: all incidents)"),
    opt("--chart", type=Path, help="write a PNG line chart of the last 12 months"),
)
def metrics(a: Args) -> None:
    """Response and handling time, satisfaction vs target, recurrence, missed deadlines, counts."""
    params = {"month": a.month} if a.month else {}
    data = call(a.json, "GET", "/api/metrics", params=params)
    if a.chart is not None:
        asked = {**params, "months": 12, "lang": environ.lang()}
        response = download("/api/metrics/chart.png", asked, a.json)
        data["chart"] = write(a.chart, response.content)
    emit(data, a.json, _metrics_human)

"""The monthly trend as a PNG line chart: incidents per month by level, and the response-time median.

Why ``Figure`` + ``FigureCanvasAgg`` and not ``pyplot``: pyplot keeps global state and picks a GUI
backend; the service draws charts from worker threads, so each chart gets its own figure on the Agg
(raster, headless) canvas and nothing is shared. Labels are English so no CJK font is needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

LEVEL_STYLE = {"1": ("L1 major", "#c0392b"), "2": ("L2 serious", "#e67e22"), "3": ("L3 general", "#2980b9")}


def render_png(rows: Sequence[dict[str, Any]]) -> bytes:
    """``rows`` as made by ``incident.metrics.service.trend``: one per month, oldest first."""
    months = [r["month"] for r in rows]
    x = list(range(len(months)))
    fig = Figure(figsize=(9, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for level, (label, color) in LEVEL_STYLE.items():
        ax.plot(x, [r["by_level"][level] for r in rows], marker="o", label=label, color=color)
    ax.plot(x, [r["incidents"] for r in rows], linestyle="--", color="#555", label="all incidents")
    ax.set_ylabel("incidents identified")
    ax.set_ylim(bottom=0, top=max([r["incidents"] for r in rows] + [1]) * 1.15)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xticks(x, months, rotation=45, ha="right")
    ax.grid(True, alpha=0.3)

    response = ax.twinx()
    values = [r["response_minutes_p50"] for r in rows]
    response.plot(
        [i for i, v in zip(x, values, strict=True) if v is not None],
        [v for v in values if v is not None],
        marker="s",
        linestyle=":",
        color="#27ae60",
        label="response p50 (min)",
    )
    response.set_ylabel("first contact p50, minutes")
    response.set_ylim(bottom=0, top=max([v for v in values if v is not None] + [1]) * 1.15)

    lines = ax.get_legend_handles_labels()
    extra = response.get_legend_handles_labels()
    ax.legend(lines[0] + extra[0], lines[1] + extra[1], loc="upper left", fontsize=8, ncols=3)
    first, last = (months[0], months[-1]) if months else ("", "")
    ax.set_title(f"Incidents per month by level, {first} – {last}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()

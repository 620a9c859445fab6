"""The monthly trend as a PNG line chart: incidents per month by level, and the response-time median.

Why ``Figure`` + ``FigureCanvasAgg`` and not ``pyplot``: pyplot keeps global state and picks a GUI
backend; the service draws charts from worker threads, so each chart gets its own figure on the Agg
(raster, headless) canvas and nothing is shared. The words are the vocabulary's ``chart`` phrases in
the reader's language; Chinese needs a CJK font (``incident.reviews.charts.cjk_font``: Debian's
``fonts-noto-cjk``, as the PDFs), and without one the chart falls back to English rather than boxes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from playbooks import vocabulary

LEVEL_COLORS = {"1": "#c0392b", "2": "#e67e22", "3": "#2980b9"}


def _words(lang: str) -> tuple[str, str | None]:
    """The language the chart can be drawn in, and the font family its Chinese needs."""
    from incident.reviews.charts import cjk_font

    family = cjk_font() if lang == "zh" else None
    return ("zh", family) if family else ("en", None)


def render_png(rows: Sequence[dict[str, Any]], lang: str = "en") -> bytes:
    """``rows`` as made by ``incident.metrics.service.trend``: one per month, oldest first."""
    lang, family = _words(lang)

    def w(key: str, **values: object) -> str:
        return vocabulary.phrase("chart", key, lang, **values)

    months = [r["month"] for r in rows]
    x = list(range(len(months)))
    fig = Figure(figsize=(9, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for level, color in LEVEL_COLORS.items():
        ax.plot(x, [r["by_level"][level] for r in rows], marker="o", label=w(f"level_{level}"), color=color)
    ax.plot(x, [r["incidents"] for r in rows], linestyle="--", color="#555", label=w("all"))
    ax.set_ylabel(w("incidents"), fontfamily=family)
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
        label=w("response"),
    )
    response.set_ylabel(w("response_axis"), fontfamily=family)
    response.set_ylim(bottom=0, top=max([v for v in values if v is not None] + [1]) * 1.15)

    lines = ax.get_legend_handles_labels()
    extra = response.get_legend_handles_labels()
    prop = {"family": family, "size": 8} if family else {"size": 8}
    ax.legend(lines[0] + extra[0], lines[1] + extra[1], loc="upper left", ncols=3, prop=prop)
    first, last = (months[0], months[-1]) if months else ("", "")
    ax.set_title(w("title", first=first, last=last), fontfamily=family)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()

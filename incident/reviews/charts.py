"""The review's three charts as PNGs: the 12-month trend by category, time against the limits, and
satisfaction against target.

Why ``Figure`` + ``FigureCanvasAgg`` (as ``incident.metrics.chart``): no pyplot global state, safe in
the service's worker threads. Chinese labels need a CJK font: the first of ``CJK_FONTS`` that
matplotlib's font manager knows (or finds among the system's font files, when its cache is older than
the font) is used (Debian's ``fonts-noto-cjk`` or ``fonts-wqy-microhei``, the same the PDFs use); with
none, the charts fall back to English labels rather than drawing boxes.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from playbooks import vocabulary

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Serif CJK SC",
)
COLORS = {"product_quality": "#c0392b", "service_failure": "#2980b9", "special_scenario": "#8e44ad"}
TEXT = {
    "trend": {"zh": "近12个月各类事件数量", "en": "Incidents per month by category, last 12 months"},
    "count": {"zh": "事件数", "en": "incidents"},
    "times": {
        "zh": "各等级响应与处理时间（中位数）对比时限",
        "en": "Response and handling time by level vs limits",
    },
    "response": {"zh": "首次联系（分钟）", "en": "first contact (min)"},
    "limit": {"zh": "首次联系时限（分钟）", "en": "contact limit (min)"},
    "handling": {"zh": "处理时间（小时）", "en": "handling (h)"},
    "satisfaction": {"zh": "各等级满意度对比目标", "en": "Satisfaction by level vs target"},
    "share": {"zh": "满意度", "en": "satisfied share"},
    "target": {"zh": "目标", "en": "target"},
}


CJK_FILES = ("notosanscjk", "notoserifcjk", "notosanssc", "wqy")  # their file names, lower case


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first CJK family matplotlib knows; its font cache may predate the font's install (it is
    built once, e.g. before ``apt-get install fonts-noto-cjk``), so the system's CJK files are added
    to it when none is known yet (matplotlib registers every face of a ``.ttc``)."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    if not any(n in names for n in CJK_FONTS):
        for path in font_manager.findSystemFonts():
            if any(key in Path(path).name.lower() for key in CJK_FILES):
                font_manager.fontManager.addfont(path)
        names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in CJK_FONTS if n in names), None)


def _lang(lang: str) -> str:
    return lang if lang == "en" or cjk_font() else "en"


def _figure(lang: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(8, 3.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if lang == "zh":
        for text_font in (ax.title, ax.xaxis.label, ax.yaxis.label):
            text_font.set_fontfamily(cjk_font())
    return fig, ax


def _png(fig: Figure, ax: Any, lang: str, where: str = "best") -> bytes:
    family = cjk_font() if lang == "zh" else None
    # markerscale: the limit and target markers are wide bars on the plot, short ones in the legend
    legend = ax.legend(
        fontsize=8, prop={"family": family, "size": 8} if family else None, loc=where, markerscale=0.3
    )
    legend.set_visible(bool(ax.get_legend_handles_labels()[0]))
    for tick in ax.get_xticklabels():
        if family:
            tick.set_fontfamily(family)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def trend_png(rows: list[dict[str, Any]], lang: str = "zh") -> bytes:
    """``rows``: ``service.category_trend``, oldest first; one line per category."""
    lang = _lang(lang)
    fig, ax = _figure(lang)
    x = list(range(len(rows)))
    for cat, color in COLORS.items():
        label = vocabulary.label("category", cat, lang)
        ax.plot(x, [r["by_category"][cat] for r in rows], marker="o", color=color, label=label)
    ax.set_xticks(x, [r["month"] for r in rows], rotation=45, ha="right")
    ax.set_ylim(bottom=0, top=max([max(r["by_category"].values()) for r in rows] + [1]) * 1.2)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(TEXT["count"][lang])
    ax.set_title(TEXT["trend"][lang])
    return _png(fig, ax, lang)


def _levels(lang: str) -> list[str]:
    return [vocabulary.label("level_short", lv, lang) for lv in (1, 2, 3)]


def times_png(data: dict[str, Any], lang: str = "zh") -> bytes:
    """Bars: first-contact median and handling median per level; markers: each level's contact limit."""
    lang = _lang(lang)
    fig, ax = _figure(lang)
    x = [0, 1, 2]
    levels = ("1", "2", "3")
    response = [data["by_level_times"][lv]["response_minutes_p50"] or 0 for lv in levels]
    handling = [data["by_level_times"][lv]["handling_hours_p50"] or 0 for lv in levels]
    ax.bar([i - 0.2 for i in x], response, width=0.4, color="#27ae60", label=TEXT["response"][lang])
    ax.bar([i + 0.2 for i in x], handling, width=0.4, color="#e67e22", label=TEXT["handling"][lang])
    limit = [data["limits"][lv]["contact_minutes"] for lv in levels]
    ax.plot([i - 0.2 for i in x], limit, "k_", markersize=30, mew=2, label=TEXT["limit"][lang])
    ax.set_xticks(x, _levels(lang))
    ax.set_title(TEXT["times"][lang])
    return _png(fig, ax, lang, "upper left")  # level 1's bars are the shortest: the legend fits there


def satisfaction_png(data: dict[str, Any], lang: str = "zh") -> bytes:
    """Bars: each level's satisfied share; markers: its target."""
    lang = _lang(lang)
    fig, ax = _figure(lang)
    by_level = data["satisfaction"]["by_level"]
    levels = ("1", "2", "3")
    shares = [by_level[lv]["share"] or 0 for lv in levels]
    colors = ["#27ae60" if by_level[lv]["met"] else "#c0392b" for lv in levels]
    ax.bar([0, 1, 2], shares, width=0.5, color=colors, label=TEXT["share"][lang])
    targets = [data["limits"][lv]["satisfaction_target"] for lv in levels]
    ax.plot([0, 1, 2], targets, "k_", markersize=40, mew=2, label=TEXT["target"][lang])
    ax.set_ylim(0, 1.05)
    ax.set_xticks([0, 1, 2], _levels(lang))
    ax.set_title(TEXT["satisfaction"][lang])
    return _png(fig, ax, lang)

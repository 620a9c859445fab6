"""A review as Markdown, HTML or PDF, in Chinese (default) or English.

Why the records' machinery: the same rules hold as for the seven records (``incident.records.
documents.render``): Markdown from a sandboxed template per language, every value escaped by the
environment's ``finalize`` (a recurring problem's label carries customer text: a batch, a region),
HTML = that Markdown converted and wrapped in the records' print page, PDF = that HTML through
WeasyPrint with the records' stylesheet. The charts are PNGs embedded as ``data:`` URIs, so each
document is one self-contained file (a mail attachment, a wiki upload) and says the same in every format.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import markdown
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from incident import environ
from incident.metrics import service as metrics
from incident.records.documents.render import _escaped, _markdown, _page_environment
from incident.reviews import charts, findings
from models import utcnow
from playbooks import vocabulary

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = ("md", "html", "pdf")
LANGS = ("zh", "en")
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


def _finalize(for_html: bool) -> Any:
    escape = _escaped if for_html else _markdown

    def finalize(value: object) -> str:
        return str(value) if isinstance(value, Markup) else escape(value)  # Markup: our own images

    return finalize


def _image(png: bytes, alt: str) -> Markup:
    return Markup(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})")


@lru_cache(maxsize=4)
def _environment(for_html: bool, lang: str) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False,
        finalize=_finalize(for_html),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pct=lambda v: Markup("—" if v is None else f"{v:.0%}"),  # our own numbers: nothing to escape
        num=lambda v: Markup("—" if v is None else f"{v:g}"),
        cat=lambda c: vocabulary.label("category", c, lang),
        lvl=lambda lv: vocabulary.label("level_short", int(lv), lang),
        deadline=lambda k: vocabulary.label("deadline", k, lang),
        met=lambda v: "—" if v is None else vocabulary.label("bool", bool(v), lang),
        problem=lambda key: metrics.problem_label(key, lang),  # customers' words: escaped by finalize
    )
    env.globals["LEVELS"] = ("1", "2", "3")
    return env


Chart = Callable[[str, bytes], Markup]  # (name, PNG) → the Markdown that shows it


def inline_chart(name: str, png: bytes) -> Markup:
    """The chart inside the document (a ``data:`` URI): one self-contained file."""
    return _image(png, name)


def markdown_text(
    data: dict[str, Any],
    lang: str,
    *,
    for_html: bool = False,
    now: datetime | None = None,
    chart: Chart = inline_chart,
) -> str:
    """The review's Markdown (``for_html``: escaped for the HTML conversion instead; ``chart``: how a
    chart is shown, e.g. as a file beside the page for a knowledge base that takes no ``data:`` image)."""
    period = data["period"]
    context = {
        "d": data,
        "changes": [findings.sentence(c, lang, period) for c in data["changes"]],
        "process": [findings.sentence(f, lang, period) for f in data.get("findings", [])],
        "charts": {
            "trend": chart("trend", charts.trend_png(data["trend"], lang)),
            "times": chart("times", charts.times_png(data, lang)),
            "satisfaction": chart("satisfaction", charts.satisfaction_png(data, lang)),
        },
        "generated": context_time(now),
    }
    return _environment(for_html, lang).get_template(f"review.{lang}.md.j2").render(context)


def title(data: dict[str, Any], lang: str) -> str:
    if lang == "en":
        return f"{'Monthly' if data['period'] == 'month' else 'Quarterly'} review {data['name']}"
    return f"{data['name']} {'月度' if data['period'] == 'month' else '季度'}复盘报告"


def document(data: dict[str, Any], lang: str = "zh", fmt: str = "md", now: datetime | None = None) -> bytes:
    """The review as the bytes of one file."""
    if lang not in LANGS or fmt not in FORMATS:
        raise ValueError(f"unknown language or format: {lang!r}, {fmt!r}")
    if fmt == "md":
        return markdown_text(data, lang, now=now).encode("utf-8")
    body = markdown.markdown(
        markdown_text(data, lang, for_html=True, now=now), extensions=["tables", "sane_lists"]
    )
    page = (
        _page_environment()
        .get_template("page.html.j2")
        .render(
            lang="en" if lang == "en" else "zh-CN",
            title=title(data, lang),
            body=Markup(body),  # safe: every value in it was escaped before the conversion
            generated=context_time(now),
        )
    )
    if fmt == "html":
        return page.encode("utf-8")
    from incident.records.service import to_pdf

    return to_pdf(page.replace("<img ", '<img style="max-width:100%" '))


def context_time(now: datetime | None) -> str:
    return environ.stamp(now or utcnow(), metrics.zone())

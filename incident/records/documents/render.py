"""Render the seven records (domain.md §7) of a dossier as Markdown or HTML, in Chinese or English.

Why this shape:

* One Markdown template per record kind and language (``templates/{kind}.{lang}.md.j2``); HTML is
  that Markdown converted by the ``markdown`` package and wrapped in a print-friendly page, so the
  two formats can never say different things.
* Customer text is data, never template source: templates are loaded only from the package folder,
  in a ``SandboxedEnvironment``, and values are only ever interpolated.
* Every interpolated value (customer text above all) is escaped by the environment's ``finalize``,
  in both formats, so no template can forget it: HTML specials become entities (``<script>`` →
  ``&lt;script&gt;``), Markdown specials are backslash-escaped (``*``, ``_``, backticks, ``[``,
  ``#``, ``|`` …; ``~`` as an entity; a leading ``-``, ``+`` or ``1.``), line breaks are folded. A downloaded
  ``.md`` is opened by people in any Markdown viewer (GitHub, a wiki, an editor's preview), most of
  which pass raw HTML through; escaped, it shows the customer's text exactly as written and can
  neither inject markup or links nor break a table or the document's headings. Entities, not
  ``\<``, for HTML specials: Python-Markdown does not honour a backslash before ``<``.
* Markdown → HTML then converts a text in which nothing of a value is markup any more.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

import markdown
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from incident import environ, settings
from incident.incidents import timeline as events
from incident.records.documents import i18n
from incident.records.documents.analysis import AREAS
from incident.records.documents.snapshot import Dossier, Finding, Improvement, Label
from models.record import RECORD_KINDS

__all__ = ["FORMATS", "LANGS", "RECORD_KINDS", "available", "postmortem_due_at", "render", "title"]

TEMPLATES = Path(__file__).parent / "templates"
LANGS = i18n.LANGS
FORMATS = ("md", "html")
DASH = "—"

_MD_SPECIAL = re.compile(r"([\\`*_\[\]#!|])")  # < > & ~ become entities (_entities)
_LINE_START = re.compile(r"^(\s*)([-+]|\d+\.)")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")


def postmortem_due_at(dossier: Dossier) -> datetime | None:
    """Resolution + the level's ``postmortem_due`` (24/48/72 h); None until resolved."""
    if dossier.resolved_at is None:
        return None
    return dossier.resolved_at + dossier.rules.postmortem_due


def available(kind: str, dossier: Dossier) -> bool:
    """Whether the record has its facts yet (render works anyway, showing what is missing)."""
    _check(kind, "zh", "md")
    if kind in ("level_determination", "customer_issue"):
        return True
    if kind == "cause_analysis":
        return dossier.cause is not None
    if kind == "solution_approval":
        return bool(dossier.solutions)
    if kind == "resolution_confirmation":
        return bool(dossier.confirmations)
    return dossier.resolved_at is not None  # postmortem, improvement_measures


def title(kind: str, lang: str = "zh") -> str:
    """The record's name, in the guide's words for Chinese (e.g. 《复盘报告》)."""
    return i18n.label("record", kind, lang)


def render(kind: str, dossier: Dossier, *, lang: str = "zh", fmt: str = "md", tz: str | None = None) -> str:
    """One record as text; times are shown in ``tz`` (else ``INCIDENT_TZ``, else the machine's zone)."""
    _check(kind, lang, fmt)
    zone = tz or settings.get().tz or ""
    env = _environment(lang, fmt == "html", zone)
    body = env.get_template(f"{kind}.{lang}.md.j2").render(_context(kind, dossier, lang))
    if fmt == "md":
        return body
    converted = markdown.markdown(body, extensions=["tables", "sane_lists"], output_format="html")
    page = _page_environment().get_template("page.html.j2")
    return page.render(
        lang="en" if lang == "en" else "zh-CN",
        title=f"{title(kind, lang)} · {dossier.incident_id}",
        body=Markup(converted),  # safe: every value in it was escaped before the conversion
        generated=_fmt_time(dossier.generated_at, _zone(zone)),
    )


def _check(kind: str, lang: str, fmt: str) -> None:
    if kind not in RECORD_KINDS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _context(kind: str, d: Dossier, lang: str) -> dict[str, Any]:
    """Presentation-only groupings; every judgement is already in the dossier."""
    by_area = [(area, [i for i in d.improvements if i.area == area]) for area in AREAS]
    overview = [
        Finding(
            "overview",
            (
                ("category", d.category_label),
                ("summary", d.summary),
                ("customers", d.customers),
                ("level", d.level),
            ),
        )
    ]
    if d.scope.products:
        overview.append(Finding("overview_products", (("products", d.scope.products),)))
    places = (*d.scope.services, *d.scope.regions, *d.scope.outside_causes)
    if places:
        overview.append(Finding("overview_services", (("services", places),)))
    return {
        "d": d,
        "rules": d.rules,
        "kind": kind,
        "lang": lang,
        "title": title(kind, lang),
        "due": postmortem_due_at(d),
        "overview": overview,
        "improvements_by_area": by_area,
        "cause": d.cause,
        "approved": d.approved_solution,
    }


# --- environments -----------------------------------------------------------------------------


def _zone(name: str) -> tzinfo:
    """The named zone; "" is the machine's own (INCIDENT_TZ unset)."""
    return environ.named_zone(name or None)


def _fmt_time(value: datetime | None, zone: tzinfo) -> str:
    """ "2026-11-24 10:00 +08:00": local time with its offset, as every page and notice shows times."""
    if value is None:
        return DASH
    return environ.stamp(value, zone)


def _fmt_minutes(value: int | float | timedelta | None, lang: str) -> str:
    if value is None:
        return DASH
    minutes = round(value.total_seconds() / 60) if isinstance(value, timedelta) else round(value)
    sign, minutes = ("-" if minutes < 0 else ""), abs(minutes)
    # Up to 72 h in hours (the guide's own unit: 24/48/72 h), longer spans in days.
    days, rest = divmod(minutes, 1440) if minutes > 72 * 60 else (0, minutes)
    hours, mins = divmod(rest, 60)
    units = ((days, " 天", " d"), (hours, " 小时", " h"), (mins, " 分钟", " min"))
    parts = [f"{n}{en if lang == 'en' else zh}" for n, zh, en in units if n]
    return sign + (" ".join(parts) if parts else ("0 min" if lang == "en" else "0 分钟"))


def _md_literal(value: object) -> str:
    """A value as Markdown text that renders as exactly these characters (HTML specials left as is)."""
    text = _NEWLINES.sub(" ", DASH if value is None or value == "" else str(value))
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m[1] + "\\" + m[2] if len(m[2]) == 1 else m[1] + m[2][:-1] + "\\.", text)


def _entities(text: str, quote: bool) -> str:
    """HTML specials as entities; ``~`` too: GFM strikes ``~~x~~`` through, and Python-Markdown
    (our HTML) does not honour ``\\~``, while an entity is literal text for both."""
    return html.escape(text, quote=quote).replace("~", "&#126;")


def _markdown(value: object) -> str:
    """Markdown output: nothing in a value can become HTML, a link, emphasis, a heading or a cell."""
    return _entities(_md_literal(value), quote=False)


def _escaped(value: object) -> str:
    """HTML output (via Markdown): as ``_markdown``, quotes too (the text may end up in attributes)."""
    return _entities(_md_literal(value), quote=True)


def _filters(lang: str, zone: tzinfo) -> dict[str, Callable[..., Any]]:
    def lbl(code: object, domain: str) -> str:
        return i18n.label(domain, code, lang) or DASH

    def loc(value: Label | None) -> str:
        return value(lang) if value else DASH

    def roles(codes: Iterable[str] | str | None) -> str:
        return i18n.roles(codes, lang) or DASH

    def join(values: Iterable[object] | None) -> str:
        sep = ", " if lang == "en" else "、"
        items = [str(v) for v in values or () if v not in (None, "")]
        return sep.join(items) or DASH

    def pct(value: float | None) -> str:
        return DASH if value is None else f"{value:.0%}"

    def param(name: str, value: Any) -> str:
        if isinstance(value, Label):
            return value(lang)
        if value is None or value == "":
            return DASH if name != "to" else ("unrecorded" if lang == "en" else "未记录")
        if name.endswith("_min"):
            return _fmt_minutes(value, lang)
        if name.endswith("_at"):
            return _fmt_time(value, zone)
        if name in ("share", "target"):
            return pct(value)
        if name in ("role", "to"):
            return roles(value)
        if name == "kind":
            return i18n.label("deadline", value, lang)
        if name == "result":
            return i18n.label("result", value, lang)
        if name == "level":
            return i18n.label("level", value, lang)
        if isinstance(value, tuple | list):
            return join(value)
        return str(value)

    def msg(item: Finding | Improvement) -> str:
        return i18n.message(item.code, item.kw, lang, param)

    def who(value: str | None) -> str:
        """Who did it: names as typed; 系统, 客户, a role after a name … in words (``timeline.who``)."""
        return "、".join(events.who(part, lang) for part in (value or "").split("、")) or DASH

    def people(values: Iterable[str] | None) -> str:
        return join(who(v) for v in values or ())

    return {
        "dt": lambda v: _fmt_time(v, zone),
        "dur": lambda v: _fmt_minutes(v, lang),
        "lbl": lbl,
        "loc": loc,
        "roles": roles,
        "join": join,
        "pct": pct,
        "msg": msg,
        "who": who,
        "people": people,
        "yn": lambda v: i18n.label("bool", bool(v), lang),
    }


@lru_cache(maxsize=16)
def _environment(lang: str, for_html: bool, zone: str) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False,  # Markdown is not HTML: finalize escapes every value for its format
        finalize=_escaped if for_html else _markdown,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(_filters(lang, _zone(zone)))
    return env


@lru_cache(maxsize=1)
def _page_environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined
    )

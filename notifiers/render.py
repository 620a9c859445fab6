"""Turn (kind, context, lang) into a notice: one-line title, plain-text body, HTML body.

Why a sandbox and two environments: templates are edited by people and customer text is
untrusted. Customer text only ever enters as template *data* (never as template source), so
``{{ 7*7 }}`` in a summary is printed literally; the HTML environment autoescapes, so
``<script>`` becomes ``&lt;script&gt;``. Contact details are masked again here even though
callers are expected to pass masked text already.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from incident import settings
from incident.feedback.privacy import mask_text
from playbooks.vocabulary import label, progress_line, reason

NOTICE_KINDS: tuple[str, ...] = (
    "incident_opened",
    "level_raised",
    "stage_changed",
    "deadline_warning",
    "deadline_missed",
    "approval_requested",
    "approval_decided",
    "progress_due",
    "resolved",
    "survey_below_target",
    "postmortem_due",
    "postmortem_overdue",
    "action_due",
    "action_overdue",
    "deadlines_summary",
    "feedback_routed",
    "review_ready",
)

# Messages to a customer themselves (notifiers/customers.py): not masked, not to roles.
CUSTOMER_KINDS: tuple[str, ...] = ("customer_update",)

TEMPLATES = Path(__file__).parent / "templates"

# Every key a caller may pass; missing ones are None so templates can test them plainly.
CONTEXT_KEYS = (
    "incident_id", "level", "category", "category_label", "summary", "customers", "status",
    "stage", "deadline_kind", "due_at", "minutes_left", "old_level", "new_level", "reasons",
    "solution", "solution_label", "approved", "decided_by", "reason", "approver_role", "score",
    "target", "round", "action", "escalated_from", "prefect_url", "console_url", "recurrence_of",
    "action_id", "action_owner", "action_kind", "action_text",
    "escalation_step", "repeat", "ack_command", "ack_url", "missed", "clock",
    "feedback_id", "feedback_kind", "routed_to",
    "review", "review_path", "review_lines", "contact_progress", "due_count",
)  # fmt: skip
# Free text that may come from customers or staff: masked before it reaches a template.
FREE_TEXT = (
    "summary", "reason", "action", "decided_by", "category_label", "solution_label", "stage",
    "status", "action_owner", "action_text",
)  # fmt: skip


@dataclass(frozen=True)
class Rendered:
    """A rendered notice: ``title`` is one line, ``text`` plain text, ``html`` an HTML fragment."""

    title: str
    text: str
    html: str


def normalize_lang(lang: str | None) -> str:
    """'en', 'en-US' → 'en'; anything else (and None → INCIDENT_LANG) → 'zh'."""
    value = (lang or settings.get().lang or "zh").strip().lower()
    return "en" if value.startswith("en") else "zh"


def as_utc(value: object) -> datetime | None:
    """Aware UTC datetime from a datetime or ISO string; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _local(value: object) -> str:
    """A due time where the team reads it (INCIDENT_TZ, else the machine's zone), its offset shown."""
    when = as_utc(value)
    return settings.local_time(when, empty="") if when else ""


def _dur(minutes: object, lang: str = "zh") -> str:
    """30 → '30 分钟' / '30 min'; 90 → '1 小时 30 分钟' / '1 h 30 min'."""
    total = abs(int(minutes))  # type: ignore[call-overload]
    hours, mins = divmod(total, 60)
    h, m = ("小时", "分钟") if lang == "zh" else ("h", "min")
    parts = ([f"{hours} {h}"] if hours else []) + ([f"{mins} {m}"] if mins or not hours else [])
    return " ".join(parts)


def _left(minutes: object, lang: str = "zh") -> str:
    """Minutes left before a deadline, or how long it is overdue."""
    value = int(minutes)  # type: ignore[call-overload]
    if lang == "zh":
        return f"剩余 {_dur(value, lang)}" if value >= 0 else f"已超时 {_dur(value, lang)}"
    return f"{_dur(value, lang)} left" if value >= 0 else f"{_dur(value, lang)} overdue"


def _pct(value: object) -> str:
    """A share (0.9) as '90%'; a score on the 1-5 scale stays as it is."""
    number = float(value)  # type: ignore[arg-type]
    return f"{number * 100:.0f}%" if number <= 1 else f"{number:g}"


def _safe_url(value: object) -> str | None:
    """Only http(s) links are shown as links (no javascript: in an HTML notice)."""
    text = str(value or "").strip()
    return text if re.match(r"^https?://[^\s<>\"']+$", text) else None


def _env(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(local=_local, utc=_local, dur=_dur, left=_left, pct=_pct)  # utc: the old name
    return env


_TEXT_ENV = _env(autoescape=False)
_HTML_ENV = _env(autoescape=True)


# The deadline a notice is about when the caller does not say.
_DEFAULT_DEADLINE = {
    "incident_opened": "contact",
    "approval_requested": "approval",
    "progress_due": "progress",
    "postmortem_due": "postmortem",
    "postmortem_overdue": "postmortem",
    "action_due": "action",
    "action_overdue": "action",
}


def _playbook(category: object) -> Any:
    """The category's playbook, or None when it cannot be read (a notice must still go out)."""
    try:
        import playbooks

        return playbooks.get(str(category))
    except Exception:
        return None


def _minutes(value: Any) -> int | None:
    return int(value.total_seconds() // 60) if value is not None else None


def _int(value: object) -> int | None:
    return int(value) if value is not None and value != "" else None  # type: ignore[call-overload]


# Domain defaults (domain.md §4), used only when the playbook cannot be read.
CONTACT_MINUTES = {1: 30, 2: 60, 3: 120}
POSTMORTEM_HOURS = {1: 24, 2: 48, 3: 72}
SATISFACTION_TARGET = {1: 0.90, 2: 0.85, 3: 0.80}


def _inline(words: str, lang: str) -> str:
    """A vocabulary word as it reads mid-sentence in English ("moved to follow-up"; "PR group" stays)."""
    if lang == "en" and len(words) > 1 and words[1].islower():
        return words[0].lower() + words[1:]
    return words


def _deadline(kind: str | None, lang: str) -> str | None:
    """The deadline a notice names: the vocabulary's kind and 时限 / deadline."""
    if not kind:
        return None
    words = label("deadline", kind, lang)
    return f"{words}时限" if lang == "zh" else f"{_inline(words, lang)} deadline"


def _missed(item: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A summary's line: a deadline and its due time, or the customers' first contacts as one figure."""
    if item.get("progress"):
        return {"label": progress_line(item["progress"], lang), "due_at": None}
    return {"label": _deadline(str(item.get("kind")), lang), "due_at": as_utc(item.get("due_at"))}


def _progress(progress: Mapping[str, int] | None, lang: str) -> str | None:
    """``首次联系：已联系 37/120，5 个超时`` when more than one customer is owed a first contact."""
    if not progress or int(progress.get("customers", 0)) < 2:
        return None
    return progress_line(progress, lang)


def build_context(kind: str, context: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """Caller's context, masked and completed with labels, defaults and formatted times."""
    ctx: dict[str, Any] = {key: None for key in CONTEXT_KEYS}
    ctx.update(context)
    for key in FREE_TEXT:
        if ctx[key] is not None:
            ctx[key] = mask_text(str(ctx[key]))
    ctx["reasons"] = [mask_text(reason(r, lang)) for r in (ctx["reasons"] or [])]  # grading's codes in words
    level, old, new = _int(ctx["level"]), _int(ctx["old_level"]), _int(ctx["new_level"])
    new = new or level
    book = _playbook(ctx["category"])
    rules = book.levels.get(level) if book and level else None
    option = book.solutions.get(str(ctx["solution"])) if book and ctx["solution"] else None
    deadline_kind = ctx["deadline_kind"] or _DEFAULT_DEADLINE.get(kind)
    ctx.update(
        kind=kind,
        lang=lang,
        level=level,
        old_level=old,
        new_level=new,
        level_label=label("level", level, lang),
        level_short=label("level_short", level, lang),
        old_level_label=label("level_short", old, lang) if old else None,
        new_level_label=label("level_short", new, lang),
        category_label=ctx["category_label"] or label("category", ctx["category"], lang),
        solution_label=ctx["solution_label"] or (option.label(lang) if option else None),
        legal_review=bool(option and option.legal_review),
        stage_label=_inline(label("status", ctx["stage"], lang), lang),
        status_label=_inline(label("status", ctx["status"], lang), lang),
        deadline_kind=deadline_kind,
        deadline_label=_deadline(deadline_kind, lang),
        approver_role=ctx["approver_role"] or (rules.approver if rules else None),
        escalated_label=_inline(label("role", ctx["escalated_from"], lang), lang),
        due_at=as_utc(ctx["due_at"]),
        prefect_url=_safe_url(ctx["prefect_url"]),
        console_url=_safe_url(ctx["console_url"]),
        ack_url=_safe_url(ctx["ack_url"]),
        missed=[_missed(m, lang) for m in ctx["missed"] or []],
        # each customer's own first contact, once a storm has more than one customer to contact
        contact_progress=_progress(ctx["contact_progress"], lang),
        response_start=rules.response_start(lang) if rules else None,
        contact_within=_minutes(rules.contact_within) if rules else CONTACT_MINUTES.get(level or 0),
        postmortem_within=_minutes(rules.postmortem_due)
        if rules
        else 60 * POSTMORTEM_HOURS.get(level or 0, 0) or None,
        progress_every=_minutes(rules.progress_every) if rules else None,
    )
    if ctx["clock"] is None and rules and deadline_kind:  # a due time says when it counts working hours
        ctx["clock"] = rules.clock_of(deadline_kind)
    ctx["approver_label"] = _inline(label("role", ctx["approver_role"], lang), lang)
    ctx["feedback_kind_label"] = _inline(label("feedback_kind", ctx["feedback_kind"], lang), lang)
    ctx["routed_label"] = _inline(label("role", ctx["routed_to"], lang), lang)
    if ctx["minutes_left"] is None and ctx["due_at"] is not None:
        seconds = (ctx["due_at"] - datetime.now(UTC)).total_seconds()
        ctx["minutes_left"] = math.floor(seconds / 60)
    if ctx["target"] is None:
        ctx["target"] = rules.satisfaction_target if rules else SATISFACTION_TARGET.get(level or 0)
    return ctx


def _block(template: Template, name: str, ctx: dict[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(ctx)))


def _tidy(text: str) -> str:
    """Strip trailing spaces, keep at most one blank line in a row."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _rendered(name: str, ctx: dict[str, Any]) -> Rendered:
    """The template's ``title`` and ``body`` blocks: plain text, and an autoescaped HTML fragment."""
    text_tmpl = _TEXT_ENV.get_template(name)
    title = " ".join(_block(text_tmpl, "title", {**ctx, "html": False}).split())
    text = _tidy(_block(text_tmpl, "body", {**ctx, "html": False}))
    html_body = _tidy(_block(_HTML_ENV.get_template(name), "body", {**ctx, "html": True}))
    html = (
        f'<div style="font-family:sans-serif;line-height:1.5">'
        f"<p><strong>{escape(title)}</strong></p>\n" + "<br>\n".join(html_body.splitlines()) + "</div>"
    )
    return Rendered(title=title, text=text, html=html)


def render(kind: str, context: Mapping[str, Any], lang: str | None = None) -> Rendered:
    """Render the ``{kind}.{lang}.j2`` template's ``title`` and ``body`` blocks."""
    if kind not in NOTICE_KINDS:
        raise ValueError(f"unknown notice kind {kind!r}; expected one of {', '.join(NOTICE_KINDS)}")
    lang = normalize_lang(lang)
    ctx = build_context(kind, context, lang)
    return _rendered(f"{kind}.{lang}.j2", ctx)


def render_for_customer(kind: str, context: Mapping[str, Any], lang: str | None = None) -> Rendered:
    """A message to a customer about their own report (``customer_update``): rendered in the same
    sandboxes (their text is data, escaped in HTML) but *not* masked, because it shows the customer
    only what is theirs; staff's copies and the delivery log never hold it."""
    if kind not in CUSTOMER_KINDS:
        raise ValueError(f"unknown customer message {kind!r}; expected one of {', '.join(CUSTOMER_KINDS)}")
    lang = normalize_lang(lang)
    ctx = {"customer": None, "feedback_id": None, "update": "", "category_label": None, **context}
    ctx.update(kind=kind, lang=lang)
    return _rendered(f"{kind}.{lang}.j2", ctx)

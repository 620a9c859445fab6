"""The incident timeline: every event with when, what and who — the backbone of the post-mortem — and
its words in Chinese or English (``who``, ``words``).

An act or refusal (``ACTS``, ``REFUSALS``) written while a request is handled also records where it came
from (its channel and the client's address, ``incident/people/via.py``); it is then that request's line
in the audit (``incident/people/audit.py`` reads them from here), so the audit cannot disagree with the
incident's own history.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

import playbooks
from incident.people import via
from models import TimelineEvent, utcnow
from playbooks import vocabulary

EVENTS = (
    "identified",
    "owner_assigned",
    "feedback_joined",
    "ticket_updated",
    "media_exposure",  # a negative media item the public-opinion monitor found (its link)
    "level_raised",
    "stage_entered",
    "contacted",
    "measure_taken",
    "cause_recorded",
    "solution_proposed",
    "solution_approved",
    "solution_rejected",
    "approval_refused",
    "action_refused",
    "resume_refused",
    "confirmed",
    "survey_recorded",
    "follow_up_round",
    "deadline_warned",
    "deadline_missed",
    "deadline_paused",  # waiting on the customer (the playbook's pause_while)
    "deadline_resumed",
    "escalated",
    "acknowledged",
    "postmortem_rendered",
    "meeting_held",
    "postmortem_signed",
    "action_added",
    "action_done",
    "recurrence_found",
    "run_cancelled",
    "closed",
)
# A person's acts, as the audit names them; and the refusals (None: the action is in the row's data).
ACTS = {
    "contacted": "contact",
    "measure_taken": "measure",
    "cause_recorded": "cause",
    "solution_proposed": "propose",
    "solution_approved": "approve",
    "solution_rejected": "reject",
    "confirmed": "confirm",
    "survey_recorded": "survey",
    "owner_assigned": "assign",
    "meeting_held": "meeting",
    "postmortem_signed": "signoff",
    "action_added": "actions_add",
    "action_done": "actions_close",
    "acknowledged": "ack",
}
REFUSALS: dict[str, str | None] = {
    "approval_refused": "approve",
    "action_refused": None,
    "resume_refused": "resume",
}


def row(
    incident_id: str,
    event: str,
    by: str,
    detail: str | None = None,
    *,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One event as column values (intake inserts a batch's events in one statement)."""
    if event not in EVENTS:
        raise ValueError(f"unknown timeline event {event!r}")
    # Only a person's act (or its refusal) is stamped with where it came from: it is the request's line
    # in the audit. Other events are the service's own, whatever request happened to set them off.
    here = via.current() if event in ACTS or event in REFUSALS else None
    if here is not None:
        here.audited = True
    return {"incident_id": incident_id, "at": now or utcnow(), "event": event, "by": by, "detail": detail,
            "data": data, "channel": here.channel if here else None,
            "address": here.address if here else None}  # fmt: skip


def refusal(message: str, **data: Any) -> dict[str, Any]:
    """A refusal event's data: what was refused (``data``) and the message as its vocabulary code and
    values, so the timeline says it in its reader's language (the English stays in ``detail``)."""
    found = vocabulary.parse("error", message)
    return {**data, "message": {"code": found[0], "values": found[1]}} if found else dict(data)


def add(
    session: Session,
    incident_id: str,
    event: str,
    by: str,
    detail: str | None = None,
    *,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> TimelineEvent:
    event_row = TimelineEvent(**row(incident_id, event, by, detail, data=data, now=now))
    session.add(event_row)
    return event_row


# --- the words of an event --------------------------------------------------------------------
# Events store codes and data (``data``); ``detail`` keeps the short text older versions stored, in
# English, and is read back through the vocabulary's ``detail`` and ``error`` phrases when an event has
# no data. What a person reads is always made here, in their language: the console, the documents, the
# API's ``words`` for the CLI.

_BY_ROLE = re.compile(r"^(.+) \((\w+)\)$")
_BY_SOURCE = re.compile(r"^(\w+):(\S+)$")
_DEPUTY = re.compile(r"^(.*)（代理 (.+)）$")
# Events whose stored detail is English from the code (older rows, or no data): read back as phrases.
LEGACY = ("ticket_updated", "run_cancelled", "resume_refused", "action_added", "follow_up_round",
          "level_raised", "contacted")  # fmt: skip


def who(by: str | None, lang: str) -> str:
    """The event's "by" in words: 系统 / 期限监控 for ``system`` / ``watcher``, the role after a name
    ("陈总（应急领导小组）" for ``陈总 (leadership)``), the channel before a feedback id."""
    if not by:
        return ""
    if by in vocabulary.tables().get("actor", {}):
        return vocabulary.label("actor", by, lang)
    named = _BY_ROLE.match(by)
    if named and named[2] in vocabulary.tables()["role"]:
        role = vocabulary.label("role", named[2], lang)
        return f"{named[1]}（{role}）" if lang == "zh" else f"{named[1]} ({role})"
    source = _BY_SOURCE.match(by)
    if source and source[1] in vocabulary.tables().get("channel", {}):
        return f"{vocabulary.label('channel', source[1], lang)} {source[2]}"
    if source and source[1] == "zendesk":
        return f"Zendesk #{source[2]}"
    return by


def _yes(value: object) -> bool:
    return value in (True, "True", "true", 1, "1")


def _option(category: str | None, kind: str, code: str, lang: str) -> str:
    """A measure's or solution's name in the incident's playbook (any playbook's when unknown)."""
    if category:
        try:
            option = getattr(playbooks.get(category), f"{kind}s").get(code)
        except playbooks.PlaybookError:
            option = None
        if option is not None:
            return str(option.label(lang))
    return vocabulary.say(kind, code, lang)


def _pct(value: object) -> str:
    try:
        return f"{float(str(value)):.0%}"
    except ValueError:
        return str(value)


def _decision(detail: str, data: dict[str, Any], lang: str, category: str | None) -> str:
    """A solution approved or rejected: its round and name, the reason, the principal of a deputy."""
    deputy = data.get("deputy_of")
    found = _DEPUTY.match(detail)
    if found:  # older rows: "召回（代理 王）"
        detail, deputy = found[1], deputy or found[2]
    solution, reason = data.get("solution"), data.get("reason")
    if solution is None:  # older rows: the detail is the reason, else the solution's code
        book = playbooks.get(category).solutions if category in playbooks.load_all() else {}
        solution, reason = (detail, None) if detail in book else (None, detail or None)
    what = _option(category, "solution", str(solution), lang) if solution else ""
    parts = [vocabulary.phrase("detail", "round_of", lang, round=data.get("round", "?"), what=what)]
    if reason:
        parts.append(vocabulary.phrase("detail", "reason", lang, reason=reason))
    if deputy:
        parts.append(vocabulary.phrase("detail", "deputy", lang, principal=deputy))
    return ("；" if lang == "zh" else "; ").join(parts)


def _refusal(detail: str, data: dict[str, Any], lang: str) -> str:
    message = data.get("message")
    if isinstance(message, dict) and message.get("code"):
        values = {k: v for k, v in (message.get("values") or {}).items()}
        return vocabulary.phrase("error", str(message["code"]), lang, words=lang != "en", **values)
    return vocabulary.translate("error", detail, lang)


def _contacted(detail: str, data: dict[str, Any], lang: str) -> str:
    if "first" not in data:
        return vocabulary.translate("detail", detail, lang)
    update = _yes(data.get("progress_update", True))  # a storm's first contact of another customer: no
    code = "first_contact" if _yes(data["first"]) else "progress" if update else "customer_contact"
    return vocabulary.phrase("detail", code if _yes(data.get("on_time", True)) else f"{code}_late", lang)


def _survey(detail: str, data: dict[str, Any], lang: str) -> str:
    if "share" not in data:
        return vocabulary.phrase("detail", "score", lang, score=detail)
    return vocabulary.phrase(
        "detail", "survey", lang, round=data.get("round", "?"), score=detail,
        share=_pct(data["share"]), target=_pct(data.get("target", "")),
    )  # fmt: skip


def _acknowledged(detail: str, data: dict[str, Any], lang: str) -> str:
    parts = [str(data["note"])] if data.get("note") else []
    stopped = data.get("stopped")
    if stopped:
        parts.append(vocabulary.phrase("detail", "stopped", lang, deadlines=stopped))
    if _yes(data.get("assessed")):
        parts.append(vocabulary.phrase("detail", "assessed", lang))
    return ("；" if lang == "zh" else "; ").join(parts) if data else detail


def words(
    event: str, detail: str | None, data: dict[str, Any] | None, lang: str, category: str | None = None
) -> str:
    """What the event says beyond its name, in ``lang``: codes in words, data laid out, names as given."""
    detail, data = detail or "", dict(data or {})
    phrase, label = vocabulary.phrase, vocabulary.label
    kind = data.get("kind") or detail
    simple: dict[str, Callable[[], str]] = {
        "identified": lambda: label("level", data.get("level") or detail.removeprefix("L"), lang),
        "stage_entered": lambda: label("status", detail, lang),
        "cause_recorded": lambda: label("stage", detail, lang),
        "confirmed": lambda: label("result", detail, lang),
        "postmortem_rendered": lambda: label("postmortem_state", detail, lang),
        "deadline_warned": lambda: label("deadline", kind, lang),
        "deadline_missed": lambda: label("deadline", kind, lang),
        "measure_taken": lambda: _option(category, "measure", detail, lang),
        "recurrence_found": lambda: phrase(
            "detail", "recurrence_of", lang, incident=data.get("of") or detail
        ),
        "contacted": lambda: _contacted(detail, data, lang),
        "survey_recorded": lambda: _survey(detail, data, lang),
        "approval_refused": lambda: _refusal(detail, data, lang),
        "action_refused": lambda: _refusal(detail, data, lang),
        "acknowledged": lambda: _acknowledged(detail, data, lang),
        "closed": lambda: phrase("detail", "cancelled", lang) if detail == "cancelled" else "",
        "feedback_joined": lambda: "",
        "action_done": lambda: re.sub(r"^(\S+): ", r"\1：", detail) if lang == "zh" else detail,
    }
    if event in simple:
        return simple[event]()
    if event == "level_raised" and data.get("from") and data.get("to"):
        raised = phrase("detail", "raised", lang, from_level=data["from"], to_level=data["to"])
        reasons = [vocabulary.reason(r, lang) for r in data.get("reasons") or ()]
        return raised + ("：" if lang == "zh" else ": ") + ("；" if lang == "zh" else "; ").join(reasons)
    if event == "solution_proposed":
        what = _option(category, "solution", detail, lang)
        return phrase("detail", "round_of", lang, round=data.get("round", "?"), what=what)
    if event in ("solution_approved", "solution_rejected"):
        return _decision(detail, data, lang, category)
    if event == "follow_up_round" and data.get("round"):
        return phrase("detail", "round", lang, round=data["round"])
    if event == "escalated":
        if not data.get("to"):
            return vocabulary.say("roles", detail, lang)
        return phrase("detail", "escalated", lang, deadline=data.get("kind"), roles=data["to"])
    if event in ("deadline_paused", "deadline_resumed"):
        kinds = vocabulary.say("deadlines", data.get("kinds") or detail, lang)
        why = data.get("reason")
        return (
            f"{kinds}（{label('detail', why, lang)}）"
            if why and lang == "zh"
            else (f"{kinds} ({label('detail', why, lang)})" if why else kinds)
        )
    if event == "action_added" and data.get("action_kind"):
        return phrase("detail", "action_added", lang, action_id=data.get("action_id"),
                      action_kind=data["action_kind"], owner=data.get("owner"))  # fmt: skip
    if event in LEGACY:
        return vocabulary.translate("detail", detail, lang)
    return detail  # a name, a note, a list of participants, evidence: as they were typed

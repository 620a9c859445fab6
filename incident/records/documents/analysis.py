"""The derived half of the dossier: timings, duties, what went well or badly, improvement points.

Why pure functions over the snapshot: every judgement a post-mortem makes ("contact on time",
"approval 30 min late", "round 1 below target") is a fact a reviewer may question, so each one is
computed in one place from recorded rows, tested, and laid out by templates without any logic.
Findings carry a message code and raw parameters; :mod:`incident.records.documents.i18n` words them.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from incident.records.documents import i18n
from incident.records.documents.snapshot import (
    EMPTY,
    DeadlineItem,
    Dossier,
    Duty,
    Finding,
    Improvement,
    Label,
    Milestone,
    minutes_between,
)
from playbooks import vocabulary

AREAS = ("process", "product", "training", "resources")

# Root cause → the improvement area it calls for, by the stage where the problem arose.
_ROOT_AREA = {
    "production": "product",
    "service": "training",
    "logistics": "resources",
    "system": "resources",
    "external": "resources",
}

# Customer suggestions are sorted into areas by words they contain; anything else is process.
_KEYWORDS = {  # space-separated words
    "training": "培训 态度 礼貌 沟通 耐心 train attitude polite rude communicat",
    "product": "产品 质量 电池 故障 设计 召回 product quality battery defect design recall",
    "resources": "人手 人员 库存 备用 备件 服务器 物流 快递 staff stock spare capacity server delivery",
}


def _minutes(delta: timedelta) -> int:
    return round(delta.total_seconds() / 60)


def _both(domain: str, code: object) -> Label:
    return Label(i18n.label(domain, code, "zh"), i18n.label(domain, code, "en"))


def _p(**params: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(params.items())


def derive(d: Dossier) -> dict[str, Any]:
    """Everything the templates need beyond the recorded facts, as Dossier field values."""
    contact = _contact(d)
    postmortem_due, postmortem_timing = _postmortem(d)
    last_round = d.survey_rounds[-1] if d.survey_rounds else None
    derived: dict[str, Any] = {
        "response_minutes": minutes_between(d.identified_at, _first_contact_at(d)),
        "contact_due_at": contact[0],
        "contact_timing": contact[1],
        "contact_late_minutes": contact[2],
        "handling_minutes": minutes_between(d.identified_at, d.resolved_at),
        "postmortem_due_at": postmortem_due,
        "postmortem_timing": postmortem_timing,
        "satisfaction": last_round.share if last_round else None,
        "satisfaction_met": last_round.met if last_round else None,
        "approval_refusals": sum(1 for t in d.timeline if t.event == "approval_refused"),
        "escalated_roles": _escalated_roles(d),
    }
    staged = replace(d, **derived)
    derived["milestones"] = milestones(staged)
    derived["duties"] = duties(staged)
    derived["went_well"], derived["went_badly"] = findings(staged)
    derived["improvements"] = improvements(staged)
    return derived


def _escalated_roles(d: Dossier) -> tuple[str, ...]:
    """Roles told about a miss: the deadline rows' escalated_to and the escalated events' "to"."""
    values = [x.escalated_to for x in d.deadlines]
    values += [t.get("to") for t in d.timeline if t.event == "escalated"]
    roles = (r for v in values if v for r in re.split(r"[\s,;]+", v))
    return tuple(dict.fromkeys(r for r in roles if r))


def _first_contact_at(d: Dossier) -> datetime | None:
    if d.first_contact_at is not None:
        return d.first_contact_at
    first = d.first_contact
    return first.at if first else None


def _kind(d: Dossier, kind: str) -> list[DeadlineItem]:
    return [x for x in d.deadlines if x.kind == kind and x.state != "cancelled"]


def _contact(d: Dossier) -> tuple[datetime, str, int | None]:
    """(due, timing, late minutes) of the first contact; the deadline row wins over the rule,
    because a level raised later shortens the promise (intake keeps the earlier due time)."""
    rows = _kind(d, "contact")
    due = rows[-1].due_at if rows else d.identified_at + d.rules.contact_within
    at = _first_contact_at(d)
    if at is not None:
        return (due, "late", minutes_between(due, at)) if at > due else (due, "on_time", None)
    if d.generated_at > due:
        return due, "overdue", minutes_between(due, d.generated_at)
    return due, "open", None


def _postmortem(d: Dossier) -> tuple[datetime | None, str | None]:
    """(due, timing): due is resolution + the level's postmortem_due; the deadline row, if the
    flow keeps one, says whether it was met."""
    if d.resolved_at is None:
        return None, None
    due = d.resolved_at + d.rules.postmortem_due
    rows = _kind(d, "postmortem")
    done = rows[-1].met_at if rows else None
    if done is not None:
        return due, "late" if done > due else "on_time"
    return due, "overdue" if d.generated_at > due else "open"


# --- When -------------------------------------------------------------------------------------


def milestones(d: Dossier) -> tuple[Milestone, ...]:
    """The key moments (from the records) and the notable events (from the timeline), in order."""
    out: list[Milestone] = []

    def add(event: str, at: datetime | None, by: str = "", detail: Label = EMPTY) -> None:
        if at is not None:
            out.append(Milestone(event, at, minutes_between(d.identified_at, at) or 0, by, detail))

    identified = next((t for t in d.timeline if t.event == "identified"), None)
    add("identified", d.identified_at, identified.by if identified else "", _both("level", d.level))
    for change in d.level_changes:
        raised = [
            vocabulary.phrase("detail", "raised", lang, from_level=change.from_level or "?",
                              to_level=change.to_level or "?")
            for lang in ("zh", "en")
        ]  # fmt: skip
        add("level_raised", change.at, change.by, Label(*raised))
    first = d.first_contact
    add(
        "first_contact",
        _first_contact_at(d),
        first.by if first else "",
        _both("timing", d.contact_timing),
    )
    if d.measures:
        m = d.measures[0]
        add("measure_taken", m.at, m.by, m.label)
    if d.causes:
        c = d.causes[0]
        add("cause_recorded", c.at, c.by, _both("stage", c.stage))
    for s in d.solutions:
        add(
            "solution_proposed",
            s.proposed_at,
            s.proposed_by,
            Label(f"第 {s.round} 轮：{s.label('zh')}", f"round {s.round}: {s.label('en')}"),
        )
        if s.status in ("approved", "rejected") and s.decided_at:
            event = "solution_approved" if s.status == "approved" else "solution_rejected"
            role = (
                i18n.label("role", s.decided_role, "zh"),
                i18n.label("role", s.decided_role, "en"),
            )
            add(
                event,
                s.decided_at,
                s.decided_by,
                Label(
                    f"第 {s.round} 轮：{s.label('zh')}，{role[0]}"
                    + (f"（代理 {s.deputy_of}）" if s.deputy_of else "")
                    + (f"；理由：{s.reason}" if s.reason else ""),
                    f"round {s.round}: {s.label('en')}, {role[1]}"
                    + (f" (deputy for {s.deputy_of})" if s.deputy_of else "")
                    + (f"; reason: {s.reason}" if s.reason else ""),
                ),
            )
    for t in d.timeline:
        if t.event == "approval_refused":
            add("approval_refused", t.at, t.by, t.words)
    for x in d.deadlines:
        if x.state == "missed":
            add("deadline_missed", x.missed_at or x.due_at, "", _both("deadline", x.kind))
    escalations = [t for t in d.timeline if t.event == "escalated"]
    for t in escalations:
        to = t.get("to") or ""
        kind = t.get("kind")
        add("escalated", t.at, t.by, _escalation(kind, to) or t.words)
    if not escalations:
        for x in d.deadlines:
            if x.escalated_to:
                add("escalated", x.missed_at or x.due_at, "", _escalation(x.kind, x.escalated_to))
    add("resolved", d.resolved_at)
    for c in d.confirmations:
        add("confirmed", c.at, c.by, _both("result", c.result))
    for r in d.survey_rounds:
        share, target = f"{r.share:.0%}", f"{r.target:.0%}"
        surveyors = "、".join(dict.fromkeys(s.by for s in d.surveys if s.round == r.round))
        add(
            "survey_recorded",
            r.at,
            surveyors,
            Label(
                f"第 {r.round} 轮：满意度 {share}（目标 {target}）",
                f"round {r.round}: satisfaction {share} (target {target})",
            ),
        )
        if not r.met:
            add("follow_up_round", r.at, "", Label(f"第 {r.round + 1} 轮", f"round {r.round + 1}"))
    add("closed", d.closed_at)
    return tuple(sorted(out, key=lambda m: m.at))


def _escalation(kind: str | None, to: str | None) -> Label:
    """ "Solution approval → Duty manager" in both languages (empty when nothing is known)."""
    zh, en = (
        " → ".join(filter(None, [i18n.label("deadline", kind, lang), i18n.roles(to, lang)]))
        for lang in ("zh", "en")
    )
    return Label(zh, en)


# --- Who --------------------------------------------------------------------------------------


def duties(d: Dossier) -> tuple[Duty, ...]:
    """Each duty of the response, who carried it out, and whether it was on time."""
    out: list[Duty] = []
    contact_limit = _minutes(d.rules.contact_within)
    first = d.first_contact
    out.append(
        Duty(
            duty="contact",
            role="customer_service",
            people=(first.by,) if first else (),
            at=_first_contact_at(d),
            minutes=d.response_minutes,
            outcome="done" if first or d.first_contact_at else "pending",
            timing=d.contact_timing,
            late_minutes=d.contact_late_minutes,
            limit_minutes=contact_limit,
        )
    )
    updates = [c for c in d.contacts if not c.first]
    progress = _kind(d, "progress")
    if updates:
        missed = [x for x in progress if x.state == "missed"]
        out.append(
            Duty(
                duty="progress",
                role="customer_service",
                people=tuple(dict.fromkeys(c.by for c in updates)),
                at=updates[-1].at,
                minutes=None,
                outcome="done",
                timing="late" if missed else "on_time",
                late_minutes=max((x.late_minutes or 0 for x in missed), default=None),
                limit_minutes=_minutes(d.rules.progress_every),
                detail=Label(f"{len(updates)} 次", f"{len(updates)} update(s)"),
            )
        )
    for m in d.measures:
        out.append(
            Duty(
                duty="measure",
                role=None,
                people=(m.by,),
                at=m.at,
                minutes=m.minutes_after_identified,
                outcome="done",
                detail=m.label,
            )
        )
    cause = d.cause
    out.append(
        Duty(
            duty="cause",
            role=cause.owner_group if cause else d.rules.cause_owner,
            people=(cause.by,) if cause else (),
            at=cause.at if cause else None,
            minutes=cause.minutes_after_identified if cause else None,
            outcome="done" if cause else "pending",
            detail=_both("stage", cause.stage) if cause else EMPTY,
        )
    )
    approval_limit = _minutes(d.rules.approval_within)
    for s in d.solutions:
        out.append(
            Duty(
                duty="proposal",
                role=None,
                people=(s.proposed_by,),
                at=s.proposed_at,
                minutes=minutes_between(d.identified_at, s.proposed_at),
                outcome="proposed",
                detail=s.label,
                round=s.round,
            )
        )
        out.append(
            Duty(
                duty="approval",
                role=s.decided_role or s.approver_role,
                people=(s.decided_by,) if s.decided_by else (),
                at=s.decided_at,
                minutes=s.decision_minutes,
                outcome=s.status if s.status in ("approved", "rejected") else "pending",
                timing=s.timing,
                late_minutes=s.late_minutes,
                limit_minutes=approval_limit,
                detail=s.label,
                round=s.round,
            )
        )
    for c in d.confirmations:
        out.append(
            Duty(
                duty="confirmation",
                role="customer_service",
                people=(c.by,),
                at=c.at,
                minutes=minutes_between(d.identified_at, c.at),
                outcome=c.result,
                round=c.round,
            )
        )
    for r in d.survey_rounds:
        people = tuple(dict.fromkeys(s.by for s in d.surveys if s.round == r.round))
        share, target = f"{r.share:.0%}", f"{r.target:.0%}"
        out.append(
            Duty(
                duty="survey",
                role="customer_service",
                people=people,
                at=r.at,
                minutes=None,
                outcome="target_met" if r.met else "below_target",
                detail=Label(f"{share}（目标 {target}）", f"{share} (target {target})"),
                round=r.round,
            )
        )
    if d.postmortem_due_at is not None:
        rows = _kind(d, "postmortem")
        row = rows[-1] if rows else None
        late = None
        if d.postmortem_timing in ("late", "overdue"):
            late = minutes_between(d.postmortem_due_at, row.met_at if row and row.met_at else d.generated_at)
        out.append(
            Duty(
                duty="postmortem",
                role=d.rules.lead,
                people=tuple(p.name for p in d.meeting.participants) if d.meeting else (),
                at=row.met_at if row else None,
                minutes=None,
                outcome="done" if row and row.met_at else "pending",
                timing=d.postmortem_timing,
                late_minutes=late,
                limit_minutes=_minutes(d.rules.postmortem_due),
            )
        )
    return tuple(out)


# --- How --------------------------------------------------------------------------------------


def findings(d: Dossier) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """What went well and what went badly, each backed by a recorded fact."""
    good: list[Finding] = []
    bad: list[Finding] = []
    contact_limit = _minutes(d.rules.contact_within)
    contact_rows_missed = any(x.state == "missed" for x in _kind(d, "contact"))
    if d.contact_timing == "on_time":
        good.append(Finding("contact_on_time", _p(elapsed_min=d.response_minutes, limit_min=contact_limit)))
    elif d.contact_timing == "overdue" and not contact_rows_missed:
        bad.append(
            Finding(
                "contact_overdue",
                _p(late_min=d.contact_late_minutes, limit_min=contact_limit),
            )
        )
    elif d.contact_timing == "late" and not contact_rows_missed:
        bad.append(
            Finding(
                "contact_late",
                _p(
                    late_min=d.contact_late_minutes,
                    elapsed_min=d.response_minutes,
                    limit_min=contact_limit,
                ),
            )
        )
    if d.measures:
        m = d.measures[0]
        good.append(Finding("measure_taken", _p(elapsed_min=m.minutes_after_identified, label=m.label)))
    if d.cause is None:
        bad.append(Finding("cause_pending"))

    approval_limit = _minutes(d.rules.approval_within)
    for s in d.solutions:
        if s.status == "rejected":
            bad.append(
                Finding(
                    "solution_rejected",
                    _p(
                        round=s.round,
                        label=s.label,
                        by=s.decided_by,
                        role=s.decided_role,
                        reason=s.reason or "—",
                    ),
                )
            )
        if s.timing == "on_time" and s.decided_at is not None:
            good.append(
                Finding(
                    "approval_on_time",
                    _p(round=s.round, elapsed_min=s.decision_minutes, limit_min=approval_limit),
                )
            )
        elif s.timing == "late" and s.deadline_state != "missed":  # else the missed deadline says it
            bad.append(
                Finding(
                    "approval_late",
                    _p(round=s.round, elapsed_min=s.decision_minutes, limit_min=approval_limit),
                )
            )
        if s.status == "approved" and s.legal_review_required:
            (good if s.legal_reviewed else bad).append(
                Finding(
                    "legal_reviewed" if s.legal_reviewed else "legal_review_missing",
                    _p(label=s.label),
                )
            )
    if d.approval_refusals:
        bad.append(Finding("approval_refused", _p(count=d.approval_refusals)))

    for x in d.missed_deadlines:
        code = "deadline_missed_late" if x.met_at is not None else "deadline_missed_open"
        bad.append(
            Finding(
                code,
                _p(kind=x.kind, due_at=x.due_at, late_min=x.late_minutes, to=x.escalated_to or ""),
            )
        )
    settled = [x for x in d.deadlines if x.state in ("met", "missed")]
    if settled and not d.missed_deadlines:
        good.append(Finding("deadlines_all_met", _p(count=len(settled))))

    for c in d.confirmations:
        if c.result == "satisfied":
            good.append(Finding("confirmed_satisfied"))
        else:
            bad.append(Finding("confirmed_not_satisfied", _p(round=c.round, result=c.result)))
    for r in d.survey_rounds:
        if r.met:
            good.append(Finding("satisfaction_met", _p(share=r.share, target=r.target, round=r.round)))
        else:
            bad.append(Finding("follow_up_needed", _p(round=r.round, share=r.share, target=r.target)))
    if d.survey_rounds and not d.survey_rounds[-1].met and len(d.survey_rounds) > 1:
        last = d.survey_rounds[-1]
        bad.append(Finding("satisfaction_below", _p(share=last.share, target=last.target)))
    return tuple(good), tuple(bad)


# --- Improvement points -----------------------------------------------------------------------


def improvements(d: Dossier) -> tuple[Improvement, ...]:
    """Improvement points from the misses, the causes and the surveys, ordered by area."""
    out: list[Improvement] = []
    rules = d.rules
    contact_missed = any(x.state == "missed" for x in _kind(d, "contact"))
    if d.contact_timing in ("late", "overdue") or contact_missed:
        out.append(
            Improvement(
                "process",
                "contact_late",
                "imp_contact",
                _p(limit_min=_minutes(rules.contact_within), late_min=d.contact_late_minutes),
            )
        )
    late_approvals = [s for s in d.solutions if s.timing in ("late", "overdue")]
    if late_approvals or any(x.state == "missed" for x in _kind(d, "approval")):
        worst = max((s.late_minutes or 0 for s in late_approvals), default=None)
        out.append(
            Improvement(
                "process",
                "deadline_missed",
                "imp_approval",
                _p(role=rules.approver, limit_min=_minutes(rules.approval_within), late_min=worst),
            )
        )
    kinds_done = {"contact", "approval"}
    for x in d.missed_deadlines:
        if x.kind in kinds_done:
            continue
        kinds_done.add(x.kind)
        if x.kind == "progress":
            out.append(
                Improvement(
                    "process",
                    "deadline_missed",
                    "imp_progress",
                    _p(limit_min=_minutes(rules.progress_every)),
                )
            )
        elif x.kind == "postmortem":
            out.append(
                Improvement(
                    "process",
                    "deadline_missed",
                    "imp_postmortem",
                    _p(limit_min=_minutes(rules.postmortem_due)),
                )
            )
        else:
            out.append(Improvement("process", "deadline_missed", "imp_deadline", _p(kind=x.kind)))
    rejected = d.rejected_solutions
    if rejected:
        reasons = "; ".join(s.reason for s in rejected if s.reason) or "—"
        out.append(
            Improvement("process", "rejections", "imp_rejections", _p(count=len(rejected), reasons=reasons))
        )
    if d.approval_refusals:
        out.append(Improvement("process", "refused_approval", "imp_refused", _p(role=rules.approver)))
    cause = d.cause
    if cause is not None:
        area = _ROOT_AREA.get(cause.stage, "process")
        code = f"imp_root_{cause.stage}" if cause.stage in _ROOT_AREA else "imp_root_other"
        out.append(Improvement(area, "root_cause", code, _p(root=cause.root)))
        if cause.stage == "service":
            out.append(Improvement("process", "root_cause", "imp_root_other", _p(root=cause.root)))
        if cause.direct:
            out.append(Improvement("process", "direct_cause", "imp_direct", _p(direct=cause.direct)))
    low = [s for s in d.surveys if not _round_met(d, s.round)]
    if low:
        speed, result, attitude = (
            round(sum(getattr(s, k) for s in low) / len(low), 1) for k in ("speed", "result", "attitude")
        )
        if speed < 4:
            out.append(Improvement("resources", "survey_score", "imp_speed", _p(score=speed)))
        if result < 4:
            area = d.rules.low_result_area  # the playbook's analysis policy
            code = "imp_result_product" if area == "product" else "imp_result_process"
            out.append(Improvement(area, "survey_score", code, _p(score=result)))
        if attitude < 4:
            out.append(Improvement("training", "survey_score", "imp_attitude", _p(score=attitude)))
    for text in dict.fromkeys(s.suggestion for s in d.suggestions):
        out.append(Improvement(_suggestion_area(text), "suggestion", "imp_suggestion", _p(text=text)))
    return tuple(sorted(out, key=lambda i: AREAS.index(i.area)))


def _round_met(d: Dossier, number: int) -> bool:
    return next((r.met for r in d.survey_rounds if r.round == number), True)


def _suggestion_area(text: str) -> str:
    lowered = text.lower()
    for area, words in _KEYWORDS.items():
        if any(w in lowered for w in words.split()):
            return area
    return "process"

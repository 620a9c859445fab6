"""How: what went well and badly, each backed by a recorded fact, and the improvement points they call for."""

from __future__ import annotations

from incident.records.documents.facts import kind_rows, minutes, params
from incident.records.documents.snapshot import Dossier, Finding, Improvement

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


def findings(d: Dossier) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """What went well and what went badly, each backed by a recorded fact."""
    good: list[Finding] = []
    bad: list[Finding] = []
    contact_limit = minutes(d.rules.contact_within)
    contact_rows_missed = any(x.state == "missed" for x in kind_rows(d, "contact"))
    if d.contact_timing == "on_time":
        good.append(
            Finding("contact_on_time", params(elapsed_min=d.response_minutes, limit_min=contact_limit))
        )
    elif d.contact_timing == "overdue" and not contact_rows_missed:
        bad.append(
            Finding(
                "contact_overdue",
                params(late_min=d.contact_late_minutes, limit_min=contact_limit),
            )
        )
    elif d.contact_timing == "late" and not contact_rows_missed:
        bad.append(
            Finding(
                "contact_late",
                params(
                    late_min=d.contact_late_minutes,
                    elapsed_min=d.response_minutes,
                    limit_min=contact_limit,
                ),
            )
        )
    customers = d.contact_progress
    if customers is not None and customers.late:
        figures = {f: getattr(customers, f) for f in ("late", "contacted", "customers", "overdue")}
        bad.append(Finding("customer_contacts_late", params(**figures)))
    elif customers is not None and customers.contacted == customers.customers:
        good.append(Finding("customer_contacts_on_time", params(customers=customers.customers)))
    if d.measures:
        m = d.measures[0]
        good.append(Finding("measure_taken", params(elapsed_min=m.minutes_after_identified, label=m.label)))
    if d.cause is None:
        bad.append(Finding("cause_pending"))

    approval_limit = minutes(d.rules.approval_within)
    for s in d.solutions:
        if s.status == "rejected":
            bad.append(
                Finding(
                    "solution_rejected",
                    params(
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
                    params(round=s.round, elapsed_min=s.decision_minutes, limit_min=approval_limit),
                )
            )
        elif s.timing == "late" and s.deadline_state != "missed":  # else the missed deadline says it
            bad.append(
                Finding(
                    "approval_late",
                    params(round=s.round, elapsed_min=s.decision_minutes, limit_min=approval_limit),
                )
            )
        if s.status == "approved" and s.legal_review_required:
            (good if s.legal_reviewed else bad).append(
                Finding(
                    "legal_reviewed" if s.legal_reviewed else "legal_review_missing",
                    params(label=s.label),
                )
            )
    if d.approval_refusals:
        bad.append(Finding("approval_refused", params(count=d.approval_refusals)))

    for x in d.missed_deadlines:
        code = "deadline_missed_late" if x.met_at is not None else "deadline_missed_open"
        bad.append(
            Finding(
                code,
                params(kind=x.kind, due_at=x.due_at, late_min=x.late_minutes, to=x.escalated_to or ""),
            )
        )
    settled = [x for x in d.deadlines if x.state in ("met", "missed")]
    if settled and not d.missed_deadlines:
        good.append(Finding("deadlines_all_met", params(count=len(settled))))

    for c in d.confirmations:
        if c.result == "satisfied":
            good.append(Finding("confirmed_satisfied"))
        else:
            bad.append(Finding("confirmed_not_satisfied", params(round=c.round, result=c.result)))
    for r in d.survey_rounds:
        if r.met:
            good.append(Finding("satisfaction_met", params(share=r.share, target=r.target, round=r.round)))
        else:
            bad.append(Finding("follow_up_needed", params(round=r.round, share=r.share, target=r.target)))
    if d.survey_rounds and not d.survey_rounds[-1].met and len(d.survey_rounds) > 1:
        last = d.survey_rounds[-1]
        bad.append(Finding("satisfaction_below", params(share=last.share, target=last.target)))
    return tuple(good), tuple(bad)


def improvements(d: Dossier) -> tuple[Improvement, ...]:
    """Improvement points from the misses, the causes and the surveys, ordered by area."""
    out: list[Improvement] = []
    rules = d.rules
    contact_missed = any(x.state == "missed" for x in kind_rows(d, "contact"))
    if d.contact_timing in ("late", "overdue") or contact_missed:
        out.append(
            Improvement(
                "process",
                "contact_late",
                "imp_contact",
                params(limit_min=minutes(rules.contact_within), late_min=d.contact_late_minutes),
            )
        )
    if d.contact_progress is not None and d.contact_progress.late:
        late = params(late=d.contact_progress.late)
        out.append(Improvement("resources", "contact_late", "imp_customer_contacts", late))
    late_approvals = [s for s in d.solutions if s.timing in ("late", "overdue")]
    if late_approvals or any(x.state == "missed" for x in kind_rows(d, "approval")):
        worst = max((s.late_minutes or 0 for s in late_approvals), default=None)
        out.append(
            Improvement(
                "process",
                "deadline_missed",
                "imp_approval",
                params(role=rules.approver, limit_min=minutes(rules.approval_within), late_min=worst),
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
                    params(limit_min=minutes(rules.progress_every)),
                )
            )
        elif x.kind == "postmortem":
            out.append(
                Improvement(
                    "process",
                    "deadline_missed",
                    "imp_postmortem",
                    params(limit_min=minutes(rules.postmortem_due)),
                )
            )
        else:
            out.append(Improvement("process", "deadline_missed", "imp_deadline", params(kind=x.kind)))
    rejected = d.rejected_solutions
    if rejected:
        reasons = "; ".join(s.reason for s in rejected if s.reason) or "—"
        out.append(
            Improvement(
                "process", "rejections", "imp_rejections", params(count=len(rejected), reasons=reasons)
            )
        )
    if d.approval_refusals:
        out.append(Improvement("process", "refused_approval", "imp_refused", params(role=rules.approver)))
    cause = d.cause
    if cause is not None:
        area = _ROOT_AREA.get(cause.stage, "process")
        code = f"imp_root_{cause.stage}" if cause.stage in _ROOT_AREA else "imp_root_other"
        out.append(Improvement(area, "root_cause", code, params(root=cause.root)))
        if cause.stage == "service":
            out.append(Improvement("process", "root_cause", "imp_root_other", params(root=cause.root)))
        if cause.direct:
            out.append(Improvement("process", "direct_cause", "imp_direct", params(direct=cause.direct)))
    low = [s for s in d.surveys if not _round_met(d, s.round)]
    if low:
        speed, result, attitude = (
            round(sum(getattr(s, k) for s in low) / len(low), 1) for k in ("speed", "result", "attitude")
        )
        if speed < 4:
            out.append(Improvement("resources", "survey_score", "imp_speed", params(score=speed)))
        if result < 4:
            area = d.rules.low_result_area  # the playbook's analysis policy
            code = "imp_result_product" if area == "product" else "imp_result_process"
            out.append(Improvement(area, "survey_score", code, params(score=result)))
        if attitude < 4:
            out.append(Improvement("training", "survey_score", "imp_attitude", params(score=attitude)))
    for text in dict.fromkeys(s.suggestion for s in d.suggestions):
        out.append(Improvement(_suggestion_area(text), "suggestion", "imp_suggestion", params(text=text)))
    return tuple(sorted(out, key=lambda i: AREAS.index(i.area)))


def _round_met(d: Dossier, number: int) -> bool:
    return next((r.met for r in d.survey_rounds if r.round == number), True)


def _suggestion_area(text: str) -> str:
    lowered = text.lower()
    for area, words in _KEYWORDS.items():
        if any(w in lowered for w in words.split()):
            return area
    return "process"

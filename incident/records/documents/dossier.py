"""The dossier: a frozen, plain-data snapshot of one incident, read once from the ORM.

Why a snapshot: the seven records are rendered outside any transaction (and in two languages and
two formats from the same facts), templates must not touch the database or lazy-load, and a
customer's raw contact must never reach a template — the dossier simply never carries it.
Everything derived (minutes, on time or late, what went well or badly, improvement points) is
computed here or in :mod:`incident.records.documents.analysis`, so templates only lay facts out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import playbooks
from incident.deadlines import customers as duties
from incident.feedback.privacy import mask_contact, mask_text
from incident.incidents import timeline as events
from incident.records.documents import analysis, review
from incident.records.documents.snapshot import (
    GOOD_SCORE,
    SEVERITY_FLAGS,
    CauseItem,
    ConfirmationItem,
    ContactItem,
    ContactProgress,
    DeadlineItem,
    Dossier,
    FeedbackItem,
    Label,
    LevelChange,
    MeasureItem,
    Rules,
    Scope,
    SolutionItem,
    SurveyItem,
    SurveyRound,
    TimelineItem,
    minutes_between,
)
from models import (
    CauseAnalysis,
    Confirmation,
    Contact,
    Deadline,
    Feedback,
    Incident,
    Measure,
    Solution,
    Survey,
    TimelineEvent,
    utcnow,
)
from playbooks import vocabulary
from playbooks.schema import Option

__all__ = ["Dossier", "IncidentNotFound", "build_dossier"]


class IncidentNotFound(LookupError):
    """No incident with that id."""


def _text(value: str | None) -> str:
    """Free text (customer or staff) as documents may show it: contacts inside it masked."""
    return mask_text(value).strip() if value else ""


def _ident(value: str | None) -> str | None:
    """Structured identifiers (order no., serial, batch) pass as they are: masking digits would
    destroy them, and they are not contact details."""
    value = (value or "").strip()
    return value or None


def _data(data: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    if not data:
        return ()
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        out.append((str(key), _text(value) if isinstance(value, str) else str(value)))
    return tuple(out)


def _both(words: Callable[[str], str]) -> Label:
    """Words made in both languages, contacts in them masked (they may quote a note or a reason)."""
    return Label(_text(words("zh")), _text(words("en")))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _label(options: dict[str, Option], kind: str) -> Label:
    option = options.get(kind)
    return Label(option.label.zh, option.label.en) if option else Label(kind, kind)


def _rows(session: Session, model: Any, incident_id: str, *order: Any) -> list[Any]:
    stmt = select(model).where(model.incident_id == incident_id).order_by(*order, model.id)
    return list(session.scalars(stmt))


def build_dossier(session: Session, incident_id: str, *, now: datetime | None = None) -> Dossier:
    """Read one incident and everything done for it; raise IncidentNotFound if there is none.

    ``now`` is the generation time printed on the records and the reference for "overdue".
    """
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    now = now or utcnow()
    book = playbooks.get(incident.category)
    lv = book.level(incident.level)
    rules = Rules(
        lead=lv.lead,
        join=tuple(lv.join),
        approver=lv.approver,
        contact_within=lv.contact_within,
        approval_within=lv.approval_within,
        satisfaction_target=lv.satisfaction_target,
        postmortem_due=lv.postmortem_due,
        progress_every=lv.progress_every,
        escalate_to=tuple(lv.escalate_to),
        response_start=Label(lv.response_start.zh, lv.response_start.en),
        cause_owner=book.cause_owner,
        low_result_area=book.analysis.low_result_area,
    )
    ident = incident.identified_at

    def since(at: datetime | None) -> int:
        return minutes_between(ident, at) or 0

    feedback = tuple(_feedback(row) for row in _rows(session, Feedback, incident.id, Feedback.received_at))
    contacts = tuple(
        ContactItem(
            at=r.at,
            by=_text(r.by),
            note=_text(r.note),
            first=r.first,
            on_time=r.on_time,
            minutes_after_identified=since(r.at),
            progress_update=r.progress_update,
        )
        for r in _rows(session, Contact, incident.id, Contact.at)
    )
    measures = tuple(
        MeasureItem(
            at=r.at,
            by=_text(r.by),
            kind=r.kind,
            label=_label(book.measures, r.kind),
            note=_text(r.note),
            minutes_after_identified=since(r.at),
        )
        for r in _rows(session, Measure, incident.id, Measure.at)
    )
    causes = tuple(
        CauseItem(
            at=r.at,
            by=_text(r.by),
            owner_group=r.owner_group,
            root=_text(r.root),
            direct=_text(r.direct),
            stage=r.stage,
            minutes_after_identified=since(r.at),
        )
        for r in _rows(session, CauseAnalysis, incident.id, CauseAnalysis.at)
    )
    deadline_rows = _rows(session, Deadline, incident.id, Deadline.due_at)
    # each later customer's own first contact is summarised (contact_progress), not one row each
    deadlines = tuple(_deadline(r, now, lv.clock_of(r.kind)) for r in deadline_rows if r.kind != duties.KIND)
    solutions = tuple(
        _solution(r, book, rules, deadlines, now)
        for r in _rows(session, Solution, incident.id, Solution.round, Solution.proposed_at)
    )
    confirmations = tuple(
        ConfirmationItem(round=r.round, at=r.at, by=_text(r.by), result=r.result, note=_text(r.note))
        for r in _rows(session, Confirmation, incident.id, Confirmation.at)
    )
    surveys = tuple(
        SurveyItem(
            round=r.round,
            at=r.at,
            by=_text(r.by),
            speed=r.speed,
            result=r.result,
            attitude=r.attitude,
            score=float(r.score),
            good=float(r.score) >= GOOD_SCORE,
            suggestion=_text(r.suggestion),
        )
        for r in _rows(session, Survey, incident.id, Survey.round, Survey.at)
    )
    timeline = tuple(
        TimelineItem(
            at=r.at,
            event=r.event,
            by=_text(r.by),
            detail=_text(r.detail),
            data=_data(r.data),
            minutes_after_identified=since(r.at),
            words=_both(lambda lang, r=r: events.words(r.event, r.detail, r.data, lang, incident.category)),
        )
        for r in _rows(session, TimelineEvent, incident.id, TimelineEvent.at)
    )
    severity = tuple(flag for flag in SEVERITY_FLAGS if any(flag in f.severity for f in feedback))
    level_changes = tuple(
        LevelChange(at=t.at, from_level=_int(t.get("from")), to_level=_int(t.get("to")), by=t.by)
        for t in timeline
        if t.event == "level_raised"
    )
    dossier = Dossier(
        incident_id=incident.id,
        category=incident.category,
        category_label=Label(book.title.zh, book.title.en),
        level=incident.level,
        status=incident.status,
        customers=incident.customers,
        summary=_text(incident.summary),
        level_reasons=tuple(
            _both(lambda lang, r=r: vocabulary.reason(r, lang)) for r in incident.level_reasons or ()
        ),
        identified_at=ident,
        first_contact_at=incident.first_contact_at,
        resolved_at=incident.resolved_at,
        closed_at=incident.closed_at,
        solution_round=incident.solution_round,
        follow_up_round=incident.follow_up_round,
        rules=rules,
        feedback=feedback,
        contacts=contacts,
        measures=measures,
        causes=causes,
        solutions=solutions,
        confirmations=confirmations,
        surveys=surveys,
        survey_rounds=_rounds(surveys, rules.satisfaction_target),
        deadlines=deadlines,
        timeline=timeline,
        scope=_scope(feedback),
        severity=severity,
        level_changes=level_changes,
        generated_at=now,
        meeting=review.meeting(session, incident.id),
        actions=review.actions(session, incident.id, now),
        contact_progress=_progress(session, incident.id, deadline_rows, now),
    )
    return replace(dossier, **analysis.derive(dossier))


def _progress(
    session: Session, incident_id: str, rows: list[Deadline], now: datetime
) -> ContactProgress | None:
    """The customers' first contacts as one figure, once more than one customer is owed one."""
    figure = duties.progress(session, incident_id, now)
    if figure["customers"] < 2:
        return None
    late = sum(1 for r in rows if r.kind in duties.DUTIES and r.state == "missed")
    return ContactProgress(late=late, **figure)


def _feedback(row: Feedback) -> FeedbackItem:
    severity = tuple(flag for flag in SEVERITY_FLAGS if getattr(row, flag, None))
    model, batch = _ident(row.product_model), _ident(row.batch)
    return FeedbackItem(
        id=row.id,
        kind=row.kind,
        channel=row.channel,
        received_at=row.received_at,
        customer_name=_text(row.customer_name),
        contact_masked=mask_contact(row.contact),  # the raw contact stops here
        order_no=_ident(row.order_no),
        purchase_date=_ident(row.purchase_date),
        product_model=model,
        serial=_ident(row.serial),
        batch=batch,
        service=_ident(row.service),
        region=_ident(row.region),
        outside_cause=_ident(row.cause),
        symptom=_text(row.summary),
        occurred_at=_ident(row.occurred_at),
        impact=_text(row.impact),
        evidence=_text(row.evidence),
        mood=row.mood,
        customers=row.customers or 1,
        severity=severity,
        raised_from=getattr(row, "raised_from", None),
    )


def _deadline(row: Deadline, now: datetime, clock: str) -> DeadlineItem:
    late: int | None = None
    if row.state == "missed":
        late = minutes_between(row.due_at, row.met_at or now)
    elif row.met_at is not None and row.met_at > row.due_at:
        late = minutes_between(row.due_at, row.met_at)
    return DeadlineItem(
        kind=row.kind,
        due_at=row.due_at,
        state=row.state,
        created_at=row.created_at,
        warned_at=row.warned_at,
        met_at=row.met_at,
        missed_at=row.missed_at,
        escalated_to=row.escalated_to,
        late_minutes=late,
        clock=clock,
    )


def _matching_approval(deadlines: tuple[DeadlineItem, ...], proposed_at: datetime) -> DeadlineItem | None:
    """The approval deadline opened by this proposal (opened in the same transaction)."""
    candidates = [d for d in deadlines if d.kind == "approval" and d.state != "cancelled"]
    if not candidates:
        return None
    best = min(candidates, key=lambda d: abs((d.created_at - proposed_at).total_seconds()))
    return best if abs((best.created_at - proposed_at).total_seconds()) <= 300 else None


def _solution(
    row: Solution,
    book: playbooks.Playbook,
    rules: Rules,
    deadlines: tuple[DeadlineItem, ...],
    now: datetime,
) -> SolutionItem:
    option = book.solutions.get(row.kind)
    deadline = _matching_approval(deadlines, row.proposed_at)
    due = deadline.due_at if deadline else row.proposed_at + rules.approval_within
    if row.decided_at is not None:
        late = minutes_between(due, row.decided_at) or 0
        timing = "late" if row.decided_at > due else "on_time"
    else:
        late = minutes_between(due, now) or 0
        timing = "overdue" if now > due else "open"
    return SolutionItem(
        round=row.round,
        kind=row.kind,
        label=_label(book.solutions, row.kind),
        note=_text(row.note),
        proposed_at=row.proposed_at,
        proposed_by=_text(row.proposed_by),
        approver_role=row.approver_role,
        legal_review_required=bool(option and option.legal_review),
        legal_reviewed=row.legal_reviewed,
        status=row.status,
        decided_at=row.decided_at,
        decided_by=_text(row.decided_by),
        decided_role=row.decided_role,
        deputy_of=_text(row.deputy_of),
        reason=_text(row.reason),
        approval_due_at=due,
        decision_minutes=minutes_between(row.proposed_at, row.decided_at),
        timing=timing,
        late_minutes=late if timing in ("late", "overdue") else None,
        deadline_state=deadline.state if deadline else None,
        escalated_to=deadline.escalated_to if deadline else None,
    )


def _rounds(surveys: tuple[SurveyItem, ...], target: float) -> tuple[SurveyRound, ...]:
    """CSAT per follow-up round: the share of the round's surveys scoring well (as actions.py)."""
    out = []
    for number in sorted({s.round for s in surveys}):
        items = [s for s in surveys if s.round == number]
        good = sum(1 for s in items if s.good)
        share = round(good / len(items), 4)
        out.append(
            SurveyRound(
                round=number,
                count=len(items),
                good=good,
                share=share,
                target=target,
                met=share >= target,
                at=max(s.at for s in items),
            )
        )
    return tuple(out)


def _unique(values: list[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _scope(feedback: tuple[FeedbackItem, ...]) -> Scope:
    products = _unique([" / ".join(p for p in (f.product_model, f.batch) if p) or None for f in feedback])
    return Scope(
        products=products,
        services=_unique([f.service for f in feedback]),
        regions=_unique([f.region for f in feedback]),
        outside_causes=_unique([f.outside_cause for f in feedback]),
        channels=_unique([f.channel for f in feedback]),
        feedback_count=len(feedback),
    )

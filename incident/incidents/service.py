"""What the CLI, API and console show of incidents: plain JSON-able dicts, contact details masked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select

import playbooks
from incident.deadlines import customers as duties
from incident.deadlines import service as deadlines
from incident.errors import NotFound
from incident.feedback.privacy import mask_contact, mask_text
from incident.incidents import timeline as events
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
    session_scope,
    utcnow,
)

OUTSTANDING = ("pending", "warned", "missed")  # a missed deadline stays owed until met late


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _next_due(deadlines: list[Deadline]) -> Deadline | None:
    active = [d for d in deadlines if d.state in ("pending", "warned")]
    return min(active, key=lambda d: d.due_at) if active else None


def overdue_deadline(deadlines: list[Deadline], now: datetime) -> Deadline | None:
    """The longest-overdue promise still owed: past due, not met (a missed contact counts until made)."""
    owed = [d for d in deadlines if d.state in OUTSTANDING and d.met_at is None and d.due_at <= now]
    return min(owed, key=lambda d: d.due_at) if owed else None


def summary_row(inc: Incident, now: datetime | None = None) -> dict[str, Any]:
    nxt = _next_due(inc.deadlines)
    late = overdue_deadline(inc.deadlines, now or utcnow())
    return {
        "incident_id": inc.id,
        "level": inc.level,
        "category": inc.category,
        "status": inc.status,
        "customers": inc.customers,
        "summary": mask_text(inc.summary)[:200],
        "identified_at": _iso(inc.identified_at),
        "next_deadline": (
            {"kind": nxt.kind, "due_at": _iso(nxt.due_at), "clock": deadlines.clock_of(inc, nxt.kind)}
            if nxt
            else None
        ),
        "missed_deadlines": duties.missed_count(inc.deadlines),  # the customers' contacts count once
        "owner": inc.owner,
        "overdue": (
            {"kind": late.kind, "due_at": _iso(late.due_at), "clock": deadlines.clock_of(inc, late.kind)}
            if late
            else None
        ),
        "overdue_minutes": int(((now or utcnow()) - late.due_at).total_seconds() // 60) if late else None,
    }


@dataclass(frozen=True)
class Filters:
    """What the board's form, ``GET /api/incidents`` and ``incident list`` filter and search by."""

    open_only: bool = False
    level: int | None = None
    category: str | None = None
    status: str | None = None
    owner: str | None = None
    overdue: bool | None = None
    q: str | None = None  # an id, a customer, an order, a product or batch, words of the text


def _search(q: str) -> ColumnElement[bool]:
    """The incident itself, or any of its feedback, mentions ``q`` (LIKE wildcards typed are literal)."""

    def like(column: Any) -> ColumnElement[bool]:
        return column.icontains(q, autoescape=True)  # type: ignore[no-any-return]

    fields = (Feedback.id, Feedback.customer_name, Feedback.order_no, Feedback.product_model, Feedback.batch)
    in_feedback = select(Feedback.incident_id).where(
        Feedback.incident_id.is_not(None),
        or_(*(like(c) for c in (*fields, Feedback.serial, Feedback.region, Feedback.summary))),
    )
    return or_(like(Incident.id), like(Incident.summary), like(Incident.owner), Incident.id.in_(in_feedback))


def query(f: Filters) -> Select[tuple[Incident]]:
    stmt = select(Incident)
    if f.open_only:
        stmt = stmt.where(Incident.status != "closed")
    for column, value in ((Incident.level, f.level), (Incident.category, f.category),
                          (Incident.status, f.status), (Incident.owner, f.owner)):  # fmt: skip
        if value not in (None, ""):
            stmt = stmt.where(column == value)
    if f.q and f.q.strip():
        stmt = stmt.where(_search(f.q.strip()))
    return stmt


def keep(row: dict[str, Any], f: Filters) -> bool:
    """The overdue filter, which needs the clock (the rest is SQL)."""
    return f.overdue is None or (row["overdue"] is not None) == f.overdue


def list_incidents(f: Filters | None = None) -> list[dict[str, Any]]:
    f = f or Filters()
    now = utcnow()
    with session_scope() as s:
        stmt = query(f).order_by(Incident.identified_at.desc())
        rows = [summary_row(inc, now) for inc in s.scalars(stmt)]
    return [r for r in rows if keep(r, f)]


def assign(incident_id: str, owner: str, by: str) -> dict[str, Any]:
    """Name who answers for the incident now; on its timeline, so the board's live view updates."""
    with session_scope() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise NotFound(f"no incident {incident_id}")
        inc.owner = owner
        events.add(s, incident_id, "owner_assigned", by, owner)
    return {"incident_id": incident_id, "owner": owner}


def affected(s: Any, incident_id: str) -> list[dict[str, Any]]:
    """The reports of an incident as its page lists them: who, what, where; contacts masked."""
    stmt = select(Feedback).where(Feedback.incident_id == incident_id).order_by(Feedback.received_at)
    owed = duties.states(s, incident_id)  # a customer's first report → their first contact's state
    return [
        {
            "feedback_id": fb.id,
            "contact_duty": owed.get(fb.id),
            "kind": fb.kind,
            "channel": fb.channel,
            "customer": fb.customer_name,
            "contact": mask_contact(fb.contact) or None,
            "order": fb.order_no,
            "product_model": fb.product_model,
            "batch": fb.batch,
            "serial": fb.serial,
            "service": fb.service,
            "region": fb.region,
            "received_at": _iso(fb.received_at),
        }
        for fb in s.scalars(stmt.limit(500))
    ]


def _masked(data: Any) -> Any:
    """An event's data with contacts masked in its text (a note or a reason may quote a phone number)."""
    if isinstance(data, dict):
        return {k: _masked(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_masked(v) for v in data]
    return mask_text(data) if isinstance(data, str) else data


def _rows(s: Any, model: Any, incident_id: str) -> list[Any]:
    return list(s.scalars(select(model).where(model.incident_id == incident_id).order_by(model.id)))


def show(incident_id: str) -> dict[str, Any]:
    with session_scope() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise NotFound(f"no incident {incident_id}")
        rules = playbooks.get(inc.category).level(inc.level)
        data = summary_row(inc)
        data.update(
            summary=mask_text(inc.summary),
            level_reasons=list(inc.level_reasons or []),
            first_contact_at=_iso(inc.first_contact_at),
            resolved_at=_iso(inc.resolved_at),
            closed_at=_iso(inc.closed_at),
            flow_run_id=inc.flow_run_id,
            solution_round=inc.solution_round,
            follow_up_round=inc.follow_up_round,
            lead=rules.lead,
            approver=rules.approver,
            timeline=[
                {
                    "at": _iso(e.at),
                    "event": e.event,
                    "by": e.by,
                    "detail": mask_text(e.detail) or None,
                    "data": _masked(e.data),
                }
                for e in inc.timeline
            ],  # fmt: skip
            deadlines=[
                {
                    "kind": d.kind,
                    "due_at": _iso(d.due_at),
                    "clock": deadlines.clock_of(inc, d.kind),  # which clock the due time counts
                    "state": d.state,
                    "met_at": _iso(d.met_at),
                    "missed_at": _iso(d.missed_at),
                    "escalated_to": d.escalated_to,
                    "next_escalation_at": _iso(d.chain_next_at),
                    "acknowledged_by": d.acked_by,
                }
                for d in inc.deadlines
                if d.kind != duties.KIND  # each later customer's own: in contact_progress and feedback
            ],
            contact_progress=duties.progress(s, incident_id, utcnow()),
            escalating=duties.escalating(inc.deadlines),  # a chain runs (maybe a customer's): ack it
            contacts=[
                {
                    "at": _iso(c.at),
                    "by": c.by,
                    "first": c.first,
                    "on_time": c.on_time,
                    "progress_update": c.progress_update,
                    "customers": list(c.customers or []),
                    "update": mask_text(c.message) or None,  # what the customers were sent
                }
                for c in _rows(s, Contact, incident_id)
            ],
            measures=[{"at": _iso(m.at), "kind": m.kind, "by": m.by} for m in _rows(s, Measure, incident_id)],
            causes=[
                {
                    "at": _iso(c.at),
                    "root": c.root,
                    "direct": c.direct,
                    "stage": c.stage,
                    "owner_group": c.owner_group,
                }
                for c in _rows(s, CauseAnalysis, incident_id)
            ],
            solutions=[
                {
                    "round": x.round,
                    "solution": x.kind,
                    "status": x.status,
                    "approver_role": x.approver_role,
                    "decided_by": x.decided_by,
                    "decided_role": x.decided_role,
                    "reason": x.reason,
                }
                for x in _rows(s, Solution, incident_id)
            ],
            confirmations=[
                {"round": c.round, "result": c.result, "at": _iso(c.at)}
                for c in _rows(s, Confirmation, incident_id)
            ],
            surveys=[
                {"round": x.round, "score": x.score, "at": _iso(x.at)} for x in _rows(s, Survey, incident_id)
            ],
            feedback=affected(s, incident_id),
        )
        data.update(_review(s, inc))
        return data


def _review(s: Any, inc: Incident) -> dict[str, Any]:
    """The post-mortem's state and meeting, the improvement actions, and the incident this one repeats."""
    from incident.actions.service import public, rows_of
    from incident.meetings.service import of

    now = utcnow()
    meeting = of(s, inc.id)
    earlier = None
    if inc.recurrence_of:
        earlier = {
            "incident_id": inc.recurrence_of,
            "actions": [public(r, now) for r in rows_of(s, inc.recurrence_of)],
        }
    return {
        "recurrence_of": inc.recurrence_of,
        "recurrence": earlier,
        "postmortem": meeting["postmortem"] if meeting else "draft",
        "meeting": meeting,
        "actions": [public(r, now) for r in rows_of(s, inc.id)],
    }

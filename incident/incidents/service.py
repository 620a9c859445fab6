"""What the CLI, API and console show of incidents: plain JSON-able dicts, contact details masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

import playbooks
from incident.deadlines import service as deadlines
from incident.errors import NotFound
from incident.feedback.privacy import mask_text
from models import (
    CauseAnalysis,
    Confirmation,
    Contact,
    Deadline,
    Incident,
    Measure,
    Solution,
    Survey,
    session_scope,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _next_due(deadlines: list[Deadline]) -> Deadline | None:
    active = [d for d in deadlines if d.state in ("pending", "warned")]
    return min(active, key=lambda d: d.due_at) if active else None


def summary_row(inc: Incident) -> dict[str, Any]:
    nxt = _next_due(inc.deadlines)
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
        "missed_deadlines": sum(1 for d in inc.deadlines if d.state == "missed"),
    }


def list_incidents(open_only: bool = False) -> list[dict[str, Any]]:
    with session_scope() as s:
        stmt = select(Incident).order_by(Incident.identified_at.desc())
        if open_only:
            stmt = stmt.where(Incident.status != "closed")
        return [summary_row(inc) for inc in s.scalars(stmt)]


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
                {"at": _iso(e.at), "event": e.event, "by": e.by, "detail": mask_text(e.detail) or None}
                for e in inc.timeline
            ],
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
            ],
            contacts=[
                {"at": _iso(c.at), "by": c.by, "first": c.first, "on_time": c.on_time}
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
        )
        return data

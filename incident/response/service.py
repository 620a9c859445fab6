"""The human steps of an incident: validated, recorded, and answered for the waiting flow run.

Each action checks that the incident is at a point where it makes sense, records the answer and its
timeline event in one transaction, and returns what the CLI/API print. The flow run waiting for the
step is then resumed by ``flows.waiting.try_deliver`` — an action typed before the flow reaches its
waiting point is simply found in the database when it gets there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import playbooks
from incident.deadlines import customers as duties
from incident.deadlines import service as deadlines
from incident.errors import BadInput, Conflict, Forbidden, NotFound
from incident.incidents import recurrence, timeline
from incident.response import updates
from incident.response.inputs import (
    ApproveIn,
    CauseIn,
    ConfirmIn,
    ContactIn,
    MeasureIn,
    ProposeIn,
    SurveyIn,
)
from models import (
    LOCK,
    CauseAnalysis,
    Confirmation,
    Contact,
    Incident,
    Measure,
    Solution,
    Survey,
    session_scope,
    utcnow,
)

STAGES = ("response", "handling", "resolution", "follow_up", "closed")


def advance(incident: Incident, stage: str) -> None:
    """Statuses only move forward through the four stages."""
    if STAGES.index(stage) > STAGES.index(incident.status):
        incident.status = stage


def _open(session: Session, incident_id: str) -> Incident:
    incident = session.get(Incident, incident_id, with_for_update=LOCK)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    if incident.status == "closed":
        raise Conflict(f"{incident_id} is closed")
    return incident


def _latest(session: Session, model: Any, incident_id: str, **where: Any) -> Any:
    stmt = select(model).where(model.incident_id == incident_id).filter_by(**where)
    return session.scalars(stmt.order_by(model.id.desc())).first()


def contact(incident_id: str, body: ContactIn, now: datetime | None = None) -> dict[str, Any]:
    """A contact with the customers named (none named: the opening customer).

    Each named customer's own first contact is met (incident/deadlines/customers.py). The incident's
    first contact moves its run on. A later contact is a progress update when it reaches a customer
    contacted before, names nobody, or carries an update's text (``update``); one that only reaches
    customers for the first time is their first contact, not an update, and the cadence is not reset:
    it counts from the last update. The update's text goes to the customers who consented
    (incident/response/updates.py).
    """
    now = now or utcnow()
    with session_scope() as s:
        inc = _open(s, incident_id)
        named = duties.resolve(s, inc, body.customers) if body.customers else duties.opening(s, inc)
        first = inc.first_contact_at is None
        reached = duties.reach(s, inc, named, now)
        again = not body.customers or body.update is not None or any(not r.first for r in reached)
        is_update = not first and again
        on_time = all(r.on_time for r in reached if r.first)
        if is_update:
            on_time = deadlines.meet(s, inc, "progress", now) and on_time
        if first:
            inc.first_contact_at = now
        if (first or is_update) and inc.resolved_at is None:  # the cadence counts from the last update
            rules = playbooks.get(inc.category).level(inc.level)
            deadlines.open_one(
                s, inc, "progress", deadlines.due(inc, "progress", now, rules.progress_every), now
            )
        subjects = [r.subject for r in reached if r.subject]
        row = Contact(incident_id=inc.id, at=now, by=body.by, note=body.note, first=first, on_time=on_time,
                      progress_update=is_update, customers=subjects, message=body.update)  # fmt: skip
        s.add(row)
        kind = "first contact" if first else "progress update" if is_update else "customer contact"
        data = {"first": first, "on_time": on_time, "customers": subjects, "progress_update": is_update}
        timeline.add(
            s, inc.id, "contacted", body.by, kind + ("" if on_time else " (late)"), data=data, now=now
        )
        advance(inc, "handling")
        answer = {"incident_id": inc.id, "contacted_at": now.isoformat(), "on_time": on_time, "first": first,
                  "progress_update": is_update, "customers": subjects,
                  "contact_progress": duties.progress(s, inc.id, now)}  # fmt: skip
        if body.update is not None:
            s.flush()  # the contact's id: each customer's message names it
            answer["messages"] = updates.owe(s, inc, row, named if body.customers else None, now)
        return answer


def measure(incident_id: str, body: MeasureIn, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with session_scope() as s:
        inc = _open(s, incident_id)
        menu = playbooks.get(inc.category).measures
        if body.kind not in menu:
            raise BadInput(f"measure {body.kind!r} is not for {inc.category}; choose {', '.join(menu)}")
        s.add(Measure(incident_id=inc.id, at=now, by=body.by, kind=body.kind, note=body.note))
        timeline.add(s, inc.id, "measure_taken", body.by, body.kind, now=now)
        advance(inc, "handling")
        return {"incident_id": inc.id, "measure": body.kind}


def cause(incident_id: str, body: CauseIn, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with session_scope() as s:
        inc = _open(s, incident_id)
        if _latest(s, Solution, inc.id, status="approved") and inc.resolved_at:
            raise Conflict(f"{incident_id} is resolved; its cause analysis is closed")
        owner = playbooks.get(inc.category).cause_owner
        s.add(
            CauseAnalysis(
                incident_id=inc.id,
                at=now,
                by=body.by,
                owner_group=owner,
                root=body.root,
                direct=body.direct,
                stage=body.stage,
            )
        )
        timeline.add(s, inc.id, "cause_recorded", body.by, body.stage, now=now)
        advance(inc, "resolution")
        again = recurrence.on_cause(s, inc, body.root, body.by, now)
        return {"incident_id": inc.id, "owner_group": owner, "recurrence_of": again}


def propose(incident_id: str, body: ProposeIn, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with session_scope() as s:
        inc = _open(s, incident_id)
        book = playbooks.get(inc.category)
        if body.solution not in book.solutions:
            raise BadInput(
                f"solution {body.solution!r} is not for {inc.category}; choose {', '.join(book.solutions)}"
            )
        if book.solutions[body.solution].legal_review and not body.legal_reviewed:
            raise BadInput(
                f"legal_reviewed: a {body.solution} must be reviewed by the legal group before it is "
                "proposed; propose it again with --legal-reviewed once they have"
            )
        if _latest(s, CauseAnalysis, inc.id) is None:
            raise Conflict(f"{incident_id}: record the cause analysis before proposing a solution")
        current = _latest(s, Solution, inc.id, round=inc.solution_round)
        if current is not None:
            raise Conflict(f"{incident_id}: solution round {inc.solution_round} is already {current.status}")
        approver = book.level(inc.level).approver
        s.add(
            Solution(
                incident_id=inc.id,
                round=inc.solution_round,
                kind=body.solution,
                note=body.note,
                proposed_at=now,
                proposed_by=body.by,
                approver_role=approver,
                legal_reviewed=body.legal_reviewed,
            )
        )
        window = book.level(inc.level).approval_within
        deadlines.open_one(s, inc, "approval", deadlines.due(inc, "approval", now, window), now)
        timeline.add(
            s,
            inc.id,
            "solution_proposed",
            body.by,
            body.solution,
            data={"round": inc.solution_round},
            now=now,
        )
        advance(inc, "resolution")
        return {"incident_id": inc.id, "awaiting_approval_by": approver, "round": inc.solution_round}


def approve(incident_id: str, body: ApproveIn, now: datetime | None = None) -> dict[str, Any]:
    """Only the level's approver role decides; a refusal is recorded, then raised (403)."""
    now = now or utcnow()
    refused: str | None = None
    with session_scope() as s:
        inc = _open(s, incident_id)
        sol = _latest(s, Solution, inc.id, round=inc.solution_round, status="pending")
        if sol is None:
            raise Conflict(f"{incident_id}: no proposed solution awaits approval")
        if not body.by or not body.role:
            raise BadInput("an approval needs by and role")
        if body.role != sol.approver_role:
            refused = (
                f"role {body.role!r} may not approve a level-{inc.level} solution (needs {sol.approver_role})"
            )
            data = timeline.refusal(refused, role=body.role)
            timeline.add(s, inc.id, "approval_refused", body.by, refused, data=data, now=now)
        elif body.reject and not body.reason:
            raise BadInput("a rejection needs --reason")
        else:
            needs_review = playbooks.get(inc.category).solutions[sol.kind].legal_review
            sol.legal_reviewed = sol.legal_reviewed or body.legal_reviewed
            if not body.reject and needs_review and not sol.legal_reviewed:
                raise Conflict(f"{incident_id}: a {sol.kind} must be legally reviewed (--legal-reviewed)")
            sol.status = "rejected" if body.reject else "approved"
            sol.decided_at, sol.decided_by, sol.decided_role, sol.reason = (
                now,
                body.by,
                body.role,
                body.reason,
            )
            sol.deputy_of = getattr(body, "deputy_of", None)  # set only by authority.check
            deadlines.meet(s, inc, "approval", now)
            event = "solution_rejected" if body.reject else "solution_approved"
            timeline.add(
                s,
                inc.id,
                event,
                f"{body.by} ({body.role})",
                (body.reason or sol.kind) + (f"（代理 {sol.deputy_of}）" if sol.deputy_of else ""),
                data={
                    "round": sol.round,
                    "deputy_of": sol.deputy_of,
                    "solution": sol.kind,
                    "role": body.role,
                    "reason": body.reason,
                },
                now=now,
            )
            if body.reject:
                inc.solution_round += 1
            else:  # the customer is asked now: the clocks the playbook says wait for the answer stop
                deadlines.pause(s, inc, "waiting_customer", now)
    if refused:
        raise Forbidden(refused)
    return {"incident_id": incident_id, "approved": not body.reject, "round": sol.round}


def confirm(incident_id: str, body: ConfirmIn, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with session_scope() as s:
        inc = _open(s, incident_id)
        sol = _latest(s, Solution, inc.id, round=inc.solution_round, status="approved")
        if sol is None:
            raise Conflict(f"{incident_id}: no approved solution awaits the customer's confirmation")
        if inc.resolved_at is not None:
            raise Conflict(f"{incident_id}: already confirmed as resolved")
        s.add(
            Confirmation(
                incident_id=inc.id, round=sol.round, at=now, by=body.by, result=body.result, note=body.note
            )
        )
        timeline.add(s, inc.id, "confirmed", body.by, body.result, data={"round": sol.round}, now=now)
        deadlines.resume(s, inc, sol.decided_at or now, now)
        if body.result == "unsatisfied":  # back to a new proposal round
            inc.solution_round += 1
        else:
            inc.resolved_at = now
            deadlines.cancel(s, inc, "progress", now)
            rules = playbooks.get(inc.category).level(inc.level)
            due = deadlines.due(inc, "postmortem", now, rules.postmortem_due)
            deadlines.open_one(s, inc, "postmortem", due, now)
            advance(inc, "follow_up")
        return {"incident_id": inc.id, "status": inc.status, "resolved": inc.resolved_at is not None}


def survey(incident_id: str, body: SurveyIn, now: datetime | None = None) -> dict[str, Any]:
    """Each survey closes its follow-up round; below the level's target opens the next round."""
    now = now or utcnow()
    with session_scope() as s:
        inc = _open(s, incident_id)
        if inc.resolved_at is None:
            raise Conflict(f"{incident_id}: survey the customer after the resolution is confirmed")
        score = round((body.speed + body.result + body.attitude) / 3, 2)
        this_round = inc.follow_up_round
        if _latest(s, Survey, inc.id, round=this_round) is not None:  # also a unique index
            raise Conflict(f"{incident_id}: the survey of follow-up round {this_round} is already recorded")
        s.add(
            Survey(
                incident_id=inc.id,
                round=this_round,
                at=now,
                by=body.by,
                speed=body.speed,
                result=body.result,
                attitude=body.attitude,
                suggestion=body.suggestion,
                score=score,
            )
        )
        s.flush()
        share = _good_share(s, inc.id, this_round)
        target = playbooks.get(inc.category).level(inc.level).satisfaction_target
        met = share >= target
        timeline.add(
            s,
            inc.id,
            "survey_recorded",
            body.by,
            f"{score}",
            data={"round": this_round, "share": share, "target": target},
            now=now,
        )
        if not met:
            inc.follow_up_round += 1
            timeline.add(
                s,
                inc.id,
                "follow_up_round",
                "system",
                f"round {inc.follow_up_round}",
                data={"round": inc.follow_up_round, "share": share, "target": target},
                now=now,
            )
        return {
            "incident_id": inc.id,
            "score": score,
            "target_met": met,
            "share": share,
            "target": target,
            "round": this_round,
        }


def _good_share(s: Session, incident_id: str, round_: int) -> float:
    """CSAT: the share of the round's surveys whose mean score is 4 or more."""
    base = select(func.count(Survey.id)).where(Survey.incident_id == incident_id, Survey.round == round_)
    total = s.scalar(base) or 0
    good = s.scalar(base.where(Survey.score >= 4)) or 0
    return round(good / total, 4) if total else 0.0


def answer(session: Session, incident_id: str, key: str) -> dict[str, Any] | None:
    """The stored answer for a flow's waiting point (``contact``, ``approval-2`` …), if given yet."""
    step, _, number = key.partition("-")
    n = int(number) if number.isdigit() else None
    inc = session.get(Incident, incident_id)
    if inc is None:
        return None
    if step == "contact":
        row = _latest(session, Contact, incident_id, first=True)
        return row and {"by": row.by, "note": row.note}
    if step == "measure":
        row = _latest(session, Measure, incident_id)
        return row and {"kind": row.kind, "by": row.by, "note": row.note}
    if step == "cause":
        row = _latest(session, CauseAnalysis, incident_id)
        return row and {"root": row.root, "direct": row.direct, "stage": row.stage, "by": row.by}
    if step == "proposal":
        row = _latest(session, Solution, incident_id, round=n)
        return row and {
            "solution": row.kind,
            "by": row.proposed_by,
            "note": row.note,
            "legal_reviewed": row.legal_reviewed,
        }
    if step == "approval":
        row = _latest(session, Solution, incident_id, round=n)
        if row is None or row.status == "pending":
            return None
        return {
            "by": row.decided_by,
            "role": row.decided_role,
            "reject": row.status == "rejected",
            "reason": row.reason,
            "legal_reviewed": row.legal_reviewed,
        }
    if step == "confirmation":
        row = _latest(session, Confirmation, incident_id, round=n)
        return row and {"result": row.result, "by": row.by, "note": row.note}
    if step == "survey":
        row = session.scalars(
            select(Survey).where(Survey.incident_id == incident_id, Survey.round == n).order_by(Survey.id)
        ).first()
        return row and {
            "speed": row.speed,
            "result": row.result,
            "attitude": row.attitude,
            "suggestion": row.suggestion,
            "by": row.by,
        }
    raise ValueError(f"unknown waiting point {key!r}")

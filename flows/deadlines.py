"""``watch_deadlines``: warn before a deadline, escalate once when it is missed.

Deadlines are rows (see incident/deadlines.py), so the watcher is stateless and survives restarts:
the service runs it every few seconds, but only when a cheap query finds something to do, so
Prefect's UI shows a run for each tick that warned or escalated, not for every idle tick. A claim is
an ``UPDATE … WHERE state IN (…)`` committed together with its timeline events: two watchers never
send the same warning or escalation twice, and a miss is on the timeline exactly when it is counted.

Who is told (playbook of the incident's *current* level):
- warning (``warn_before`` ahead): the lead and the owner of the deadline; the notice is
  ``postmortem_due`` / ``progress_due`` for those kinds, ``deadline_warning`` otherwise;
- an improvement action (kind ``action``, one row per action) is reminded ``action_remind_before`` ahead
  and escalated when overdue (``action_due`` / ``action_overdue``), to the lead and quality control;
  post-mortem and action deadlines are watched after the incident is closed too;
- miss: ``escalate_to`` (L3 → cs_director, L2 → leadership, L1 → duty_manager), the lead and the
  owner; ``postmortem_overdue`` for a post-mortem, ``deadline_missed`` otherwise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow
from sqlalchemy import or_, select, update

import playbooks
from flows.notices import deadline_context, tell
from incident.deadlines import service as deadlines
from incident.incidents import timeline
from models import Deadline, Incident, session_scope, utcnow

RESPONSIBLE = {"contact": "customer_service", "progress": "customer_service", "action": "quality_control"}
WARN_NOTICE = {"postmortem": "postmortem_due", "progress": "progress_due", "action": "action_due"}
MISS_NOTICE = {"postmortem": "postmortem_overdue", "action": "action_overdue"}
# Watched after the incident is closed too: the post-mortem meeting and the improvement actions follow it.
AFTER_CLOSE = ("postmortem", "action")


def max_warn() -> timedelta:
    """The longest ``warn_before`` of any playbook: how far ahead the candidate query must look."""
    books = playbooks.load_all().values()
    return max(_warn_before("action", r) for book in books for r in book.levels.values())


def _warn_before(kind: str, rules: playbooks.LevelRules) -> timedelta:
    """An improvement action is reminded ``action_remind_before`` ahead (days), the rest ``warn_before``."""
    return max(rules.action_remind_before, rules.warn_before) if kind == "action" else rules.warn_before


def _candidates(now: datetime) -> list[tuple[Deadline, Incident]]:
    with session_scope() as s:
        rows = s.execute(
            select(Deadline, Incident)
            .join(Incident, Incident.id == Deadline.incident_id)
            .where(
                Deadline.state.in_(deadlines.ACTIVE),
                Deadline.due_at <= now + max_warn(),
                or_(Incident.status != "closed", Deadline.kind.in_(AFTER_CLOSE)),
            )
            .order_by(Deadline.due_at)
        ).all()
        return [(d, i) for d, i in rows]


def _warn_due(deadline: Deadline, rules: playbooks.LevelRules, now: datetime) -> bool:
    return deadline.state == "pending" and deadline.due_at - _warn_before(deadline.kind, rules) <= now


def due_work(now: datetime | None = None) -> bool:
    """Is anything due for a warning or an escalation? (cheap; decides whether to start a run)"""
    now = now or utcnow()
    for deadline, inc in _candidates(now):
        rules = playbooks.get(inc.category).level(inc.level)
        if deadline.due_at <= now or _warn_due(deadline, rules, now):
            return True
    return False


def _pending_solution(incident_id: str) -> str | None:
    with session_scope() as s:
        solution = deadlines.pending_solution(s, incident_id)
        return solution.kind if solution else None


def _action(deadline_id: int) -> dict[str, Any]:
    from incident.actions.service import context

    with session_scope() as s:
        return context(s, deadline_id)


def _owner(deadline: Deadline, rules: playbooks.LevelRules) -> str:
    """Who must act: customer service for contacts, the approver for approvals, else the lead."""
    if deadline.kind == "approval":
        return rules.approver
    return RESPONSIBLE.get(deadline.kind, rules.lead)


def _claim_miss(deadline: Deadline, escalate_to: list[str], now: datetime) -> bool:
    """Mark the deadline missed and put the miss on the timeline, in one transaction."""
    with session_scope() as s:
        claimed = s.execute(
            update(Deadline)
            .where(Deadline.id == deadline.id, Deadline.state.in_(deadlines.ACTIVE))
            .values(state="missed", missed_at=now, escalated_to=",".join(escalate_to))
        ).rowcount
        if claimed != 1:
            return False
        data = {"kind": deadline.kind, "due_at": deadline.due_at.isoformat()}
        timeline.add(s, deadline.incident_id, "deadline_missed", "watcher", deadline.kind, now=now, data=data)
        timeline.add(
            s,
            deadline.incident_id,
            "escalated",
            "watcher",
            ",".join(escalate_to),
            now=now,
            data={**data, "to": escalate_to},
        )
        if deadline.kind == "progress":
            deadlines.next_progress(s, s.get_one(Incident, deadline.incident_id), deadline.due_at, now)
    return True


def _claim_warning(deadline: Deadline, now: datetime) -> bool:
    with session_scope() as s:
        claimed = s.execute(
            update(Deadline)
            .where(Deadline.id == deadline.id, Deadline.state == "pending")
            .values(state="warned", warned_at=now)
        ).rowcount
        if claimed == 1:
            timeline.add(s, deadline.incident_id, "deadline_warned", "watcher", deadline.kind, now=now)
        return claimed == 1


@flow(name="watch_deadlines")
async def watch_deadlines(now: datetime | None = None) -> dict[str, int]:
    """One pass over the deadlines; ``now`` is injectable so tests move time instead of sleeping."""
    now = now or utcnow()
    warned = missed = 0
    for deadline, inc in _candidates(now):
        rules = playbooks.get(inc.category).level(inc.level)
        owner, ctx = _owner(deadline, rules), deadline_context(deadline.due_at, deadline.kind, now)
        if deadline.kind == "approval":
            ctx.update(solution=_pending_solution(inc.id), approver_role=owner)
        elif deadline.kind == "action":
            ctx.update(_action(deadline.id))
        if deadline.due_at <= now:
            escalate_to = list(rules.escalate_to)
            if not _claim_miss(deadline, escalate_to, now):
                continue
            notice = MISS_NOTICE.get(deadline.kind, "deadline_missed")
            await tell(inc.id, notice, [*escalate_to, rules.lead, owner], escalated_from=rules.lead, **ctx)
            missed += 1
        elif _warn_due(deadline, rules, now):
            if not _claim_warning(deadline, now):
                continue
            await tell(inc.id, WARN_NOTICE.get(deadline.kind, "deadline_warning"), [rules.lead, owner], **ctx)
            warned += 1
    return {"warned": warned, "missed": missed}

"""``watch_deadlines``: warn before a deadline; when it is missed, run the level's escalation chain.

Deadlines are rows (see incident/deadlines.py), so the watcher is stateless and survives restarts:
the service runs it every few seconds, but only when a cheap query finds something to do, so
Prefect's UI shows a run for each tick that warned or escalated, not for every idle tick. A claim is
an ``UPDATE … WHERE state IN (…)`` committed together with its timeline events: two watchers never
send the same warning or escalation twice, and a miss is on the timeline exactly when it is counted.

Who is told (playbook of the incident's *current* level):
- warning (``warn_before`` ahead): the lead and the owner of the deadline; the notice is
  ``postmortem_due`` / ``progress_due`` for those kinds, ``deadline_warning`` otherwise;
- an improvement action (kind ``action``, one row per action) is reminded ``action_remind_before`` ahead
  and escalated when overdue (``action_due`` / ``action_overdue``), to the lead and quality control, and
  to the action's owner on their own notify URLs when the owner is a person of the directory;
  post-mortem and action deadlines are watched after the incident is closed too;
- miss: the lead and the owner, and the chain's first step (``escalation`` in the playbook, L3 →
  cs_director, L2 → leadership, L1 → duty_manager); each later step after its delay, then the last
  step every ``repeat_every`` until ``incident ack`` (``incident.deadlines.chain``);
  ``postmortem_overdue`` for a post-mortem, ``deadline_missed`` otherwise. Every notice says how to
  acknowledge. Several deadlines of one incident in one sweep: one ``deadlines_summary`` notice.

Each customer of a storm is owed a first contact of their own (``incident.deadlines.customers``): their
warnings in one sweep are one notice per incident; the first of their misses starts the chain and later
ones join it silently (no second chain, no notice of their own), and a summary lists them as one line,
``首次联系：已联系 37/120，5 个超时``, which every notice of the incident carries anyway.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prefect import flow
from sqlalchemy import or_, select, update

import playbooks
from flows.notices import deadline_context, tell
from incident import settings
from incident.deadlines import chain
from incident.deadlines import customers as duties
from incident.deadlines import service as deadlines
from incident.incidents import timeline
from models import LOCK, Deadline, Incident, session_scope, utcnow

RESPONSIBLE = {
    "contact": "customer_service",
    "customer_contact": "customer_service",
    "progress": "customer_service",
    "action": "quality_control",
}
WARN_NOTICE = {"postmortem": "postmortem_due", "progress": "progress_due", "action": "action_due"}
MISS_NOTICE = {"postmortem": "postmortem_overdue", "action": "action_overdue"}


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
                or_(Incident.status != "closed", Deadline.kind.in_(chain.AFTER_CLOSE)),
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
    with session_scope() as s:
        return bool(chain.running(s, now))


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


STARTED, JOINED = "started", "joined"


def _claim_miss(deadline: Deadline, rules: playbooks.LevelRules, now: datetime) -> str | None:
    """Mark the deadline missed, start its chain and put the miss on the timeline, in one transaction.

    ``started``, or ``joined`` for a customer's contact missed while another customer's miss of the
    incident already runs the chain (it joins that chain silently), or None when another watcher
    claimed it first. The incident row is locked for a customer's duty so two watchers agree on which
    miss runs the chain."""
    values: dict[str, object] = {"state": "missed", "missed_at": now}
    with session_scope() as s:
        joins = False
        if deadline.kind in duties.DUTIES:
            s.get(Incident, deadline.incident_id, with_for_update=LOCK)
            joins = duties.chain_held(s, deadline.incident_id)
        if not joins:
            values.update(escalated_to=",".join(rules.escalate_to), **chain.start(rules, deadline.due_at))
        claimed = s.execute(
            update(Deadline)
            .where(Deadline.id == deadline.id, Deadline.state.in_(deadlines.ACTIVE))
            .values(**values)
        ).rowcount
        if claimed != 1:
            return None
        data = {"kind": deadline.kind, "due_at": deadline.due_at.isoformat(), "customer": deadline.subject}
        timeline.add(s, deadline.incident_id, "deadline_missed", "watcher", deadline.kind, now=now, data=data)
        if deadline.kind == "progress":
            deadlines.next_progress(s, s.get_one(Incident, deadline.incident_id), deadline.due_at, now)
    return JOINED if joins else STARTED


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


@dataclass
class Told:
    """What one sweep tells about one missed deadline: its miss, its chain's step, or both."""

    deadline: Deadline
    inc: Incident
    rules: playbooks.LevelRules
    roles: list[str]
    firing: chain.Firing | None = None


def _fire_chains(told: dict[int, Told], now: datetime) -> int:
    """Claim every chain step due by ``now`` (each in its own transaction); the steps claimed."""
    with session_scope() as s:
        running = chain.running(s, now)
    fired = 0
    for deadline, inc in running:
        rules = playbooks.get(inc.category).level(inc.level)
        firing = chain.due_firings(rules, deadline.due_at, deadline.chain_step, now)
        if firing is None:
            continue
        with session_scope() as s:
            if not chain.claim(s, deadline, firing, now):
                continue
        item = told.setdefault(deadline.id, Told(deadline, inc, rules, [rules.lead]))
        item.firing, item.roles = firing, [*firing.roles, *item.roles]
        fired += 1
    return fired


@flow(name="watch_deadlines")
async def watch_deadlines(now: datetime | None = None) -> dict[str, int]:
    """One pass over the deadlines; ``now`` is injectable so tests move time instead of sleeping."""
    now = now or utcnow()
    warned = missed = 0
    told: dict[int, Told] = {}
    owed_soon: dict[str, list[Deadline]] = defaultdict(list)  # customers' contacts warned, per incident
    for deadline, inc in _candidates(now):
        rules = playbooks.get(inc.category).level(inc.level)
        owner = _owner(deadline, rules)
        if deadline.due_at <= now:
            claimed = _claim_miss(deadline, rules, now)
            if claimed == STARTED:
                told[deadline.id] = Told(deadline, inc, rules, [rules.lead, owner])
            missed += 1 if claimed else 0
        elif _warn_due(deadline, rules, now) and _claim_warning(deadline, now):
            warned += 1
            if deadline.kind in duties.DUTIES:
                owed_soon[inc.id].append(deadline)
                continue
            ctx = _deadline_ctx(deadline, inc, rules, now)
            notice = WARN_NOTICE.get(deadline.kind, "deadline_warning")
            await tell(inc.id, notice, [rules.lead, owner], people=_named(ctx), **ctx)
    await _warn_customers(owed_soon, now)
    escalated = _fire_chains(told, now)
    by_incident: dict[str, list[Told]] = defaultdict(list)
    for item in told.values():
        by_incident[item.inc.id].append(item)
    for items in by_incident.values():
        await _tell_missed(items, now)
    return {"warned": warned, "missed": missed, "escalated": escalated}


async def _warn_customers(owed_soon: dict[str, list[Deadline]], now: datetime) -> None:
    """One warning per incident for the customers whose first contact falls due soon (the earliest's)."""
    for incident_id, rows in owed_soon.items():
        with session_scope() as s:
            inc = s.get_one(Incident, incident_id)
        rules = playbooks.get(inc.category).level(inc.level)
        earliest = min(rows, key=lambda row: row.due_at)
        ctx = _deadline_ctx(earliest, inc, rules, now)
        if len(rows) > 1:
            ctx["due_count"] = len(rows)
        await tell(incident_id, "deadline_warning", [rules.lead, _owner(earliest, rules)], **ctx)


def _deadline_ctx(
    deadline: Deadline, inc: Incident, rules: playbooks.LevelRules, now: datetime
) -> dict[str, Any]:
    ctx = deadline_context(deadline.due_at, deadline.kind, now)
    ctx["clock"] = rules.clock_of(deadline.kind)  # the notice says when it counts working hours only
    with session_scope() as s:  # overdue as of this sweep (its ``now``), not of the clock on the wall
        ctx["contact_progress"] = duties.progress(s, inc.id, now)
    if deadline.kind == "approval":
        ctx.update(solution=_pending_solution(inc.id), approver_role=_owner(deadline, rules))
    elif deadline.kind == "action":
        ctx.update(_action(deadline.id))
    return ctx


async def _tell_missed(items: list[Told], now: datetime) -> None:
    """One notice per incident per sweep: its one deadline's, or a summary of all that missed."""
    first = items[0]
    roles = list(dict.fromkeys(role for item in items for role in item.roles))
    hint = ack_hint(first.inc.id)
    if len(items) == 1:
        ctx = _deadline_ctx(first.deadline, first.inc, first.rules, now)
        if first.firing is not None:
            ctx.update(escalation_step=first.firing.last + 1, repeat=first.firing.repeat)
        notice = MISS_NOTICE.get(first.deadline.kind, "deadline_missed")
        await tell(
            first.inc.id, notice, roles, people=_named(ctx), escalated_from=first.rules.lead, **ctx, **hint
        )
        return
    with session_scope() as s:
        progress = duties.progress(s, first.inc.id, now)
    storm = progress["customers"] > 1 and any(item.deadline.kind in duties.DUTIES for item in items)
    missed = [
        {"kind": item.deadline.kind, "due_at": item.deadline.due_at.isoformat()}
        for item in sorted(items, key=lambda item: item.deadline.due_at)
        if not (storm and item.deadline.kind in duties.DUTIES)
    ]
    if storm:  # the customers' first contacts: one line, however many missed
        missed.insert(0, {"kind": duties.KIND, "progress": progress})
    await tell(
        first.inc.id, "deadlines_summary", roles, escalated_from=first.rules.lead, missed=missed,
        contact_progress=progress, **hint,
    )  # fmt: skip


def _named(ctx: dict[str, Any]) -> list[str]:
    """An improvement action's owner is told directly as well (when the directory knows them)."""
    return [ctx["action_owner"]] if ctx.get("action_owner") else []


def ack_hint(incident_id: str) -> dict[str, str]:
    """How to take the escalation on: the command, and the API link when the public URL is known."""
    hint = {"ack_command": f"incident ack {incident_id}"}
    public = settings.get().public_url
    if public:
        hint["ack_url"] = f"{public.rstrip('/')}/api/incidents/{incident_id}/ack"
    return hint

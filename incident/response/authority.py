"""Who may record each human step: the authenticated person, with the roles the directory gives them.

Every edge (API, console) acts through ``perform``: it checks the actor against the step, records a
refusal on the timeline (with who tried) and raises 403, or records the step as the person (``by`` is
their name, whatever ``--by`` said; ``--role`` must be one they hold).

Who may do what (``who_does`` in ``steps.py`` reads the playbook):

- ``approve``: only a person holding the level's approver role (``leadership`` at level 1,
  ``dept_head`` at 2 and 3), or their deputy within the period they named (代理审批,
  ``incident/people/deputies.py``: recorded as the deputy, for the principal), never whoever proposed the
  solution being decided (nor the deputy of the proposer). Not lenient otherwise: approval is the one
  decision the guide reserves (domain.md §4).
- ``confirm``, ``survey``: the customer service group; ``contact``: the same; ``measure``: the level's
  responders; ``cause``, ``propose``: the category's cause owner. Lenient on one point: the level's lead
  and the ``duty_manager`` may also record these, because at night or in a level-1 emergency the duty
  manager and the lead record what the groups report by phone; the timeline still names who recorded it.
- The service token is not a person. It may record ``contact``, ``measure``, ``cause`` and ``propose``
  under the name it gives (lenient: the call-centre, logistics and ticketing integrations report these
  facts by script, and they decide nothing), but it may not ``approve``, ``confirm`` or ``survey``: a
  decision or the customer's own verdict needs someone answerable for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

import playbooks
from incident.errors import BadInput, Conflict, Forbidden, NotFound
from incident.incidents import timeline
from incident.people import deputies
from incident.people.service import Actor
from incident.response.inputs import Answer, Approval
from incident.response.steps import Step, who_does
from models import Incident, Solution, session_scope, utcnow

SERVICE_MAY = frozenset({"contact", "measure", "cause", "propose"})
COORDINATORS = ("duty_manager",)  # plus the level's lead: see the module


def allowed_roles(step: Step, category: str, level: int) -> list[str]:
    """The roles that may record ``step`` for an incident of this category and level."""
    roles = who_does(step, category, level)
    if step.action == "approve":
        return roles
    lead = playbooks.get(category).level(level).lead
    return list(dict.fromkeys([*roles, lead, *COORDINATORS]))


def _refuse(incident_id: str, step: Step, actor: Actor, message: str, now: datetime, **data: Any) -> None:
    event = "approval_refused" if step.action == "approve" else "action_refused"
    with session_scope() as s:
        details = timeline.refusal(message, action=step.action, **data)
        timeline.add(s, incident_id, event, actor.name, message, data=details, now=now)
    raise Forbidden(message)


def _approval_role(
    s: Any, actor: Actor, wanted: str | None, needs: list[str], now: datetime
) -> tuple[str | None, str | None]:
    """The role the approval is made in, and for whom when the actor is a deputy (代理审批)."""
    role = wanted or next((r for r in needs if actor.holds(r)), None)
    if role is not None and actor.holds(role):
        return role, None
    for candidate in [role] if role else needs:
        principal = deputies.acting_for(s, actor.name, candidate, now)
        if principal is not None:
            return candidate, principal
    return role, None


def _check_approval(
    s: Any, incident: Incident, step: Step, actor: Actor, body: Any, now: datetime
) -> tuple[str | None, dict[str, Any]]:
    """A refusal (or None), the role the approval is made in and the principal a deputy acts for."""
    needs = allowed_roles(step, incident.category, incident.level)
    level = f"a level-{incident.level} solution needs {', '.join(needs)}"
    role, deputy_of = _approval_role(s, actor, body.role, needs, now)
    if role is None:
        return f"{actor.name} holds no role that may approve ({level})", {"roles": list(actor.roles)}
    if not actor.holds(role) and deputy_of is None:
        return f"{actor.name} does not hold role {role!r} ({level})", {"role": role}
    pending = s.scalars(
        select(Solution).where(
            Solution.incident_id == incident.id,
            Solution.round == incident.solution_round,
            Solution.status == "pending",
        )
    ).first()
    if pending is not None and pending.proposed_by == actor.name:
        return f"{actor.name} proposed this solution and may not approve it", {"role": role}
    if pending is not None and deputy_of is not None and pending.proposed_by == deputy_of:
        return (
            f"{actor.name} approves as deputy of {deputy_of}, who proposed this solution",
            {"role": role, "deputy_of": deputy_of},
        )
    return None, {"role": role, "deputy_of": deputy_of}


def check(incident_id: str, step: Step, actor: Actor, body: Any, now: datetime | None = None) -> Any:
    """The body to record for ``actor``, or a 403 after the refusal is on the timeline."""
    now = now or utcnow()
    with session_scope() as s:
        incident = s.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"no incident {incident_id}")
        if incident.status == "closed":
            raise Conflict(f"{incident_id} is closed")
        category, level = incident.category, incident.level
        if not actor.person:
            refusal = (
                None
                if step.action in SERVICE_MAY
                else (
                    f"the service token is not a person and may not {step.action}; use a person's token "
                    "(INCIDENT_TOKEN, see `incident people add`)"
                )
            )
            if refusal is None:
                return body
            data: dict[str, Any] = {}
        elif step.action == "approve":
            refusal, data = _check_approval(s, incident, step, actor, body, now)
            if refusal is None:
                decided = {**body.model_dump(), "by": actor.name, "role": data["role"]}
                return Approval(**decided, deputy_of=data["deputy_of"])
        else:
            needs = allowed_roles(step, category, level)
            refusal = (
                None
                if any(actor.holds(r) for r in needs)
                else (
                    f"{actor.name} may not {step.action} at level {level} of {category} "
                    f"(needs {', '.join(needs)}; holds {', '.join(actor.roles) or 'no role'})"
                )
            )
            data = {"roles": list(actor.roles)}
            if refusal is None:
                return body.model_copy(update={"by": actor.name})
    _refuse(incident_id, step, actor, refusal, now, **data)


def perform(step: Step, incident_id: str, body: Answer, actor: Actor | None) -> dict[str, Any]:
    """Check, then record the step as the actor (the API's and the console's one way to act)."""
    if actor is None:
        raise BadInput("no credential")  # never reached behind authentication; a guard, not a path
    return step.act(incident_id, check(incident_id, step, actor, body))

"""The post-mortem meeting and the lead's sign-off: what turns the generated draft into the final report.

Why a step of its own: the post-mortem's facts (timeline, deadlines, satisfaction) are generated, but
who met, what they found, what went well and badly in their eyes and what they decided only people
can say. Until a meeting is recorded the post-mortem is a draft and its deadline (the level's
``postmortem_due`` after resolution: 24/48/72 h) stays open, warned about and escalated by the
deadline watcher like any other; the meeting meets it (at the time it was held). The level's lead then
signs the report off; nobody else may.

The meeting comes after the resolution (the customer confirmed), before or after the incident closed.
Participants are looked up in the directory of people: a name found there is recorded with the roles
the directory gives it; a name not found (a supplier's engineer, a colleague not yet in the directory)
is kept as written and marked ``in_directory: false``, so an outside participant can be named without
being given a token or a role.

Who may record the meeting: the level's lead, ``quality_control``, the ``duty_manager``, or the service
token (a meeting-minutes tool reporting by script; it records facts and decides nothing). Sign-off: a
person holding the level's lead role only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, Field
from sqlalchemy import select

import playbooks
from incident.actions import service as actions
from incident.actions.service import ActionIn
from incident.deadlines import service as deadlines
from incident.errors import BadInput, Conflict, NotFound
from incident.incidents import timeline
from incident.inputs import Input
from incident.people.service import Actor
from models import LOCK, Incident, Meeting, Person, session_scope, utcnow

Name = Annotated[str, Field(min_length=1, max_length=200)]
Line = Annotated[str, Field(min_length=1, max_length=2000)]
Lines = Field(default_factory=list, max_length=50)


class MeetingIn(Input):
    at: AwareDatetime
    participants: list[Name] = Field(min_length=1, max_length=100)
    findings: list[Line] = Lines
    went_well: list[Line] = Lines
    went_badly: list[Line] = Lines
    decisions: list[Line] = Lines
    actions: list[ActionIn] = Field(default_factory=list, max_length=50)
    by: Name | None = None


class SignoffIn(Input):
    note: str | None = Field(None, max_length=2000)


def state(meeting: Meeting | None) -> str:
    """draft (no meeting yet) → final (met, awaiting sign-off) → signed."""
    if meeting is None:
        return "draft"
    return "signed" if meeting.signed_at else "final"


def _participants(s: Any, names: list[str]) -> list[dict[str, Any]]:
    unique = list(dict.fromkeys(n.strip() for n in names))
    found = {p.name: p for p in s.scalars(select(Person).where(Person.name.in_(unique)))}
    return [
        {"name": n, "roles": list(found[n].roles) if n in found else [], "in_directory": n in found}
        for n in unique
    ]


def record(incident_id: str, body: MeetingIn, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    if body.at > now:
        raise BadInput("at: a meeting is recorded once it has been held (at is in the future)")
    with session_scope() as s:
        inc = s.get(Incident, incident_id, with_for_update=LOCK)
        if inc is None:
            raise NotFound(f"no incident {incident_id}")
        if actor.person and not actions.may_review(actor, inc):
            lead = playbooks.get(inc.category).level(inc.level).lead
            message = (f"{actor.name} may not record the post-mortem meeting "
                       f"(needs {', '.join((lead, *actions.REVIEWERS))})")  # fmt: skip
        else:
            return _store(s, inc, body, actor, now)
    actions.refuse(incident_id, actor, "meeting", message, now)
    raise AssertionError("unreachable")


def _store(s: Any, inc: Incident, body: MeetingIn, actor: Actor, now: datetime) -> dict[str, Any]:
    if inc.resolved_at is None:
        raise Conflict(f"{inc.id}: the post-mortem meeting follows the resolution (not confirmed yet)")
    if body.at < inc.resolved_at.replace(second=0, microsecond=0):  # a time given to the minute
        raise BadInput(f"at: the meeting follows the resolution at {inc.resolved_at.isoformat()}")
    if s.scalars(select(Meeting).where(Meeting.incident_id == inc.id)).first() is not None:
        raise Conflict(f"{inc.id}: the post-mortem meeting is already recorded")
    by = actor.name if actor.person else (body.by or actor.name)
    people = _participants(s, body.participants)
    s.add(
        Meeting(
            incident_id=inc.id, at=body.at, recorded_at=now, by=by, participants=people,
            findings=body.findings, went_well=body.went_well, went_badly=body.went_badly,
            decisions=body.decisions,
        )
    )  # fmt: skip
    on_time = deadlines.meet(s, inc, "postmortem", body.at)
    detail = "、".join(p["name"] for p in people)
    timeline.add(s, inc.id, "meeting_held", by, detail, data={"on_time": on_time}, now=now)
    rows = actions.create(s, inc, body.actions, by, now, body.at)
    return {
        "incident_id": inc.id,
        "at": body.at.isoformat(),
        "on_time": on_time,
        "postmortem": "final",
        "participants": people,
        "actions": [actions.public(r, now) for r in rows],
    }


def signoff(incident_id: str, body: SignoffIn, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    with session_scope() as s:
        inc = s.get(Incident, incident_id, with_for_update=LOCK)
        if inc is None:
            raise NotFound(f"no incident {incident_id}")
        lead = playbooks.get(inc.category).level(inc.level).lead
        meeting = s.scalars(select(Meeting).where(Meeting.incident_id == inc.id)).first()
        if not actor.person or not actor.holds(lead):
            who = "the service token (not a person)" if not actor.person else actor.name
            message = f"{who} may not sign off a level-{inc.level} post-mortem (needs {lead})"
        elif meeting is None:
            raise Conflict(f"{incident_id}: record the post-mortem meeting before signing it off")
        elif meeting.signed_at is not None:
            raise Conflict(f"{incident_id}: the post-mortem is already signed off by {meeting.signed_by}")
        else:
            meeting.signed_at, meeting.signed_by, meeting.signed_role = now, actor.name, lead
            timeline.add(s, inc.id, "postmortem_signed", f"{actor.name} ({lead})", body.note, now=now)
            return {"incident_id": inc.id, "signed_by": actor.name, "role": lead, "postmortem": "signed",
                    "signed_at": now.isoformat()}  # fmt: skip
    actions.refuse(incident_id, actor, "signoff", message, now)
    raise AssertionError("unreachable")


def of(s: Any, incident_id: str) -> dict[str, Any] | None:
    """The meeting as ``incident show`` and the post-mortem read it (None before it is held)."""
    m = s.scalars(select(Meeting).where(Meeting.incident_id == incident_id)).first()
    if m is None:
        return None
    return {
        "at": m.at.isoformat(), "by": m.by, "participants": list(m.participants),
        "findings": list(m.findings), "went_well": list(m.went_well), "went_badly": list(m.went_badly),
        "decisions": list(m.decisions), "signed_by": m.signed_by, "signed_role": m.signed_role,
        "signed_at": m.signed_at.isoformat() if m.signed_at else None, "postmortem": state(m),
    }  # fmt: skip

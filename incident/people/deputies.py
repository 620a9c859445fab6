"""代理审批 (deputies): an approver lets another person of the directory approve in their role for a period.

Who may name a deputy: the principal themselves (a person holding the role), or the service token on
their behalf (``principal`` given: the administrator sets it up when the approver is unreachable). The
deputy must be in the directory; the period is at most ``MAX_DAYS`` and must end in the future.

When it counts (``acting_for``): at the moment of an approval, for an open delegation whose period holds,
whose principal still holds the role in the directory. The approval is then recorded as the deputy, "for"
the principal, on the timeline and in the post-mortem (``incident/response/authority.py``); a deputy
may not approve what the principal proposed (that would let the proposer approve through a friend).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

import playbooks
from incident.errors import BadInput, Forbidden, NotFound
from incident.inputs import Input
from incident.people import via
from incident.people.service import Actor
from models import Deputy, Person, session_scope, utcnow
from models.people import NAME_LENGTH

MAX_DAYS = 31


class DeputyIn(Input):
    deputy: str = Field(min_length=1, max_length=NAME_LENGTH)
    role: str = Field(min_length=1, max_length=32)
    ends_at: AwareDatetime
    starts_at: AwareDatetime | None = None  # default: now
    principal: str | None = Field(None, min_length=1, max_length=NAME_LENGTH)  # service token only

    @model_validator(mode="after")
    def _period(self) -> DeputyIn:
        if self.role not in playbooks.roles():
            raise ValueError(f"role: unknown role {self.role!r}")
        start = self.starts_at or utcnow()
        if self.ends_at <= max(start, utcnow()):
            raise ValueError("ends_at: the period must end after it starts and in the future")
        if self.ends_at - start > timedelta(days=MAX_DAYS):
            raise ValueError(f"ends_at: a delegation lasts at most {MAX_DAYS} days")
        return self


def _person(s: Session, name: str) -> Person | None:
    return s.scalars(select(Person).where(Person.name == name)).first()


def _public(row: Deputy) -> dict[str, Any]:
    return {
        "id": row.id, "principal": row.principal, "deputy": row.deputy, "role": row.role,
        "starts_at": row.starts_at.isoformat(), "ends_at": row.ends_at.isoformat(),
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
    }  # fmt: skip


def _principal(actor: Actor, body: DeputyIn) -> str:
    if actor.person:
        if body.principal not in (None, actor.name):
            raise Forbidden("principal: a person names deputies for themselves only")
        if not actor.holds(body.role):
            raise Forbidden(f"role: {actor.name} does not hold {body.role!r} and cannot delegate it")
        return actor.name
    if body.principal is None:
        raise BadInput("principal: the service token must say whose deputy this is")
    return body.principal


def add(actor: Actor, body: DeputyIn) -> dict[str, Any]:
    """Record the delegation; the principal and the deputy must be people of the directory."""
    principal = _principal(actor, body)
    if principal == body.deputy:
        raise BadInput("deputy: a person cannot be their own deputy")
    with session_scope() as s:
        owner = _person(s, principal)
        if owner is None or body.role not in owner.roles:
            raise BadInput(f"principal: {principal!r} is not in the directory with role {body.role!r}")
        if _person(s, body.deputy) is None:
            raise BadInput(f"deputy: {body.deputy!r} is not in the directory")
        row = Deputy(
            principal=principal, deputy=body.deputy, role=body.role, starts_at=body.starts_at or utcnow(),
            ends_at=body.ends_at, created_by=actor.name, created_at=utcnow(),
        )  # fmt: skip
        s.add(row)
        s.flush()
        via.note(f"{row.deputy} for {row.principal} as {row.role} until {row.ends_at.isoformat()}")
        return _public(row)


def list_deputies(include_past: bool = False) -> list[dict[str, Any]]:
    """Open delegations whose period has not ended (``include_past``: every one), soonest end first."""
    stmt = select(Deputy).order_by(Deputy.ends_at)
    if not include_past:
        stmt = stmt.where(Deputy.ended_at.is_(None), Deputy.ends_at > utcnow())
    with session_scope() as s:
        return [_public(r) for r in s.scalars(stmt)]


def end(actor: Actor, deputy_id: int) -> dict[str, Any]:
    """End a delegation early: its principal or the service token."""
    with session_scope() as s:
        row = s.get(Deputy, deputy_id)
        if row is None:
            raise NotFound(f"no delegation {deputy_id}")
        if actor.person and actor.name != row.principal:
            raise Forbidden(f"only {row.principal} or the service token may end delegation {deputy_id}")
        row.ended_at = row.ended_at or utcnow()
        via.note(f"{row.deputy} for {row.principal} as {row.role}")
        return _public(row)


def acting_for(s: Session, deputy: str, role: str, now: datetime) -> str | None:
    """The principal ``deputy`` may approve for in ``role`` at ``now``, or None."""
    rows = s.scalars(
        select(Deputy)
        .where(Deputy.deputy == deputy, Deputy.role == role, Deputy.ended_at.is_(None))
        .where(Deputy.starts_at <= now, Deputy.ends_at > now)
        .order_by(Deputy.id)
    )
    for row in rows:
        principal = _person(s, row.principal)
        if principal is not None and role in principal.roles:
            return row.principal
    return None

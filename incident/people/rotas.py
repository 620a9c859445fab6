"""Duty rotas (排班表): who is on duty for a role now, so a notice or an escalation to that role reaches
the person on duty rather than everyone who holds it.

Rules (``notifiers/roster.py`` applies them to each notice, reading the shifts itself: notifiers sit below
this package):
- A role with a shift covering now is served, among the directory's people, by the people on duty only;
  the others holding the role are not paged for it (the point of a rota).
- A role with no shift covering now (no rota, or a gap between shifts) is served by everyone who holds
  it: a gap in the rota must not silence the role. The roster file's URLs are told either way.
- Shifts may overlap (a hand-over, two on duty); a shift's person must be in the directory and hold the
  role when it is added.

Who manages rotas: the service token, or a person holding ``duty_manager`` (who runs the on-call plan).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, Field, ValidationError, model_validator
from sqlalchemy import select

import playbooks
from incident.errors import BadInput, Forbidden, NotFound
from incident.inputs import Input
from incident.people import via
from incident.people.service import Actor
from models import Person, RotaShift, session_scope, utcnow
from models.people import NAME_LENGTH

MANAGER = "duty_manager"
MAX_SHIFT = timedelta(days=14)


class ShiftIn(Input):
    role: str = Field(min_length=1, max_length=32)
    person: str = Field(min_length=1, max_length=NAME_LENGTH)
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _shift(self) -> ShiftIn:
        if self.role not in playbooks.roles():
            raise ValueError(f"role: unknown role {self.role!r}")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at: a shift must end after it starts")
        if self.ends_at - self.starts_at > MAX_SHIFT:
            raise ValueError("ends_at: a shift lasts at most 14 days")
        return self


class ShiftsIn(Input):
    shifts: list[ShiftIn] = Field(min_length=1, max_length=5000)


def _may_manage(actor: Actor) -> None:
    if actor.scope is not None or (actor.person and not actor.holds(MANAGER)):
        raise Forbidden(f"only the service token or a {MANAGER} manages duty rotas")


def _public(row: RotaShift) -> dict[str, Any]:
    return {"id": row.id, "role": row.role, "person": row.person, "starts_at": row.starts_at.isoformat(),
            "ends_at": row.ends_at.isoformat()}  # fmt: skip


def add_many(actor: Actor, shifts: list[ShiftIn]) -> list[dict[str, Any]]:
    """Add shifts in one transaction: one person not in the directory, or without the role, adds none."""
    _may_manage(actor)
    with session_scope() as s:
        roles = {p.name: set(p.roles) for p in s.scalars(select(Person))}
        for i, shift in enumerate(shifts, 1):
            if shift.role not in roles.get(shift.person, set()):
                where = f"shift {i}: " if len(shifts) > 1 else ""
                who = f"{shift.person!r} is not in the directory with role {shift.role!r}"
                raise BadInput(f"{where}person: {who}")
        rows = [RotaShift(**shift.model_dump(), created_at=utcnow()) for shift in shifts]
        s.add_all(rows)
        s.flush()
        first = rows[0]
        shown = f"{first.role} {first.person} {first.starts_at.isoformat()} – {first.ends_at.isoformat()}"
        via.note(shown if len(rows) == 1 else f"{len(rows)} shifts, the first: {shown}")
        return [_public(r) for r in rows]


def remove(actor: Actor, shift_id: int) -> dict[str, Any]:
    _may_manage(actor)
    with session_scope() as s:
        row = s.get(RotaShift, shift_id)
        if row is None:
            raise NotFound(f"no shift {shift_id}")
        s.delete(row)
        via.note(f"{row.role} {row.person}")
        return {**_public(row), "removed": True}


def list_shifts(role: str | None = None) -> list[dict[str, Any]]:
    """Shifts that have not ended, soonest first (``role``: one role's)."""
    stmt = select(RotaShift).where(RotaShift.ends_at > utcnow()).order_by(RotaShift.starts_at)
    if role is not None:
        stmt = stmt.where(RotaShift.role == role)
    with session_scope() as s:
        return [_public(r) for r in s.scalars(stmt)]


def who_is_on_duty(role: str | None = None) -> list[dict[str, Any]]:
    """For ``incident rota now``: each role (or one) with who is on duty and until when."""
    now = utcnow()
    stmt = select(RotaShift).where(RotaShift.starts_at <= now, RotaShift.ends_at > now)
    if role is not None:
        stmt = stmt.where(RotaShift.role == role)
    with session_scope() as s:
        rows = s.scalars(stmt.order_by(RotaShift.role, RotaShift.ends_at)).all()
        return [{"role": r.role, "person": r.person, "until": r.ends_at.isoformat()} for r in rows]


def read_csv(path: Path) -> list[dict[str, Any]]:
    """A rota as CSV: ``role,person,starts_at,ends_at`` (or 角色,姓名,开始,结束), ISO 8601 with offset."""
    headers = {"角色": "role", "姓名": "person", "开始": "starts_at", "结束": "ends_at"}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot be read ({exc})") from exc
    rows = []
    for line, raw in enumerate(csv.DictReader(io.StringIO(text)), 2):
        row = {headers.get(str(k).strip(), str(k).strip()): (v or "").strip() for k, v in raw.items() if k}
        try:
            rows.append(ShiftIn.model_validate(row).model_dump(mode="json"))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            raise BadInput(f"{path} line {line}: {field}: {first['msg']}") from exc
    if not rows:
        raise BadInput(f"{path}: no shifts (header role,person,starts_at,ends_at)")
    return rows

"""Response models of the directory and its safeguards: people, deputies, rotas, scoped tokens, the audit
and the reveal of customers' contacts.

Why apart from ``schemas.py``: that module holds the incident's own answers and grew past what one reader
holds in mind; these answers belong to ``incident/people`` (and the reveal, which the audit records).
"""

from __future__ import annotations

from typing import Literal

from incident.api.schemas import Out


class PersonOut(Out):
    name: str
    roles: list[str]


class PeopleOut(Out):
    """``GET /api/people``: names and roles only (no contact details, never a token)."""

    people: list[PersonOut]


class PersonAdded(PersonOut):
    """The person added, with their token: shown this once, stored only hashed."""

    token: str


class PeopleAdded(Out):
    people: list[PersonAdded]


class PersonRemoved(Out):
    name: str
    removed: bool
    shifts_removed: int = 0  # a person's shifts not yet over and delegations end with them
    delegations_ended: int = 0


class PersonUpdated(PersonOut):
    """The person as they are now; ``token`` only when a new one was asked for (shown this once)."""

    token: str | None = None
    shifts_removed: int = 0  # shifts and delegations of the roles they lost
    delegations_ended: int = 0


class AuditEvent(Out):
    at: str
    who: str
    action: str
    incident_id: str | None = None
    outcome: Literal["ok", "refused"]
    detail: str | None = None
    channel: str | None = None  # cli, api, console, prefect; null: before channels were recorded
    address: str | None = None


class RevealedCustomer(Out):
    feedback_id: str
    customer: str | None = None
    contact: str | None = None  # in full: this answer is the audited reveal
    channel: str


class RevealOut(Out):
    incident_id: str
    customers: list[RevealedCustomer]


class ScopedTokenAdded(Out):
    name: str
    scope: str
    token: str  # shown this once


class ScopedTokenRow(Out):
    name: str
    scope: str
    created_at: str


class ScopedTokensOut(Out):
    tokens: list[ScopedTokenRow]


class ShiftOut(Out):
    id: int
    role: str
    person: str
    starts_at: str
    ends_at: str


class ShiftsOut(Out):
    shifts: list[ShiftOut]


class OnDutyRow(Out):
    role: str
    person: str
    until: str


class OnDutyOut(Out):
    on_duty: list[OnDutyRow]


class DeputyOut(Out):
    id: int
    principal: str
    deputy: str
    role: str
    starts_at: str
    ends_at: str
    ended_at: str | None = None


class DeputiesOut(Out):
    deputies: list[DeputyOut]


class AuditOut(Out):
    """Oldest first; ``next``: pass it as ``since`` for the page after (null: nothing more)."""

    events: list[AuditEvent]
    next: str | None = None

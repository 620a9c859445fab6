"""The directory of people: add, list, remove, import an emergency contact list, and who a token is.

Who may manage it: the service token only (``views.py``): the directory is where authority comes from,
so a person may not grant themselves a role. Names are unique; the roles are the vocabulary's
(``playbooks.roles()``); a person's apprise URLs are told whatever their roles are told, besides the
roster's URLs (``notifiers``). Adding many (an import) is one transaction: one bad row stores nothing.

Why removing a person takes their shifts and delegations with them (``_release``): rotas and deputies
name people by name. A removed person left on a shift would keep the role "served" by nobody (the
others holding it are not paged while someone is on duty), and someone added later under the same name
would inherit the shifts and the right to approve as a deputy. Shifts not yet over are deleted (past
ones stay: who was on duty last night is history), delegations given or received are ended; the
request's audit row says how many (``via.note``). Changing someone's roles (``update``) does the same
for the roles they lose. Changing a token (``update(new_token=True)``) keeps everything else: the old
token and every console session opened with it stop working at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import playbooks
from incident.errors import BadInput, Conflict, NotFound
from incident.inputs import Input
from incident.people import tokens, via
from models import Deputy, Person, RotaShift, ScopedToken, session_scope, utcnow
from models.people import NAME_LENGTH


@dataclass(frozen=True)
class Actor:
    """Who a request is: a person of the directory (their roles), or the service token (no roles)."""

    name: str
    roles: tuple[str, ...] = field(default=())
    person: bool = True
    scope: str | None = None  # a system's scoped token: what it may do (``incident/people/scoped.py``)

    def holds(self, role: str) -> bool:
        return role in self.roles


SERVICE = Actor("service token", (), person=False)
_cache: tokens.Cache[Actor] = tokens.Cache()


def _known_roles(value: list[str]) -> list[str]:
    known = playbooks.roles()
    for role in value:
        if role not in known:
            raise ValueError(f"unknown role {role!r}; use one of {', '.join(known)}")
    return list(dict.fromkeys(value))


def _urls(value: list[str]) -> list[str]:
    for url in value:
        if "://" not in url or len(url) > 2000:
            raise ValueError(f"not an apprise URL: {url[:80]!r} (scheme://…)")
    return list(dict.fromkeys(u.strip() for u in value))


def _email(value: str | None) -> str | None:
    if value is not None and value != "" and "@" not in value:
        raise ValueError("not an e-mail address")
    return value


class PersonIn(Input):
    name: str = Field(min_length=1, max_length=NAME_LENGTH)
    roles: list[str] = Field(min_length=1, max_length=20)
    notify: list[str] = Field(default_factory=list, max_length=20)
    phone: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=254)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        return _known_roles(value)

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: list[str]) -> list[str]:
        return _urls(value)

    @field_validator("email")
    @classmethod
    def _mail(cls, value: str | None) -> str | None:
        return _email(value)


class PersonUpdate(Input):
    """What ``incident people update`` changes; a field left out stays ("" clears phone or e-mail)."""

    roles: list[str] | None = Field(None, min_length=1, max_length=20)
    notify: list[str] | None = Field(None, max_length=20)
    phone: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=254)
    new_token: bool = False  # a lost token: a new one, shown once; the old one stops working

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _known_roles(value)

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _urls(value)

    @field_validator("email")
    @classmethod
    def _mail(cls, value: str | None) -> str | None:
        return _email(value)


class PeopleIn(Input):
    people: list[PersonIn] = Field(min_length=1, max_length=1000)


def _public(person: Person) -> dict[str, Any]:
    return {"name": person.name, "roles": list(person.roles)}


def _insert(session: Session, body: PersonIn) -> dict[str, Any]:
    made = tokens.make()
    session.add(
        Person(
            name=body.name,
            roles=body.roles,
            notify=body.notify,
            phone=body.phone,
            email=body.email,
            token_id=made.token_id,
            token_hash=made.token_hash,
            created_at=utcnow(),
        )
    )
    return {"name": body.name, "roles": body.roles, "token": made.token}


def add_many(bodies: list[PersonIn]) -> list[dict[str, Any]]:
    """Add people in one transaction; each one's token is in the answer and nowhere else."""
    names = [b.name for b in bodies]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadInput(f"name given twice: {', '.join(twice)}")
    try:
        with session_scope() as s:
            taken = s.scalars(select(Person.name).where(Person.name.in_(names))).all()
            if taken:
                raise Conflict(f"already in the directory: {', '.join(sorted(taken))}")
            added = [_insert(s, body) for body in bodies]
    except IntegrityError as exc:  # the same name added at the same moment by someone else
        raise Conflict(f"already in the directory: {', '.join(names)}") from exc
    via.note(f"added {', '.join(names[:20])}" + (f" and {len(names) - 20} more" if len(names) > 20 else ""))
    return added


def add(body: PersonIn) -> dict[str, Any]:
    return add_many([body])[0]


def list_people(session: Session | None = None) -> list[dict[str, Any]]:
    if session is None:
        with session_scope() as s:
            return list_people(s)
    return [_public(p) for p in session.scalars(select(Person).order_by(Person.name))]


def _release(session: Session, name: str, roles: set[str] | None = None) -> dict[str, int]:
    """End ``name``'s shifts not yet over and the delegations they gave or received (only those of
    ``roles`` when given: the roles they lose). See the module."""
    now = utcnow()
    shifts = delete(RotaShift).where(RotaShift.person == name, RotaShift.ends_at > now)
    given = sql_update(Deputy).where(Deputy.ended_at.is_(None), Deputy.ends_at > now)
    if roles is not None:
        shifts = shifts.where(RotaShift.role.in_(roles))
        given = given.where(Deputy.role.in_(roles), Deputy.principal == name)
    else:
        given = given.where((Deputy.principal == name) | (Deputy.deputy == name))
    removed = int(session.execute(shifts).rowcount or 0)  # type: ignore[attr-defined]
    ended = int(session.execute(given.values(ended_at=now)).rowcount or 0)  # type: ignore[attr-defined]
    if removed or ended:
        via.note(f"{name}: {removed} shifts removed, {ended} delegations ended")
    return {"shifts_removed": removed, "delegations_ended": ended}


def _person(session: Session, name: str) -> Person:
    person = session.scalars(select(Person).where(Person.name == name)).first()
    if person is None:
        raise NotFound(f"no person named {name!r}")
    return person


def remove(name: str) -> dict[str, Any]:
    """Remove a person: their token stops working at once (this process forgets it too), and their
    shifts and delegations end with them (see the module)."""
    with session_scope() as s:
        person = _person(s, name)
        released = _release(s, name)
        s.delete(person)
    _cache.forget(name)
    return {"name": name, "removed": True, **released}


def update(name: str, body: PersonUpdate) -> dict[str, Any]:
    """Change a person's roles, channels, phone or e-mail, or give them a new token (shown this once)."""
    made = tokens.make() if body.new_token else None
    with session_scope() as s:
        person = _person(s, name)
        released = {"shifts_removed": 0, "delegations_ended": 0}
        if body.roles is not None:
            lost = set(person.roles) - set(body.roles)
            if lost:
                released = _release(s, name, lost)
            person.roles = body.roles
        if body.notify is not None:
            person.notify = body.notify
        if body.phone is not None:
            person.phone = body.phone or None
        if body.email is not None:
            person.email = body.email or None
        if made is not None:
            person.token_id, person.token_hash = made.token_id, made.token_hash
            via.note(f"{name}: new token")
        answer = {**_public(person), **released}
    _cache.forget(name)  # the roles or the token this process trusted are no longer theirs
    return {**answer, "token": made.token} if made is not None else answer


def identify(token: str) -> Actor | None:
    """The person (or the system, for a scoped token) a token belongs to, or None. Cached (``tokens.py``):
    one argon2 per TTL."""
    cached = _cache.get(token)
    if cached is not None:
        return cached
    ident = tokens.token_id(token)
    if ident is None:
        return None
    with session_scope() as s:
        person = s.scalars(select(Person).where(Person.token_id == ident)).first()
        if person is not None:
            name, token_hash, actor = person.name, person.token_hash, Actor(person.name, tuple(person.roles))
        else:
            system = s.scalars(select(ScopedToken).where(ScopedToken.token_id == ident)).first()
            if system is None:
                return None
            name, token_hash = system.name, system.token_hash
            actor = Actor(f"{system.name} ({system.scope} token)", (), person=False, scope=system.scope)
    if not tokens.verify(token, token_hash):
        return None
    _cache.put(token, actor, name)
    return actor


def cached(token: str) -> Actor | None:
    """The person a token is known to be without touching the database or argon2 (None: not known yet)."""
    return _cache.get(token)


def forget(name: str) -> None:
    """Drop ``name``'s verified tokens from this process's cache (a removed person or system token)."""
    _cache.forget(name)


def forget_all() -> None:
    _cache.clear()

"""Scoped tokens for systems: an intake token may only report feedback (and alarms and the ticket systems'
webhooks), a metrics token may only read the metrics. Managed by the service token only.

Why not the service token for a system: the service token manages people and reads every incident; a
call-centre script or a Prometheus server that holds it could do all that, and rotating it breaks every
system at once. A scoped token is named after its system, can be removed alone, and a leak gives away one
capability. It is not a person: it decides nothing, and its acts are recorded under its name.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from incident.errors import Conflict, NotFound
from incident.inputs import Input
from incident.people import service, tokens, via
from models import ScopedToken, session_scope, utcnow
from models.people import NAME_LENGTH

# What each scope may call: (method, path pattern). Anything else is 403 naming the scope.
PERMITS: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    "intake": [
        ("POST", re.compile(r"/api/feedback")),
        ("POST", re.compile(r"/api/alarms")),
        ("POST", re.compile(r"/api/integrations/[a-z0-9_-]+")),
    ],
    "metrics": [("GET", re.compile(r"/metrics")), ("GET", re.compile(r"/api/metrics(/chart\.png)?"))],
}
Scope = Literal["intake", "metrics"]


class ScopedTokenIn(Input):
    name: str = Field(min_length=1, max_length=NAME_LENGTH)
    scope: Scope


def permits(scope: str, method: str, path: str) -> bool:
    return any(method == m and pattern.fullmatch(path) for m, pattern in PERMITS.get(scope, []))


def add(body: ScopedTokenIn) -> dict[str, Any]:
    """A new token for a system; the answer carries it, shown this once and stored only hashed."""
    made = tokens.make()
    try:
        with session_scope() as s:
            if s.scalars(select(ScopedToken).where(ScopedToken.name == body.name)).first() is not None:
                raise Conflict(f"a token named {body.name!r} exists; remove it first")
            s.add(
                ScopedToken(name=body.name, scope=body.scope, token_id=made.token_id,
                            token_hash=made.token_hash, created_at=utcnow())
            )  # fmt: skip
    except IntegrityError as exc:
        raise Conflict(f"a token named {body.name!r} exists; remove it first") from exc
    via.note(f"{body.name} ({body.scope})")
    return {"name": body.name, "scope": body.scope, "token": made.token}


def list_tokens() -> list[dict[str, Any]]:
    with session_scope() as s:
        rows = s.scalars(select(ScopedToken).order_by(ScopedToken.name))
        return [{"name": r.name, "scope": r.scope, "created_at": r.created_at.isoformat()} for r in rows]


def remove(name: str) -> dict[str, Any]:
    """Remove a system's token: it stops working at once in this process."""
    with session_scope() as s:
        row = s.scalars(select(ScopedToken).where(ScopedToken.name == name)).first()
        if row is None:
            raise NotFound(f"no token named {name!r}")
        s.delete(row)
    service.forget(name)
    return {"name": name, "removed": True}

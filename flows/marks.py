"""Once-only side effects for flows that replay from the top after every resume."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from models import FlowMark, session_scope, utcnow


def once(incident_id: str, mark: str) -> bool:
    """True the first time this mark is set for the incident, False on every replay."""
    try:
        with session_scope() as session:
            session.add(FlowMark(incident_id=incident_id, mark=mark, at=utcnow()))
    except IntegrityError:
        return False
    return True

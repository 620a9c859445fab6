"""Reveal an incident's customers' contact details in full, to whom works the incident, and audit it.

Why a deliberate act (``POST``, one audit row each time) and not a field of ``show``: the agent who must
call within 30 minutes needs the real number (the customer issue form keeps it internally for this),
but everywhere else it stays masked (notices, post-mortems, logs, Prefect): a reveal is rare, named and
traceable, the way the guide's privacy rule asks. Who may: a person holding one of the playbook's
``contacts_visible_to`` roles (``customer_service`` by default) or the level's lead; never the service
token, which is no one who could be asked why.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

import playbooks
from incident.errors import Forbidden, NotFound
from incident.people import audit
from incident.people.service import Actor
from models import Feedback, Incident, session_scope


def allowed_roles(category: str, level: int) -> list[str]:
    book = playbooks.get(category)
    return list(dict.fromkeys([*book.contacts_visible_to, book.level(level).lead]))


def reveal(incident_id: str, actor: Actor, channel: str, address: str | None) -> dict[str, Any]:
    """The customers with their contacts unmasked, or 403; either way one access event."""
    with session_scope() as s:
        incident = s.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"no incident {incident_id}")
        needs = allowed_roles(incident.category, incident.level)
        rows = s.scalars(
            select(Feedback).where(Feedback.incident_id == incident_id).order_by(Feedback.received_at)
        ).all()
        customers = [
            {"feedback_id": f.id, "customer": f.customer_name, "contact": f.contact, "channel": f.channel}
            for f in rows
        ]
    if not actor.person or not any(actor.holds(r) for r in needs):
        why = f"{actor.name} may not see customers' contacts (needs {', '.join(needs)})"
        audit.record_access(actor.name, "reveal", "refused", channel=channel, address=address,
                            incident_id=incident_id, detail=why)  # fmt: skip
        raise Forbidden(why)
    audit.record_access(actor.name, "reveal", "ok", channel=channel, address=address,
                        incident_id=incident_id, detail=f"{len(customers)} customers")  # fmt: skip
    return {"incident_id": incident_id, "customers": customers}

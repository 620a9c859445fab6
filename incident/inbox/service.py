"""The inbox: feedback that opens no incident (suggestions, inquiries, praise), routed to its group.

Why routing is a claim on the row: the feedback's ``handle_feedback`` run may be replayed (a worker
killed mid-run, the sweep, a second worker taking a stale claim). Only the one UPDATE that sets
``routed_at`` while it is still NULL sends the owning group its notice, so each item is announced once.
Answering, closing and promoting are conditional UPDATEs too: two people acting at once get one
success and one 409, never a half-done item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

import playbooks
from incident.errors import Conflict, NotFound
from incident.feedback.privacy import mask_contact, mask_text
from incident.people import via
from models import Feedback, session_scope, utcnow

STATUSES = ("open", "answered", "closed", "promoted")
DEFAULT_OWNER = "customer_service"  # feedback without a category: the customer service group
LIMIT = 500


def owning_group(category: str | None) -> str:
    """The category's playbook names who answers its inbox (``inbox_owner``)."""
    if not category:
        return DEFAULT_OWNER
    return playbooks.get(category).inbox_owner


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _row(fb: Feedback) -> dict[str, Any]:
    return {
        "feedback_id": fb.id,
        "kind": fb.kind,
        "category": fb.category,
        "status": fb.inbox_status,
        "channel": fb.channel,
        "routed_to": fb.routed_to or owning_group(fb.category),
        "routed_at": _iso(fb.routed_at),
        "summary": mask_text(fb.summary),
        "customer": fb.customer_name,
        "contact": mask_contact(fb.contact) or None,
        "received_at": _iso(fb.received_at),
        "answer": mask_text(fb.answer) or None,
        "answered_by": fb.answered_by,
        "answered_at": _iso(fb.answered_at),
        "promoted_to": fb.promoted_to,
    }


def list_inbox(status: str | None = None, group: str | None = None) -> list[dict[str, Any]]:
    """Newest first; ``status`` one of STATUSES (default: everything in the inbox)."""
    with session_scope() as s:
        stmt = select(Feedback).where(Feedback.inbox_status.is_not(None))
        if status:
            stmt = stmt.where(Feedback.inbox_status == status)
        stmt = stmt.order_by(Feedback.received_at.desc(), Feedback.id.desc()).limit(LIMIT)
        rows = [_row(fb) for fb in s.scalars(stmt)]
    return [r for r in rows if not group or r["routed_to"] == group]


def get(feedback_id: str) -> dict[str, Any]:
    with session_scope() as s:
        fb = s.get(Feedback, feedback_id)
        if fb is None or fb.inbox_status is None:
            raise NotFound(f"no inbox item {feedback_id}")
        return _row(fb)


def claim_route(feedback_id: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The item to announce, if this caller is the first to route it; None when already routed."""
    with session_scope() as s:
        fb = s.get(Feedback, feedback_id)
        if fb is None or fb.inbox_status is None:
            return None
        group = owning_group(fb.category)
        done = s.execute(
            update(Feedback)
            .where(Feedback.id == feedback_id, Feedback.routed_at.is_(None))
            .values(routed_at=now or utcnow(), routed_to=group)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return {
            "feedback_id": fb.id,
            "feedback_kind": fb.kind,
            "category": fb.category,
            "summary": fb.summary,
            "routed_to": group,
        }


async def route(feedback_id: str) -> int:
    """Tell the owning group once; the number of channels it reached (0 when routed before)."""
    import asyncio

    import notifiers
    from incident import settings

    item = await asyncio.to_thread(claim_route, feedback_id)
    if item is None:
        return 0
    lang = settings.get().lang
    results = await notifiers.notify(
        "feedback_routed", [item["routed_to"]], item, incident_id=None, lang=lang
    )
    return sum(1 for r in results if r.status == "sent")


def _move(feedback_id: str, allowed: tuple[str, ...], **values: Any) -> dict[str, Any]:
    with session_scope() as s:
        done = s.execute(
            update(Feedback)
            .where(Feedback.id == feedback_id, Feedback.inbox_status.in_(allowed))
            .values(**values)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            fb = s.get(Feedback, feedback_id)
            if fb is None or fb.inbox_status is None:
                raise NotFound(f"no inbox item {feedback_id}")
            raise Conflict(f"{feedback_id} is {fb.inbox_status}; it cannot be changed now")
    return get(feedback_id)


def answer(feedback_id: str, text: str, by: str, close: bool = False) -> dict[str, Any]:
    """Record the reply given to the customer; ``close`` also closes the item."""
    via.name("inbox_answer")  # the audit's name for it, from the API and the console alike
    status = "closed" if close else "answered"
    return _move(
        feedback_id,
        ("open", "answered"),
        inbox_status=status,
        answer=text,
        answered_by=by,
        answered_at=utcnow(),
    )


def close(feedback_id: str, by: str) -> dict[str, Any]:
    via.name("inbox_close")
    return _move(feedback_id, ("open", "answered"), inbox_status="closed", answered_by=by)


def promotion(feedback_id: str, category: str | None) -> dict[str, Any]:
    """The report a promoted item becomes: the same facts, as a complaint of ``category``."""
    with session_scope() as s:
        fb = s.get(Feedback, feedback_id)
        if fb is None or fb.inbox_status is None:
            raise NotFound(f"no inbox item {feedback_id}")
        if fb.inbox_status not in ("open", "answered"):
            raise Conflict(f"{feedback_id} is {fb.inbox_status}; it cannot be promoted")
        fields = ("product_model", "serial", "batch", "service", "region", "cause", "purchase_date")
        body = {name: getattr(fb, name) for name in fields if getattr(fb, name)}
        return {
            **body,
            "kind": "complaint",
            "category": category or fb.category,
            "summary": fb.summary,
            "channel": fb.channel,
            "customer": fb.customer_name,
            "contact": fb.contact,
            "order": fb.order_no,
        }


def claim_promotion(feedback_id: str, by: str) -> None:
    """Only one promotion per item: the second caller gets 409 before a second incident is opened."""
    via.name("inbox_promote")
    _move(feedback_id, ("open", "answered"), inbox_status="promoted", answered_by=by, answered_at=utcnow())


def promoted(feedback_id: str, new_feedback_id: str) -> dict[str, Any]:
    via.note(f"{feedback_id} → {new_feedback_id}")
    with session_scope() as s:
        s.execute(update(Feedback).where(Feedback.id == feedback_id).values(promoted_to=new_feedback_id))
    return get(feedback_id)

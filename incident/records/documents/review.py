"""The people's part of the post-mortem, read for the dossier: the meeting and the improvement actions.

Apart from ``dossier.py`` because it is read from other tables (``meetings``, ``improvement_actions``)
and the dossier module is long enough; free text is masked as every other staff or customer text is.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from incident.feedback.privacy import mask_text
from incident.records.documents.snapshot import ActionItem, MeetingItem, ParticipantItem
from models import ImprovementAction, Meeting


def _text(value: str | None) -> str:
    return mask_text(value).strip() if value else ""


def meeting(session: Session, incident_id: str) -> MeetingItem | None:
    row = session.scalars(select(Meeting).where(Meeting.incident_id == incident_id)).first()
    if row is None:
        return None
    people = tuple(
        ParticipantItem(_text(p.get("name")), tuple(p.get("roles") or ()), bool(p.get("in_directory")))
        for p in row.participants or ()
    )
    return MeetingItem(
        at=row.at, by=_text(row.by), participants=people,
        findings=tuple(_text(x) for x in row.findings or ()),
        went_well=tuple(_text(x) for x in row.went_well or ()),
        went_badly=tuple(_text(x) for x in row.went_badly or ()),
        decisions=tuple(_text(x) for x in row.decisions or ()),
        signed_at=row.signed_at, signed_by=_text(row.signed_by), signed_role=row.signed_role,
    )  # fmt: skip


def actions(session: Session, incident_id: str, now: datetime) -> tuple[ActionItem, ...]:
    return tuple(
        ActionItem(
            id=r.id,
            kind=r.kind,
            owner=_text(r.owner),
            due_at=r.due_at,
            text=_text(r.text),
            status=r.status,
            overdue=r.status == "open" and r.due_at < now,
            closed_at=r.closed_at,
            evidence=_text(r.evidence),
        )  # fmt: skip
        for r in session.scalars(
            select(ImprovementAction)
            .where(ImprovementAction.incident_id == incident_id)
            .order_by(ImprovementAction.due_at, ImprovementAction.id)
        )
    )

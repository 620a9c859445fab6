"""Is a new incident a recurrence of a closed one? Said at intake, and again when its cause is known.

The same problem as the metrics count it (``incident.metrics.service``: the recurrence rate): the same
correlation key (product model + batch, service + region, outside cause + region: the key that joins
feedback into one open incident) or, once the cause analysis is recorded, the same root cause text
(normalised). Why here and at intake: a duty manager who reads "recurrence of INC…" in the opening
notice opens that incident's post-mortem and actions first, instead of analysing the problem anew.
``recurrence_of`` names the most recent closed incident that matches, and is set once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from incident.incidents import timeline
from models import CauseAnalysis, Incident

STANDALONE = "|feedback="  # a report with no correlation fields is its own problem


def of_keys(session: Session, keys: list[str]) -> dict[str, str]:
    """For each correlation key that has one, the latest closed incident with it (a key of one report
    has none). One query for a batch's new incidents: a storm's first reports open them by the dozen."""
    wanted = [key for key in keys if STANDALONE not in key]
    if not wanted:
        return {}
    stmt = (
        select(Incident.correlation_key, Incident.id)
        .where(Incident.correlation_key.in_(wanted), Incident.status == "closed")
        .order_by(Incident.identified_at, Incident.id)
    )
    return dict(session.execute(stmt).all())  # the latest of each key comes last


def on_cause(session: Session, incident: Incident, root: str, by: str, now: datetime) -> str | None:
    """After a cause analysis: a closed incident with the same root cause makes this a recurrence."""
    from incident.metrics.service import normalize_cause

    wanted = normalize_cause(root)
    if incident.recurrence_of is not None or not wanted:
        return incident.recurrence_of
    rows = session.execute(
        select(CauseAnalysis.incident_id, CauseAnalysis.root)
        .join(Incident, Incident.id == CauseAnalysis.incident_id)
        .where(Incident.status == "closed", Incident.id != incident.id)
        .order_by(Incident.identified_at.desc(), CauseAnalysis.id.desc())
    ).all()
    match = next((i for i, r in rows if normalize_cause(r) == wanted), None)
    if match is not None:
        incident.recurrence_of = match
        timeline.add(session, incident.id, "recurrence_found", by, match, data={"of": match, "by": "cause"},
                     now=now)  # fmt: skip
    return match

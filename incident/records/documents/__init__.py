"""The seven archived records of an incident (domain.md §7), rendered from a dossier.

``build_dossier(session, incident_id)`` takes the snapshot; ``render(kind, dossier, lang=, fmt=)``
turns it into one record as Markdown or HTML. Nothing here writes to the database.
"""

from incident.records.documents.dossier import IncidentNotFound, build_dossier
from incident.records.documents.render import (
    FORMATS,
    LANGS,
    RECORD_KINDS,
    available,
    postmortem_due_at,
    render,
    title,
)
from incident.records.documents.snapshot import Dossier

__all__ = [
    "FORMATS",
    "LANGS",
    "RECORD_KINDS",
    "Dossier",
    "IncidentNotFound",
    "available",
    "build_dossier",
    "postmortem_due_at",
    "render",
    "title",
]

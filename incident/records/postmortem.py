"""The 5W1H post-mortem on demand: rendered from the incident's current facts (a draft until closed)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from incident import settings
from incident.errors import NotFound
from models import Incident, session_scope


def render_postmortem(incident_id: str, lang: str = "zh", fmt: str = "md") -> tuple[str, datetime | None]:
    from incident.records.documents.dossier import build_dossier
    from incident.records.documents.render import postmortem_due_at, render

    with session_scope() as session:
        if session.get(Incident, incident_id) is None:
            raise NotFound(f"no incident {incident_id}")
        dossier = build_dossier(session, incident_id)
    return render("postmortem", dossier, lang=lang, fmt=fmt), postmortem_due_at(dossier)


def default_path(incident_id: str, lang: str, fmt: str) -> Path:
    folder = settings.documents_dir() / incident_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"postmortem.{lang}.{fmt}"

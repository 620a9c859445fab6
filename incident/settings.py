"""Where the product keeps its state, read from the environment each time it is asked.

Read lazily (not at import) so tests and the CLI can point one process at several homes.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """INCIDENT_HOME: database, rendered documents, charts and the service file."""
    path = Path(os.environ.get("INCIDENT_HOME", ".incident")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_url() -> str:
    """INCIDENT_DB_URL, or a SQLite file in the data directory."""
    return os.environ.get("INCIDENT_DB_URL") or f"sqlite:///{home() / 'incident.db'}"


def notify_config() -> Path | None:
    """INCIDENT_NOTIFY_CONFIG: apprise YAML whose tags are role names; None means nobody is told."""
    value = os.environ.get("INCIDENT_NOTIFY_CONFIG")
    return Path(value) if value else None


def api_token() -> str | None:
    return os.environ.get("INCIDENT_API_TOKEN") or None


def documents_dir() -> Path:
    path = home() / "documents"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_lang() -> str:
    return os.environ.get("INCIDENT_LANG", "zh")

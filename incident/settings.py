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


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def deployment_name() -> str:
    """INCIDENT_DEPLOYMENT: the name under which the worker serves ``incident_response``.

    Two product databases on one Prefect server need two names: a runner executes every scheduled
    run of the deployments it serves, and a run of the other database would not find its incident.
    """
    return os.environ.get("INCIDENT_DEPLOYMENT", "incident-service")


def run_concurrency(prefect_database: str = "unknown") -> int:
    """INCIDENT_RUN_CONCURRENCY: feedback runs at once per worker, else what suits Prefect's database.

    Measured (no-op runs, one server process): PostgreSQL saturates at ~4; on SQLite two writers at
    once already collide ("database is locked" → 503 → the client backs off for seconds).
    """
    configured = os.environ.get("INCIDENT_RUN_CONCURRENCY")
    if configured:
        return max(1, int(configured))
    return 1 if prefect_database == "sqlite" else 4


def incident_run_limit() -> int:
    """INCIDENT_INCIDENT_RUNS: incident runs (one process each) a worker executes at once."""
    return max(1, int(os.environ.get("INCIDENT_INCIDENT_RUNS", "4")))


def poll_seconds() -> float:
    """INCIDENT_POLL_SECONDS: how often the worker's runner asks Prefect for runs to execute."""
    return _seconds("INCIDENT_POLL_SECONDS", 1.0)


def queue_poll_seconds() -> float:
    """INCIDENT_QUEUE_POLL_SECONDS: how often an idle worker looks for feedback without a run."""
    return _seconds("INCIDENT_QUEUE_POLL_SECONDS", 0.2)


def sweep_seconds() -> float:
    """INCIDENT_SWEEP_SECONDS: the period of the sweep that delivers stored answers and restarts runs."""
    return _seconds("INCIDENT_SWEEP_SECONDS", 10.0)


def watch_seconds() -> float:
    """INCIDENT_WATCH_SECONDS: how often the deadline watcher looks."""
    return _seconds("INCIDENT_WATCH_SECONDS", 5.0)


def stale_claim_seconds() -> float:
    """INCIDENT_STALE_CLAIM_SECONDS: a feedback claimed by a worker on another host that did not
    handle it in this long is taken over (on the same host a dead claimant is known at once)."""
    return _seconds("INCIDENT_STALE_CLAIM_SECONDS", 120.0)


def resume_timeout() -> float:
    """INCIDENT_RESUME_TIMEOUT: how long an action waits for Prefect to take its answer before it
    says "stored, will be delivered" (the sweep delivers it once Prefect answers again)."""
    return _seconds("INCIDENT_RESUME_TIMEOUT", 3.0)

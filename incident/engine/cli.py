"""``incident serve`` and ``incident worker``: the service, and one more worker for it."""

from __future__ import annotations

import typer

from incident.terminal import fail

app = typer.Typer()


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the service: HTTP API, flow runs and the deadline watcher (until stopped)."""
    from incident.database.cli import preflight
    from incident.server import ServeError, run

    preflight()  # a wrong INCIDENT_DB_URL is one line here, not a migration's traceback
    try:
        run(host, port)
    except ServeError as exc:
        fail(str(exc), False)


@app.command()
def worker() -> None:
    """Run one more flow worker (another machine, the same PREFECT_API_URL and INCIDENT_DB_URL)."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        fail("PREFECT_API_URL must name the Prefect server the service uses", False)
    from incident.engine.worker import main as run_worker

    run_worker()

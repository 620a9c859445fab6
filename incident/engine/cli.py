"""``incident serve`` and ``incident worker``: the service, and one more worker for it."""

from __future__ import annotations

from incident.terminal import Args, Group, fail, opt

commands = Group()


@commands.command(
    "serve",
    opt("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"),
    opt("--port", type=int, default=8765, help="port (0: any free one; default 8765)"),
    json=False,
)
def serve(a: Args) -> None:
    """Run the service: HTTP API, flow runs and the deadline watcher (until stopped)."""
    from incident.database.cli import preflight
    from incident.server import ServeError, run

    preflight()  # a wrong INCIDENT_DB_URL is one line here, not a migration's traceback
    try:
        run(a.host, a.port)
    except ServeError as exc:
        fail(str(exc), False)


@commands.command("worker", json=False)
def worker(a: Args) -> None:
    """Run one more flow worker (another machine, the same PREFECT_API_URL and INCIDENT_DB_URL)."""
    import os

    from incident.database.cli import preflight

    if not os.environ.get("PREFECT_API_URL"):
        fail("PREFECT_API_URL must name the Prefect server the service uses", False)
    preflight()  # a wrong or unreachable INCIDENT_DB_URL is one line here, not a traceback from a loop
    from incident.engine.worker import WorkerError
    from incident.engine.worker import main as run_worker

    try:
        run_worker()
    except WorkerError as exc:
        fail(str(exc), False)

"""``incident serve``: one long-running process with the HTTP API, the flow dispatcher and the watcher.

With no ``PREFECT_API_URL`` set it runs a Prefect server of its own for this ``INCIDENT_HOME``
(its SQLite database under ``INCIDENT_HOME/prefect``; the server dies with the service), and
records in ``service.json`` how other commands reach it. Prefect must not be imported before
``ensure_prefect`` has set the API URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from incident import settings
from incident.client import healthy
from incident.environ import service_file, token_file, write_whole

log = logging.getLogger("incident.serve")


class ServeError(RuntimeError):
    """The service cannot start; the message says why (the CLI exits 2 with it)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _die_with_parent() -> None:
    """In the child: the kernel sends SIGTERM when the service dies, even by SIGKILL."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _yield_cores(nice: int) -> None:
    """Lower this process's share of the cores, in a session of its own (``start_new_session``).

    Why the session's share too: with Linux's autogroup scheduling (``kernel.sched_autogroup_enabled``,
    on by default in most distributions) the cores are shared between *sessions* as equals and a
    process's nice counts only inside its session. So the service's background children each start a
    session and give it the same nice (``/proc/self/autogroup``, sched(7); raising it needs no
    privilege). Measured (README, Benchmark): the worker's runs and the Prefect server no longer take
    the API's cores in a storm, and the L1 notice, which goes through the Prefect server, comes sooner.
    Without autogroup (or in a cgroup of its own: a systemd unit, a container) the file is absent or
    not consulted, and the process's nice is what counts.
    """
    level = nice
    with contextlib.suppress(OSError):
        level = os.nice(nice)  # on top of the service's own: the process's nice as it now is
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(level))


def _worker_child() -> None:
    """In the worker: die with the service; its runs yield to intake (``INCIDENT_BACKGROUND_NICE``)."""
    _die_with_parent()
    _yield_cores(settings.get().background_nice)


def _prefect_child() -> None:
    """In the Prefect server: die with the service; it yields less than the worker
    (``INCIDENT_PREFECT_NICE``): a level-1 report's notice goes through it while intake is busiest."""
    _die_with_parent()
    _yield_cores(settings.get().prefect_nice)


def _urgent_child() -> None:
    """In the urgent process: die with the service; not niced (incident/engine/urgent.py says why)."""
    _die_with_parent()


class PrefectServer:
    """The Prefect server this service runs for its home when no ``PREFECT_API_URL`` is set.

    Started with Prefect's services (scheduler, late runs, automations, the task-run recorder) and
    with its UI pointed at its own API (``PREFECT_UI_API_URL``: without it the UI talks to port 4200).
    ``watch`` starts it again, on the same port, when it dies: the worker and the API only see
    Prefect away for a while, and the sweep catches up on what waited meanwhile.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        prefect_home = settings.home() / "prefect"
        prefect_home.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_UI_API_URL": self.api_url,
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(self.port),
        }
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                   "--port", str(self.port), "--analytics-off"]  # fmt: skip
        if not settings.get().prefect_services:
            command.append("--no-services")
        # The child writes to its own copy of the file; ours is closed at once (one per restart leaked).
        with (settings.home() / "prefect-server.log").open("ab") as log_file:
            self.proc = subprocess.Popen(
                command,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_prefect_child,
            )
        deadline = time.monotonic() + 120
        while not healthy(self.api_url, "/health"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                where = settings.home() / "prefect-server.log"
                raise ServeError(f"Prefect server did not start; see {where}")
            time.sleep(0.3)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(1)
            if self.proc is not None and self.proc.poll() is not None:
                self.restarts += 1
                log.error("the Prefect server exited (%s); starting it again", self.proc.returncode)
                try:
                    await asyncio.to_thread(self.start)
                except ServeError as exc:
                    log.error("%s; trying again", exc)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ensure_prefect() -> PrefectServer | None:
    """Point this process at a Prefect API: the configured one, or this home's own server."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if os.environ.get("PREFECT_API_URL"):
        return None
    server = PrefectServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ.setdefault("PREFECT_UI_URL", server.api_url.removesuffix("/api"))
    return server


def prefect_database(own_server: bool) -> str:
    """The Prefect server's database as far as this process can tell: it sets how many runs go at once."""
    url = os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL") or os.environ.get(
        "PREFECT_SERVER_DATABASE_CONNECTION_URL", ""
    )
    if url:
        return "postgresql" if url.startswith("postgresql") else "sqlite"
    return "sqlite" if own_server else "unknown"


def _loop_factory() -> Any:
    """uvloop when installed (``uvicorn[standard]``): cheaper sockets for a service that is mostly I/O."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def resolve_token(host: str) -> tuple[str, bool]:
    """The service token, and whether it was made here (then ``service.json`` carries it too).

    Stable across restarts: without ``INCIDENT_API_TOKEN`` it is generated once and kept in
    ``INCIDENT_HOME/api-token`` (mode 0600, created exclusively so two starters agree), so scripts and
    the console's login keep working after a restart.
    """
    token = settings.get().api_token
    if token:
        return token, False
    if not is_loopback(host):
        raise ServeError("INCIDENT_API_TOKEN is required when serving on a non-loopback address")
    path = token_file()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        kept = path.read_text().strip()
        if kept:
            return kept, True
        path.unlink(missing_ok=True)
        return resolve_token(host)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(24))
    return path.read_text().strip(), True


def _lock() -> TextIO:
    handle = (settings.home() / "serve.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise ServeError(f"a service already runs for {settings.home()}") from exc
    return handle


def run(host: str = "127.0.0.1", port: int = 8765) -> None:
    import playbooks
    from incident.engine import queue, tls
    from incident.feedback import service as intake
    from models.migrate import upgrade

    # Prefect may not be imported before ensure_prefect() has set its API URL (its settings are read
    # once): plain logging until then, ours (which sets Prefect's up first) right after.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Prefect API call: thousands in a storm
    # The intake thread waits on the database a few times per batch; each time it takes the GIL back
    # from the event loop only at the next switch (5 ms by default).
    sys.setswitchinterval(0.001)
    lock = _lock()
    prefect = None
    sock = None
    try:
        sock = listen(host, port)  # before anything starts: a taken port leaves nothing running
        token, generated = resolve_token(host)
        try:
            playbooks.load_all()
        except playbooks.PlaybookError as exc:
            raise ServeError(str(exc)) from exc
        _worker_port_free()
        upgrade()
        intake.warm_up()
        prefect = ensure_prefect()
        tls.skip_unused_bundle(settings.home())  # level-1 runs made here while the urgent process starts
        __import__("incident.logs").logs.configure("serve")  # INCIDENT_LOG_FORMAT=text|json
        # Prefect and the flow imported now, not by the first L1 run the API makes itself (feedback/
        # batcher.py; measured: ~0.8 s of import that held every request up).
        queue.warm_up()
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(sock, host, token, generated, prefect))
    finally:
        if sock is not None:
            sock.close()
        service_file().unlink(missing_ok=True)
        if prefect is not None:
            prefect.stop()
        lock.close()


def listen(host: str, port: int) -> socket.socket:
    """The API's socket, bound before anything starts (Prefect's server, the worker): a port someone
    else holds is then one line (exit 2) and nothing is left running. It listens only once the service
    is ready (``_serve``)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _worker_port_free() -> None:
    """The port of the worker's /metrics (INCIDENT_WORKER_METRICS_PORT), tried now so that a taken one is
    one line before anything starts; the worker binds it for good when it starts."""
    host, port = settings.get().worker_metrics_host, settings.get().worker_metrics_port
    if port:
        try:
            listen(host, port).close()
        except ServeError as exc:
            raise ServeError(f"{exc} (INCIDENT_WORKER_METRICS_PORT: the worker's /metrics)") from exc


def _check_roster() -> None:
    """Read the roster now, so a broken one is in the log at start. It does not stop the service: each
    notice is then logged as failed, naming the file (notifiers/roster.py)."""
    from notifiers import roster

    try:
        found = roster.check()
        log.info("notification roster: %d channels (%s)", len(found.channels), found.note or found.source)
    except roster.RosterError as exc:
        log.error("notification roster unusable: %s", exc)


def _keep_stop_graceful() -> None:
    """A stop signal ends uvicorn's serving, then the ``finally`` blocks stop the worker and only then the
    Prefect server. Why a handler of ours: uvicorn raises the signal it caught once it has stopped
    serving, and with the default handler that killed this process there, before either ``finally``: the
    worker and the Prefect server then got their parent-death signal at the same moment, the worker could
    not tell Prefect about the runs it stopped, and ``service.json`` stayed behind."""

    def stopping(signum: int, _: object) -> None:
        log.info("stopping (%s): the worker first, then the Prefect server", signal.Signals(signum).name)
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal stops at once, as it used to
            signal.signal(sig, signal.SIG_DFL)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopping)


async def _serve(
    sock: socket.socket, host: str, token: str, generated: bool, prefect: PrefectServer | None
) -> None:
    import uvicorn

    from incident.api.web import create_web_app
    from incident.engine.process import WorkerProcess, WorkerStartError
    from incident.engine.urgent import use as use_urgent

    _check_roster()
    # Listening before service.json exists: a command that finds the file may connect at once (the kernel
    # queues it until uvicorn accepts) instead of meeting "connection refused" in the gap.
    try:
        sock.listen(2048)
    except OSError as exc:  # bound, but another socket of the same port listened first
        raise ServeError(f"cannot listen on {host}:{sock.getsockname()[1]}: {exc.strerror or exc}") from exc
    database = prefect_database(prefect is not None)
    worker, urgent = WorkerProcess(database, _worker_child), None
    watchers: list[asyncio.Task[None]] = []
    if settings.get().urgent_process:  # not waited for: until it is ready, the API runs level-1 runs itself
        urgent = WorkerProcess(
            database, _urgent_child, "incident.engine.urgent", "urgent process", wait=False
        )
        await urgent.start()  # first: it is then ready about when the worker is
        watchers.append(asyncio.create_task(urgent.watch()))
        use_urgent(urgent)
    try:
        await worker.start()
    except WorkerStartError as exc:
        if urgent is not None:
            await urgent.stop()
        raise ServeError(str(exc)) from exc
    watchers.append(asyncio.create_task(worker.watch()))
    if prefect is not None:
        watchers.append(asyncio.create_task(prefect.watch()))
    bound_port = sock.getsockname()[1]
    app = create_web_app(token)
    # An open board holds an event stream (GET /events): it ends within a second of should_exit, and
    # no request may hold a stop longer than the graceful timeout.
    # X-Forwarded-For is read only from INCIDENT_TRUSTED_PROXIES (uvicorn would trust loopback's by
    # default: any local process could then pick the address the login limit and the audit see).
    proxies = settings.get().trusted_proxies
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
        proxy_headers=proxies is not None,
        forwarded_allow_ips=proxies or "",
    )
    server = uvicorn.Server(config)
    app.state.stopping = lambda: server.should_exit
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    info = {
        "url": f"http://{url_host}:{bound_port}",
        "pid": os.getpid(),
        "prefect_api_url": os.environ["PREFECT_API_URL"],
    }
    if generated:
        info["token"] = token
    write_whole(service_file(), json.dumps(info), 0o600)  # the CLI reads it while the service starts
    log.info("incident service on %s (Prefect API %s)", info["url"], info["prefect_api_url"])
    _keep_stop_graceful()
    gc.collect()
    gc.freeze()  # what start-up made lives on: a full collection then skips it (it took ~200 ms in a storm)
    try:
        await server.serve(sockets=[sock])
    finally:
        for task in watchers:
            task.cancel()
        use_urgent(None)
        if urgent is not None:
            await urgent.stop()
        await worker.stop()

"""How this process talks to Prefect cheaply: one client, settings made once, flow runs created directly.

Why (measured on the 2-core machine, a no-op async flow run executed in-process, PostgreSQL server):
- every ``get_client()`` outside a client context builds a new ``PrefectClient`` and with it a new
  SSL context from certifi's bundle (~15-20 ms CPU, even for http://); the engine does it once per run,
  once per sync task run (``archive``), and result storage resolution once more with a *sync* client,
  blocking the event loop;
- ``ResultStore.update_for_flow`` asks the server for its default result storage block on every run
  (a blocking sync HTTP call) unless ``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`` is set;
- ``temporary_settings`` re-validates every setting from env, dotenv and profiles (~40 ms CPU), so
  the per-run settings (no heartbeat thread, no API log shipping) are built once here and only
  entered per run;
- ``PrefectClient.create_flow_run`` posts ``/flows/`` before every ``/flow_runs/``.
Together these took client CPU per run from ~210 ms to ~20 ms; what is left is the server's own
cost per API call (README.md, Benchmark).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import heapq
import logging
import os
import re
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import FlowRunCreate
from prefect.client.schemas.objects import FlowRun, FlowRunPolicy
from prefect.context import AsyncClientContext, SettingsContext, SyncClientContext, get_settings_context
from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_TO_API_ENABLED,
    PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK,
)
from prefect.states import State, to_state_create

log = logging.getLogger(__name__)

# Flows whose runs are many and short: no API log shipping (their logs are two lines of boilerplate).
QUIET_FLOWS = frozenset({"handle_feedback"})


def scope_tag() -> str:
    """The tag on every run of one product database: services on other databases leave them alone.

    Why: two deployments (or a test and a demo) may share one Prefect server; a run executed by a
    service on another database would not find its incident. The database's identity is a random
    number kept in it (not its URL: a database dropped and created again at the same URL is another
    one, and its feedback ids start again at 001).
    """
    if _runtime is not None:
        return _runtime.scope
    return "incident-db:" + database_identity()


def database_identity() -> str:
    from sqlalchemy.exc import IntegrityError

    from models import session_scope
    from models.ids import Counter

    key = "db-instance"  # not a prefix+date counter: a random value, made once per database
    with session_scope() as s:
        row = s.get(Counter, key)
        if row is None:
            try:
                with s.begin_nested():
                    s.add(row := Counter(key=key, value=secrets.randbits(31)))
            except IntegrityError:  # another process made it first
                row = s.get_one(Counter, key)
        return f"{row.value:08x}"


@dataclass(frozen=True)
class Claim:
    """Who executes a run: written into the Pending state's message when this process claims it."""

    host: str
    pid: int
    instance: str

    @classmethod
    def mine(cls) -> Claim:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])

    @property
    def message(self) -> str:
        return f"claimed by incident serve on {self.host} pid {self.pid} ({self.instance})"

    @classmethod
    def parse(cls, message: str | None) -> Claim | None:
        found = re.fullmatch(r"claimed by incident serve on (\S+) pid (\d+) \((\w+)\)", message or "")
        return cls(found[1], int(found[2]), found[3]) if found else None

    def is_dead(self) -> bool:
        """Only answerable on the claimant's own host: its process is gone."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        # Alive: dead only if that pid is this process and the claim is from an earlier life of it.
        return self.pid == os.getpid() and self.instance != CLAIM.instance


CLAIM = Claim.mine()


CRITICAL, ROUTINE = 1, 9  # priorities: an incident's level (1-3) for its runs; routine feedback last


class Gate:
    """At most ``limit`` units of Prefect work (a run executed, a run created) at once, most urgent first.

    Why one gate for creating and executing: on an SQLite Prefect server two concurrent writers
    already collide ("database is locked" → 503 → the client backs off 2 s, 4 s, …), so the creator
    and the runs must take turns; on PostgreSQL the single server process is saturated at ~4.
    Priorities are levels: a storm opens many L2/L3 incidents whose first runs take seconds (notices,
    records), and an L1 raise must not queue behind them, so ``CRITICAL`` work may also use one
    reserved slot.
    """

    def __init__(self, limit: int, reserve: int = 1) -> None:
        self.limit, self.reserve = limit, reserve
        self._in_use = 0
        self._seq = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []

    def _capacity(self, priority: int) -> int:
        return self.limit + self.reserve if priority <= CRITICAL else self.limit

    @asynccontextmanager
    async def __call__(self, priority: int = ROUTINE) -> AsyncIterator[None]:
        ahead = self._waiting and self._waiting[0][0] <= priority
        if self._in_use < self._capacity(priority) and not ahead:
            self._in_use += 1
        else:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._seq += 1
            heapq.heappush(self._waiting, (priority, self._seq, turn))
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._release()  # the turn came as we were cancelled: pass it on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self._in_use -= 1
        while self._waiting:
            priority, _, turn = self._waiting[0]
            if turn.done():  # cancelled while waiting
                heapq.heappop(self._waiting)
                continue
            if self._in_use >= self._capacity(priority):
                return
            heapq.heappop(self._waiting)
            self._in_use += 1
            turn.set_result(None)


class Runtime:
    """The process-wide Prefect client and the settings flow runs execute under."""

    def __init__(self) -> None:
        self.client_ctx = AsyncClientContext()
        self.sync_ctx: SyncClientContext | None = None  # for sync tasks (``archive``), made in start()
        self._flow_ids: dict[str, uuid.UUID] = {}
        self.settings: dict[bool, SettingsContext] = {}
        self.scope = "incident-db:" + database_identity()
        self.gate = Gate(4)  # the dispatcher sets the limit that suits the Prefect server

    @property
    def client(self) -> PrefectClient:
        return self.client_ctx.client

    async def start(self) -> None:
        await self.client_ctx.__aenter__()  # held for the life of the process
        self.sync_ctx = SyncClientContext()
        self.sync_ctx.__enter__()
        base = get_settings_context()
        updates: dict[Any, Any] = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        block = await self._result_storage_block()
        if block:
            updates[PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK] = block
        loud = base.settings.copy_with_update(updates=updates)
        quiet = loud.copy_with_update(updates={PREFECT_LOGGING_TO_API_ENABLED: False})
        self.settings = {
            False: SettingsContext(profile=base.profile, settings=loud),
            True: SettingsContext(profile=base.profile, settings=quiet),
        }

    async def stop(self) -> None:
        if self.sync_ctx is not None:
            self.sync_ctx.client.__exit__(None, None, None)
        await self.client_ctx.__aexit__(None, None, None)

    def context(self, flow_name: str | None = None) -> contextvars.Context:
        """A fresh context holding only the shared client (and a flow's run settings)."""
        ctx = contextvars.Context()
        ctx.run(AsyncClientContext.__var__.set, self.client_ctx)
        if self.sync_ctx is not None:
            ctx.run(SyncClientContext.__var__.set, self.sync_ctx)
        if flow_name is not None and self.settings:
            ctx.run(SettingsContext.__var__.set, self.settings[flow_name in QUIET_FLOWS])
        return ctx

    def enter(self) -> None:
        """Make the shared client the current one for this task and the tasks it starts."""
        AsyncClientContext.__var__.set(self.client_ctx)
        if self.sync_ctx is not None:
            SyncClientContext.__var__.set(self.sync_ctx)

    async def _result_storage_block(self) -> str | None:
        """A saved storage block as the default, so runs never ask the server which one to use.

        The operator's ``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`` or the server's default wins; else
        the local path Prefect would use anyway, saved as a block named after this host and path.
        """
        from prefect.filesystems import LocalFileSystem

        settings = get_settings_context().settings
        if settings.results.default_storage_block:
            return settings.results.default_storage_block
        try:
            server = await self.client.read_server_default_result_storage()
            if server.default_result_storage_block_id:
                doc = await self.client.read_block_document(server.default_result_storage_block_id)
                if doc.block_type and doc.name:
                    return f"{doc.block_type.slug}/{doc.name}"
            path = str(settings.results.local_storage_path)
            digest = hashlib.sha1(f"{socket.gethostname()}:{path}".encode()).hexdigest()[:10]
            name = f"incident-results-{digest}"
            await LocalFileSystem(basepath=path).asave(name, overwrite=True, client=self.client)
            return f"local-file-system/{name}"
        except Exception:
            log.warning("no default result storage block; every run will ask the server", exc_info=True)
            return None

    async def flow_id(self, flow: Any) -> uuid.UUID:
        if flow.name not in self._flow_ids:
            self._flow_ids[flow.name] = await self.client.create_flow(flow)
        return self._flow_ids[flow.name]

    async def create_run(
        self, flow: Any, parameters: dict[str, Any], name: str, state: State[Any], idempotency_key: str
    ) -> FlowRun:
        """One POST per run (``create_flow_run`` posts /flows/ first every time).

        The idempotency key makes re-creation after a crash return the run created before.
        """
        body = FlowRunCreate(
            flow_id=await self.flow_id(flow),
            flow_version=flow.version,
            name=name,
            parameters=parameters,
            state=to_state_create(state),
            idempotency_key=idempotency_key,
            tags=[self.scope],
            empirical_policy=FlowRunPolicy(
                retries=flow.retries, retry_delay=int(flow.retry_delay_seconds or 0)
            ),
        )
        response = await self.client.request(
            "POST", "/flow_runs/", json=body.model_dump(mode="json", exclude_unset=True)
        )
        return FlowRun.model_validate(response.json())


_runtime: Runtime | None = None


async def start() -> Runtime:
    global _runtime
    runtime = Runtime()
    await runtime.start()
    _runtime = runtime
    return runtime


def current() -> Runtime | None:
    return _runtime

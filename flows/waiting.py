"""Waiting for people with Prefect's own human-in-the-loop: ``pause_flow_run`` then ``suspend_flow_run``.

Why suspend: a suspended run holds no process, so hundreds of incidents can wait days for a person; it
survives a restart of the service; resuming it from another process (our CLI/API; input typed into
Prefect's Resume form is refused, see ``wait_for``) reschedules it, and the worker's runner executes
it again from the top, in a new process (~2–3 s of Python start-up on this machine). Why a blocking
pause first: a person working an incident often answers the next step within a minute; for
``INCIDENT_HOT_WAIT_SECONDS`` the run keeps its process and an answer moves it on within a second.

Our database is the source of truth for answers: ``wait_for`` first looks there, so an answer typed
before the flow reached its waiting point is never lost, and replays are cheap.
``deliver`` resumes a run whose answer is stored; it is called after each action and by the worker's
periodic sweep, so an answer stored while Prefect was away is delivered once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import httpx
from prefect import runtime
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from prefect.input import RunInput
from prefect.states import Running, Scheduled
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from incident import settings
from incident.incidents import timeline
from incident.people import via
from incident.response import service as actions
from incident.response import steps
from models import FlowMark, Incident, Solution, session_scope, utcnow
from playbooks.vocabulary import label

log = logging.getLogger(__name__)


def stored(incident_id: str, key: str) -> dict[str, Any] | None:
    with session_scope() as session:
        return actions.answer(session, incident_id, key)


def describe(incident_id: str, key: str) -> str:
    """What the Resume form in Prefect's UI says this run waits for (Markdown)."""
    point, _, number = key.partition("-")
    step = steps.at(key)
    zh, en = (label("duty", point, lang) for lang in ("zh", "en"))
    lines = [f"**{incident_id}** 等待 / waits for: **{zh}** ({en})"]
    if number:
        lines.append(f"第 {number} 轮 / round {number}")
    with session_scope() as s:
        incident = s.get(Incident, incident_id)
        solution = None
        if point in ("approval", "confirmation") and number.isdigit():
            solution = s.query(Solution).filter_by(incident_id=incident_id, round=int(number)).first()
        if solution is not None:
            lines.append(f"方案 / solution: `{solution.kind}`")
        if incident is not None:
            roles = steps.who_does(step, incident.category, incident.level)
            zh_roles, en_roles = ("、".join(label("role", r, "zh") for r in roles), ", ".join(roles))
            lines.append(f"由 / by: {zh_roles} ({en_roles})")
    lines.append(
        f"Record it with `incident {step.action} {incident_id} …` or the console (as yourself); an answer"
    )
    lines.append("typed here is refused and recorded: Prefect cannot say who gave it.")
    return "\n\n".join(lines)


def refuse_resume(incident_id: str, pause: str, fields: dict[str, Any]) -> bool:
    """Record (once per pause) that Prefect resumed the run with input the database does not have.

    Once: the mark and the event are written in one transaction, so a replay that meets the same pause
    again records nothing twice. Only the input's field names are kept, never its values.
    """
    keys = sorted(k for k in fields if not k.startswith("_"))
    detail = f"resumed through Prefect at {pause} with no recorded answer; nothing was applied"
    try:
        with session_scope() as s, via.opened(via.Via("prefect")):  # the audit's channel: Prefect's API
            s.add(FlowMark(incident_id=incident_id, mark=f"resume-refused:{pause}"[:120], at=utcnow()))
            s.flush()
            data = {"key": pause, "fields": keys}
            timeline.add(s, incident_id, "resume_refused", "prefect", detail, data=data)
    except IntegrityError:
        return False
    return True


async def wait_for(incident_id: str, key: str) -> dict[str, Any]:
    """The answer for this waiting point: from the database, or after a pause.

    First in this process for ``INCIDENT_HOT_WAIT_SECONDS`` (an answer then moves the run on within a
    second), then suspended (no process held, for days if need be).

    Only the database answers. Input that arrives through Prefect (its UI's Resume form, or anyone
    posting ``run_input`` to its API) without the database having the answer changes nothing on the
    incident: it is recorded as ``resume_refused`` and the run waits again. Why: an answer must go
    through authentication and authority (``incident.response.authority``), and Prefect's API knows
    neither who resumed nor their roles.
    """
    step = steps.at(key)
    form = RunInput.subclass_from_base_model_type(step.model)
    form = form.with_initial_data(description=describe(incident_id, key))
    hot = settings.get().hot_wait_seconds
    attempt = 0
    while True:
        answer = stored(incident_id, key)
        if answer is not None:
            return answer
        pause = pause_name(key, runtime.flow_run.run_count, attempt)
        attempt += 1
        if attempt == 1 and hot > 0:
            given = await wait_in_process(form, pause, hot)
            if given is None:  # nobody answered while the process waited: suspend
                continue
        else:
            given = await asuspend_flow_run(wait_for_input=form, key=pause)
        if stored(incident_id, key) is not None:
            continue  # our own delivery of a stored answer: the top of the loop returns it
        # Input our database does not have (Prefect's UI's Resume form, or a resume posted straight to
        # Prefect's API): refused, recorded, and the run waits again (suspended: attempt > 1).
        fields = given.model_dump() if hasattr(given, "model_dump") else dict(given)
        if refuse_resume(incident_id, pause, fields):
            log.warning("resume of %s at %s through Prefect refused: no answer", incident_id, pause)


def pause_name(key: str, execution: int, attempt: int) -> str:
    """The pause key of one pause at a waiting point: the point itself the first time, then unique.

    Why unique: Prefect refuses a key that has fired once in the run, and a run executes again after
    each suspension. Every name starts with the point (``approval-2-retry-3-1`` waits at ``approval-2``).
    """
    return key if execution <= 1 and attempt == 0 else f"{key}-retry-{execution}-{attempt}"


async def wait_in_process(form: type[RunInput], key: str, seconds: float) -> Any | None:
    """Prefect's blocking pause for ``seconds``: the run keeps its process and polls Prefect, so
    an answer moves it on within ``HOT_POLL``, without the new process a suspended run needs (~2–3 s).

    Why only for a while: a held process costs memory and one of the worker's incident-run slots; most
    answers come minutes or days later. None when nobody answered: the run then sets itself Running
    again (the public API; a pause can only turn into a suspension from Running) so it can suspend.
    The pause's own timeout is far beyond the window: a run whose process died while it waited is
    found by ``orphaned`` and started again, never failed by Prefect's pause expiry first.
    """
    given: Any = None
    with anyio.move_on_after(seconds) as window:  # who holds the pause: the run's HOLDER label (``hold``)
        given = await apause_flow_run(
            wait_for_input=form, key=key, timeout=int(seconds) + ORPHAN_MARGIN, poll_interval=HOT_POLL
        )
    if not window.cancelled_caught:  # resumed: Running again, in a new state, and still in this process
        await hold()  # outside the window: its end must not cut the label's write short
        return given
    async with get_client() as client:
        await client.set_flow_run_state(runtime.flow_run.id, Running(message="waiting on"), force=True)
    return None


ORPHAN_MARGIN = 3600  # seconds past the hot window before Prefect would fail the pause
# How often a run waiting in its process asks Prefect whether it was resumed: half the answer's delay on
# average, one light read each time (Prefect types it int; its sleep takes any number).
HOT_POLL: Any = 0.5


# The run's label naming the process that runs it and waits in its blocking pauses (``host:pid``), set
# at the start of each execution (``hold``). The name is older than the start-time label; kept for runs
# paused before it. ``HELD_IN`` names the Running state it was written in.
HOLDER = "incident.waits-in"
HELD_IN = "incident.held-in"
HOST = socket.gethostname()


def holder() -> str:
    return f"{HOST}:{os.getpid()}"


async def hold() -> None:
    """Name this process the run's holder, in the Running state it runs in: first thing in each
    execution (a resumed or rescheduled run runs in a new process) and after a blocking pause resumed
    here. While it is Running or waits in a blocking pause, the sweep can tell that its process is gone
    (``orphaned``, ``held_by`` and ``holder_gone``) as soon as it is, on this host."""
    async with get_client() as client:
        run = await client.read_flow_run(runtime.flow_run.id)
        labels = {HOLDER: holder(), HELD_IN: str(run.state_id)}
        await client.update_flow_run_labels(run.id, labels)


def held_by(run: FlowRun) -> str | None:
    """The process its labels name as running it now; None while they were written in an earlier state.

    Why the state: a new execution names its process a moment after Prefect marks it Running (seconds
    on a loaded machine, in a niced process importing Prefect), and until then the label still names
    the process before, long gone. Judged by that label, a live run was crashed and rescheduled under
    its new process (CI, 12-07). Until it names its own, the run is judged as one that names none."""
    labels = run.labels or {}
    if run.state is None or str(labels.get(HELD_IN)) != str(run.state.id):
        return None
    held = labels.get(HOLDER)
    return str(held) if held is not None else None


def _grace() -> timedelta:
    return timedelta(seconds=max(10.0, 2 * settings.get().sweep_seconds))


def holder_gone(label: object) -> bool:
    """The process named by the run's ``HOLDER`` label is known to be gone: it ran on this host and its
    pid is no more. On another host nothing can be known here (``orphaned`` then goes by the clock)."""
    host, _, pid = str(label or "").rpartition(":")
    if host != HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """Exited but not yet reaped (its parent died with it, say): gone, though the pid still answers."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc here, or it is reaped meanwhile
        return not Path(f"/proc/{pid}").exists() and Path("/proc/self").exists()
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def orphaned(state: State, labels: Mapping[str, Any] | None = None) -> bool:
    """A blocking pause whose process is gone: resumed, it would be Running with nothing running it.

    Known gone when the process that holds it (the run's ``HOLDER`` label) ran on this host and has
    exited (its worker died with it, or Prefect's runner ended it during an outage, when nobody could
    tell Prefect); else assumed gone once the pause is past its window, which its process would have
    left. A suspension holds no process and is never orphaned.
    """
    details = state.state_details
    if details.pause_reschedule or details.pause_timeout is None:
        return False
    if holder_gone((labels or {}).get(HOLDER)):
        return True
    return datetime.now(UTC) > details.pause_timeout - timedelta(seconds=ORPHAN_MARGIN) + _grace()


async def paused_run(flow_run_id: str | UUID) -> FlowRun | None:
    """The run while it is paused (suspended, or waiting in its process), else None."""
    async with get_client() as client:
        try:
            run = await client.read_flow_run(UUID(str(flow_run_id)))
        except ObjectNotFound:
            return None
    if run.state is None or not run.state.is_paused() or not run.state.state_details.pause_key:
        return None
    return run


async def paused_state(flow_run_id: str | UUID) -> State | None:
    """The run's state while it is paused, else None."""
    run = await paused_run(flow_run_id)
    return run.state if run is not None else None


async def pause_key(flow_run_id: str | UUID) -> str | None:
    """The waiting point a paused run waits at, or None when it is not paused."""
    state = await paused_state(flow_run_id)
    return point_of(state.state_details.pause_key) if state and state.state_details.pause_key else None


def point_of(pause: str) -> str:
    """The waiting point of a pause key (``approval-2-retry-3-1`` → ``approval-2``)."""
    return pause.split("-retry-")[0]


def answer_for(incident_id: str, key: str) -> dict[str, Any] | None:
    """The stored answer for a pause key (``approval-2-retry-1`` waits for ``approval-2``)."""
    return stored(incident_id, point_of(key))


async def restart(flow_run_id: str, key: str) -> None:
    """Start again a run whose blocking pause lost its process (``orphaned``): resumed, it would be
    Running with nothing running it; rescheduled, a runner executes it and it replays from the top,
    finding its answers in the database."""
    async with get_client() as client:
        message = f"paused at {key}, its process gone: started again"
        await client.set_flow_run_state(UUID(flow_run_id), Scheduled(message=message), force=True)
    log.warning("flow run %s %s", flow_run_id, message)


async def resume(
    flow_run_id: str,
    key: str,
    answer: dict[str, Any],
    state: State | None = None,
    labels: Mapping[str, Any] | None = None,
) -> bool:
    """Resume a run paused at ``key`` with its answer (started again if its pause is ``orphaned``);
    False if it had moved on already."""
    if state is not None and orphaned(state, labels):
        await restart(flow_run_id, key)
        return True
    async with get_client() as client:
        result = await client.resume_flow_run(UUID(flow_run_id), run_input=answer)
    if result.status != SetStateStatus.ACCEPT:
        log.info("resume of %s at %s not accepted: %s", flow_run_id, key, result.details)
        return False
    return True


async def deliver(incident_id: str) -> bool:
    """Resume the incident's run if it waits at a point the database already has an answer for.

    Raises ``httpx.HTTPError`` / ``PrefectHTTPStatusError`` when Prefect does not answer: the
    caller decides what that means (an action says "stored, will be delivered"; the sweep retries).
    """
    with session_scope() as session:
        incident = session.get(Incident, incident_id)
        flow_run_id = incident.flow_run_id if incident else None
    if not flow_run_id:
        return False
    run = await paused_run(flow_run_id)
    if run is None or run.state is None or run.state.state_details.pause_key is None:
        return False
    key = run.state.state_details.pause_key
    answer = answer_for(incident_id, key)
    if answer is None:
        return False
    return await resume(flow_run_id, key, answer, run.state, run.labels)


UNREACHABLE = (httpx.HTTPError, PrefectHTTPStatusError, OSError)


async def try_deliver(incident_id: str) -> str:
    """After an action: ``delivered`` (the run moves on), ``stored`` (the run is not at that point
    yet: it finds the answer when it gets there) or ``pending`` (Prefect, or the database after the
    answer was stored, did not answer within ``INCIDENT_RESUME_TIMEOUT``: the worker's sweep delivers
    it once they are back). Never an error: the answer is stored, and the action must say so.

    Why any other exception too (logged with its traceback, as the sweep's failed passes are): the
    answer was committed before delivery began, so a 500 would tell the person "not taken" about an
    answer that was. Seen in the chaos suite: Prefect's server SIGKILLed mid-request made httpcore's
    connect raise ``AttributeError`` from anyio (the socket already gone), not an ``httpx`` error; a
    proxy's maintenance page in place of Prefect's JSON raises ``ValueError``. The sweep delivers the
    answer once delivery works again, and logs each pass that fails."""
    try:
        moved = await asyncio.wait_for(deliver(incident_id), settings.get().resume_timeout)
    except (TimeoutError, SQLAlchemyError, *UNREACHABLE) as exc:
        log.warning("answer for %s stored, delivery pending: %s", incident_id, exc.__class__.__name__)
        return "pending"
    except Exception:  # the answer is stored whatever delivery raised (see above); the trace is logged
        log.exception("answer for %s stored, delivery pending after an unexpected failure", incident_id)
        return "pending"
    return "delivered" if moved else "stored"

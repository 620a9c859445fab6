"""The worker's periodic sweep: nothing accepted stays stranded, whatever was down meanwhile.

Why a sweep and not only start-up recovery: an answer can be stored while Prefect is away (the
action then says "stored, will be delivered"), a run can be cancelled from Prefect's UI, a run's
process can crash; none of these restarts the service, so something must look again. Every
``INCIDENT_SWEEP_SECONDS`` it asks Prefect, in one query per state, about the runs of the deployment
this worker serves, and:

- **delivers** every stored answer whose run still waits at that point (a resume), and starts again a
  run whose blocking pause lost its process (``waiting.orphaned``: its worker died while it waited);
- finishes a **cancel** nobody else will: Prefect's Cancel (its UI's button, ``prefect flow-run
  cancel``) of a run in a process sets Cancelling, and the Runner holding the process stops it and sets
  Cancelled (a suspended or scheduled run has no process: Prefect's server cancels it at once); a run
  still Cancelling after ``cancelling_grace()`` lost its process (its worker died meanwhile);
- records a **cancelled** run on its incident's timeline and closes the incident with that reason
  (cancel means stop: an operator who cancels a run in Prefect ends that incident's process, and the
  incident stays closed: a run started afterwards with Prefect's Run button finds it closed and ends at
  once, see ``flows.incident.drives``), but starts again a run that Prefect's Runner cancelled because
  its worker stopped (``RUNNER_STOPPED``);
- marks **Crashed** a Running run whose process on this host is gone (its worker was killed with it:
  a restarted service knows at its first pass, Prefect's zombie automation only after its window), or
  that names no process yet while every worker that could have started it is gone, and
- **reschedules** a run that Crashed (its process went away), three times at most, and a run left
  Pending by a worker that died before starting it (at once when the workers' roll shows that nobody
  could start it any more, ``roll.stranded``; else after 5 min);
- **starts** the run of every open incident that has none (its first feedback run failed before);
- **forgets** answers to ``Idempotency-Key`` s older than ``INCIDENT_IDEMPOTENCY_KEEP_HOURS``, expired
  console sessions and failed logins older than the login limit's window (the audit keeps the logins);
- writes last month's review once the month is over and tells leadership (incident/reviews/schedule.py;
  a review that fails is logged and tried again later, backing off, and stops nothing else).
The integration adapters' jobs (write-backs owed, late waybills, media, the knowledge base) run in a
loop of their own: ``integrations_once``.

Feedback without a run needs no sweep: the rows are the queue (incident/engine/queue.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import Cancelled, Crashed, Scheduled
from sqlalchemy import select

from flows import waiting
from incident import settings
from incident.api import idempotency
from incident.deadlines import service as deadlines
from incident.engine import roll
from incident.incidents import timeline
from incident.integrations import registry
from incident.people import logins, sessions
from incident.reviews import schedule as reviews
from models import LOCK, Deadline, Incident, session_scope, utcnow

log = logging.getLogger("incident.sweep")

MAX_CRASHES = 3
# A run left Pending this long lost the worker that claimed it. Not shorter: a worker dies in the seconds
# between its claim and its run's process starting rarely, while a process starting on a loaded machine
# is slow (it imports Prefect at nice INCIDENT_BACKGROUND_NICE: over a minute seen in the test suite), and
# a run rescheduled while its process still starts is claimed and executed by a second worker too.
STUCK_PENDING = timedelta(minutes=5)
RECENT = timedelta(days=1)
PAGE = 200


async def runs_in(
    client: PrefectClient, deployment_id: UUID, state: StateType, ended_within: timedelta | None = None
) -> list[FlowRun]:
    """Every run of the deployment in this state, page by page; ended ones only if ended recently
    (cancelled and crashed runs pile up over months; a run that ended a day ago was seen then)."""
    run_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[state])))
    if ended_within is not None:
        run_filter.end_time = FlowRunFilterEndTime(after_=datetime.now(UTC) - ended_within)
    found: list[FlowRun] = []
    while True:
        page = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=run_filter,
            sort=FlowRunSort.ID_DESC,
            limit=PAGE,
            offset=len(found),
        )
        found += page
        if len(page) < PAGE:
            return found


def _incident_of(run: FlowRun) -> str | None:
    value = (run.parameters or {}).get("incident_id")
    return value if isinstance(value, str) else None


async def deliver_waiting(client: PrefectClient, deployment_id: UUID) -> int:
    delivered = 0
    for run in await runs_in(client, deployment_id, StateType.PAUSED):
        incident_id = _incident_of(run)
        key = run.state.state_details.pause_key if run.state else None
        if not incident_id or not key:
            continue
        answer = waiting.answer_for(incident_id, key)
        if answer is None and run.state and waiting.orphaned(run.state, run.labels):  # its process died
            await waiting.restart(str(run.id), key)
        elif answer is not None and await waiting.resume(str(run.id), key, answer, run.state, run.labels):
            log.info("delivered the stored answer of %s at %s", incident_id, key)
            delivered += 1
    return delivered


def close_cancelled(incident_id: str, flow_run_id: str, by: str, why: str | None = None) -> bool:
    """Close an incident whose driving run was cancelled in Prefect; False if it had moved on.
    ``why``: the Cancelled state's message, kept on the timeline."""
    now = utcnow()
    with session_scope() as s:
        inc = s.get(Incident, incident_id, with_for_update=LOCK)
        if inc is None or inc.status == "closed" or inc.flow_run_id != flow_run_id:
            return False
        for kind in set(s.scalars(select(Deadline.kind).where(Deadline.incident_id == incident_id))):
            deadlines.cancel(s, inc, kind, now)
        inc.status, inc.closed_at, inc.open_key = "closed", now, None
        said = f" ({why})" if why else ""
        detail = f"flow run {flow_run_id} cancelled in Prefect{said}; the incident is closed with that reason"
        timeline.add(
            s, incident_id, "run_cancelled", by, detail, data={"run": flow_run_id, "why": why}, now=now
        )
        timeline.add(s, incident_id, "closed", by, "cancelled", data={"reason": "cancelled"}, now=now)
    return True


# Prefect's Runner cancels the runs it executes when it stops (``Runner.astop``), with this message: a
# run waiting in its process when its worker stopped is no operator's cancel, and is started again.
# No public field says so (the Cancelled state copies the run's last one; an operator may force
# Cancelled without Cancelling too), so the message is pinned by a test that runs Prefect's own Runner
# (tests/test_prefect_machinery.py::test_a_stopping_runner_cancels_with_the_message_the_sweep_knows).
RUNNER_STOPPED = "Runner is shutting down."


def cancelling_grace() -> timedelta:
    """How long a Runner gets to stop a cancelled run's process (it takes seconds): three sweeps."""
    return timedelta(seconds=3 * settings.get().sweep_seconds)


async def finish_cancelling(client: PrefectClient, deployment_id: UUID) -> int:
    """Set Cancelled on the runs Cancelling for longer than ``cancelling_grace()``: no process is left
    for a Runner to stop, and without this they would stay Cancelling, their incidents open for good."""
    finished = 0
    now = datetime.now(UTC)
    for run in await runs_in(client, deployment_id, StateType.CANCELLING):
        if run.state is None or now - run.state.timestamp < cancelling_grace():
            continue  # the Runner holding its process stops it and sets Cancelled
        message = "cancelled in Prefect; no process was left to stop"
        await client.set_flow_run_state(run.id, Cancelled(message=message), force=True)
        log.warning("flow run %s of %s: %s", run.id, _incident_of(run), message)
        finished += 1
    return finished


def still_driving(incident_id: str, flow_run_id: str) -> bool:
    with session_scope() as s:
        inc = s.get(Incident, incident_id)
        return inc is not None and inc.status != "closed" and inc.flow_run_id == flow_run_id


async def record_cancelled(client: PrefectClient, deployment_id: UUID) -> int:
    closed = 0
    for run in await runs_in(client, deployment_id, StateType.CANCELLED, RECENT):
        incident_id = _incident_of(run)
        if incident_id and run.state and run.state.message == RUNNER_STOPPED:
            if still_driving(incident_id, str(run.id)):
                message = "its worker stopped while it ran: started again"
                await client.set_flow_run_state(run.id, Scheduled(message=message), force=True)
                log.warning("flow run %s of %s: %s", run.id, incident_id, message)
            continue
        why = run.state.message if run.state else None
        if incident_id and close_cancelled(incident_id, str(run.id), "prefect", why):
            log.warning("%s closed: its flow run %s was cancelled in Prefect", incident_id, run.id)
            closed += 1
    return closed


async def crash_lost(client: PrefectClient, deployment_id: UUID) -> int:
    """Mark Crashed the Running runs whose process on this host is gone (the one their labels name in this
    Running state, ``waiting.held_by``), or whose process has named itself in no state yet while every
    worker that could have started it is gone (``roll.stranded``; a label from an earlier state names a
    process before): a restarted service reschedules them at this pass, not after Prefect's zombie
    window (``zombies.py``)."""
    crashed = 0
    running = await runs_in(client, deployment_id, StateType.RUNNING)
    workers = await roll.of(deployment_id) if running else []  # after the runs: see roll.of
    for run in running:
        held = waiting.held_by(run)
        if held is not None and waiting.holder_gone(held):
            why = f"its process {held} is gone"
        elif held is None and run.state and roll.stranded(workers, run.state.timestamp):
            why = "its worker is gone, and with it the process it was starting"
        else:
            continue
        await client.set_flow_run_state(run.id, Crashed(message=why))
        log.warning("flow run %s crashed: %s", run.id, why)
        crashed += 1
    return crashed


async def reschedule_crashed(client: PrefectClient, deployment_id: UUID) -> int:
    """Schedule again the runs that Crashed (three times at most) and those left Pending by a worker
    that died before starting them: known at once when every worker that could have claimed one is
    gone (``roll.stranded``), else after ``STUCK_PENDING``."""
    rescheduled = 0
    now = datetime.now(UTC)
    pending = await runs_in(client, deployment_id, StateType.PENDING)
    workers = await roll.of(deployment_id) if pending else []  # after the runs: see roll.of
    candidates = [
        *await runs_in(client, deployment_id, StateType.CRASHED, RECENT),
        *[
            run
            for run in pending
            if run.state
            and (now - run.state.timestamp > STUCK_PENDING or roll.stranded(workers, run.state.timestamp))
        ],
    ]
    for run in candidates:
        states = Counter(state.type for state in await client.read_flow_run_states(run.id))
        if states[StateType.CRASHED] >= MAX_CRASHES:
            continue
        await client.set_flow_run_state(run.id, Scheduled(message="rescheduled by the sweep"), force=True)
        log.warning("flow run %s (%s) rescheduled", run.id, run.state.type if run.state else "?")
        rescheduled += 1
    return rescheduled


async def start_missing() -> int:
    from flows.feedback import start_incident_run

    with session_scope() as s:
        orphans = list(
            s.scalars(select(Incident.id).where(Incident.status != "closed", Incident.flow_run_id.is_(None)))
        )
    for incident_id in orphans:
        await start_incident_run(incident_id)
    return len(orphans)


async def sweep_once(deployment_id: UUID) -> dict[str, int]:
    """One pass; raises when Prefect or the database is away (the next pass tries again)."""
    async with get_client() as client:
        counts = {
            "delivered": await deliver_waiting(client, deployment_id),
            "cancel_finished": await finish_cancelling(client, deployment_id),
            "cancelled": await record_cancelled(client, deployment_id),
            "lost": await crash_lost(client, deployment_id),
            "rescheduled": await reschedule_crashed(client, deployment_id),
        }
    counts["started"] = await start_missing()
    counts["workers_forgotten"] = await asyncio.to_thread(roll.seen)
    keep = timedelta(hours=settings.get().idempotency_keep_hours)
    counts["keys_purged"] = await asyncio.to_thread(idempotency.purge, keep)
    counts["sessions_purged"] = await asyncio.to_thread(sessions.purge)
    counts["login_failures_purged"] = await asyncio.to_thread(logins.purge)
    # last month's review, once, to leadership; a failing one is logged and backs off, never raises
    counts.update(await reviews.monthly(utcnow()))
    return counts


async def integrations_once() -> dict[str, int]:
    """The connected systems' pass (write-backs owed, late waybills, polled tracks and media): a loop
    of its own, so that Prefect being slow or away delays no late-order alarm, and a vendor's pacing
    (Baidu's rate) delays no stored answer's delivery."""
    return await registry.sweep_all()

"""Runs whose process vanished: Prefect's own zombie detection, then the sweep's recovery.

Why: a run is ``Running`` while its process works. If the machine or the worker's whole process group
dies (SIGKILL, OOM, a lost VM), nobody reports the end, and Prefect shows the run ``Running`` for ever —
a zombie: its incident waits for a step that nothing executes. Prefect documents the remedy
(docs.prefect.io, "How to detect and respond to zombie flows"): runs emit heartbeat events
(``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, at least 30 s) and an automation marks a run ``Crashed`` when
neither a heartbeat nor a state change follows within a window. ``Crashed`` is what the sweep already
reschedules (``incident/engine/sweep.py``, three times at most), and a rescheduled incident run replays
to its waiting point. So the product adds no watcher of its own: it creates that automation, once per
deployment (its runs only, so another team's flows on the same server are left alone), and the worker
turns heartbeats on.

The feedback runs (``handle_feedback``) execute in the worker's own process, not as runs of the
deployment, so the automation also matches this service's tag (``service_tag``) that each of them
carries. A crashed feedback run is not rescheduled (the sweep reschedules the deployment's runs only):
its feedback row, still claimed, is taken over by another run (``incident/engine/queue.py``); the
Crashed state only stops Prefect's UI from showing a run that nothing executes as Running for ever.

Unlike the documentation's example, a run that pauses (waits for a person) or is scheduled again
stops expecting heartbeats: a suspended run has no process by design and is not a zombie.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from uuid import UUID

from incident import settings

log = logging.getLogger("incident.zombies")

HEARTBEAT_SECONDS = 30  # Prefect's minimum; the window is several of them
ALIVE = ("prefect.flow-run.heartbeat", "prefect.flow-run.Running", "prefect.flow-run.Retrying")
SETTLED = tuple(
    f"prefect.flow-run.{state}"
    for state in ("Completed", "Failed", "Cancelled", "Crashed", "Cancelling", "Paused", "Suspended",
                  "Scheduled", "AwaitingRetry", "Pending", "Late")
)  # fmt: skip


def enable_heartbeats() -> None:
    """Make this worker's runs (and its runner's processes, which inherit the environment) emit
    heartbeats, unless the operator chose a frequency."""
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))


def service_tag() -> str:
    """The tag of this service's feedback runs (several services may share one Prefect server)."""
    return f"incident-service:{settings.get().deployment}"


def automation_name() -> str:
    return f"incident: crash silent runs of incident_response/{settings.get().deployment}"


async def ensure_automation(deployment_id: UUID) -> None:
    """Create (or bring up to date) the automation for this deployment's runs."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    window = timedelta(seconds=settings.get().zombie_seconds)
    ours = [f"prefect.deployment.{deployment_id}", f"prefect.tag.{service_tag()}"]
    wanted = Automation(
        name=automation_name(),
        description="A run of this deployment that is Running but silent (no heartbeat, no state "
        "change) has lost its process: mark it Crashed, so the product's sweep reschedules it.",
        trigger=EventTrigger(
            after=set(ALIVE),
            expect={*ALIVE, *SETTLED},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification({"prefect.resource.id": ours}),  # runs or feedback runs
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=window,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {window.total_seconds():.0f} s: its process is gone",
            )
        ],
    )
    try:
        existing = await Automation.aread(name=wanted.name)
    except ValueError:  # none of that name yet
        existing = None
    if existing is not None:
        if existing.trigger == wanted.trigger and existing.actions == wanted.actions and existing.enabled:
            return
        await existing.adelete()
    await wanted.acreate()
    log.info("zombie runs of %s are marked Crashed after %s without a heartbeat", deployment_id, window)

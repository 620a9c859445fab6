"""``handle_feedback``: the Prefect run of one feedback, after intake has recorded and graded it.

It starts the incident's response run when this feedback opened the incident, tells the new level's
roles at once when it raised the level, and marks the feedback handled (a crash before that point
means a worker takes the feedback again, incident/engine/queue.py; every step here is idempotent).
The run is named after the feedback and tagged ``incident:<id>``, as is the incident's run.

Its notice and its records are steps of the flow itself, not task runs (``tell.fn``, ``archive.fn``):
a task run takes its flow's tags, and before a tagged task starts Prefect asks its server for the
tags' concurrency slots, one round trip per task. On a SQLite Prefect server in a storm that answer
came after 2.1–2.6 s (its one writer busy), and the level-1 notice waited for it (bench/storm.py,
2026-12-07); on PostgreSQL it cost a round trip per run. The incident's run keeps its task runs (it
carries no tags in its process), so its graph shows each notice and archive.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect import flow, runtime
from prefect.client.orchestration import get_client
from sqlalchemy import update

from flows.marks import once
from flows.notices import archive, deadline_context, tell
from incident import settings
from incident.deadlines.service import outstanding
from incident.inbox.service import route
from incident.records.service import later_report_pending
from models import Feedback, Incident, session_scope, utcnow

_deployment_ids: dict[str, UUID] = {}


def run_name(incident: Incident) -> str:
    return f"{incident.id}-L{incident.level}-{incident.category}"


async def deployment_id() -> UUID:
    """The id of the deployment the workers serve (read once per process)."""
    name = f"incident_response/{settings.get().deployment}"
    if name not in _deployment_ids:
        async with get_client() as client:
            _deployment_ids[name] = (await client.read_deployment_by_name(name)).id
    return _deployment_ids[name]


async def start_incident_run(incident_id: str) -> str:
    """Create the incident's ``incident_response`` run once, from the served deployment.

    The idempotency key (deployment and incident) makes a second creation, by a racing handler or
    after a crash, return the run created first.
    """
    with session_scope() as s:
        inc = s.get_one(Incident, incident_id)
        if inc.flow_run_id:
            return inc.flow_run_id
        name = run_name(inc)
    deployment = await deployment_id()
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(
            deployment,
            parameters={"incident_id": incident_id},
            name=name,
            tags=[f"incident:{incident_id}"],
            idempotency_key=f"{deployment}:{incident_id}",
        )
    with session_scope() as s:
        s.execute(
            update(Incident)
            .where(Incident.id == incident_id, Incident.flow_run_id.is_(None))
            .values(flow_run_id=str(run.id))
        )
        return s.get_one(Incident, incident_id).flow_run_id or str(run.id)


async def level_raised(incident_id: str, old_level: int) -> None:
    with session_scope() as s:
        inc = s.get_one(Incident, incident_id)
        level, flow_run_id, name = inc.level, inc.flow_run_id, run_name(inc)
        # an overdue one shows as overdue; an alarm with no customer has its assessment instead
        first = outstanding(s, inc, "contact") or outstanding(s, inc, "assess")
        due = deadline_context(first.due_at, first.kind) if first else {}
    if not once(incident_id, f"level_raised-{level}"):
        return
    await tell.fn(incident_id, "level_raised", None, old_level=old_level, new_level=level, **due)
    if flow_run_id:
        async with get_client() as client:
            await client.update_flow_run(UUID(flow_run_id), name=name)


# No result to keep (the database holds the outcome) and ids only as parameters: persistence and
# pydantic validation of the parameters are per-run costs with nothing to gain.
# A result storage named here (Prefect's default folder; nothing is persisted): without one, Prefect asks
# the server for its default storage twice per run, two API calls per feedback in a storm (results.py).
@flow(
    name="handle_feedback",
    flow_run_name="{feedback_id}",
    persist_result=False,
    result_storage=Path.home() / ".prefect" / "storage",
    validate_parameters=False,
)
async def handle_feedback(feedback_id: str) -> str | None:
    with session_scope() as s:
        s.execute(update(Feedback).where(Feedback.id == feedback_id).values(flow_run_id=runtime.flow_run.id))
        fb = s.get_one(Feedback, feedback_id)
        incident_id, opened, raised_from = fb.incident_id, fb.opened_incident, fb.raised_from
    if incident_id and opened:
        await start_incident_run(incident_id)  # whose run archives the records
    elif incident_id and raised_from:
        await level_raised(incident_id, raised_from)
    if incident_id and not opened and not later_report_pending(feedback_id):
        await archive.fn(incident_id)  # one more customer, perhaps a new level: every record says so
    if incident_id is None:
        await route(feedback_id)  # a suggestion, inquiry or praise: its group is told, once
    with session_scope() as s:
        s.execute(update(Feedback).where(Feedback.id == feedback_id).values(handled_at=utcnow()))
    return incident_id

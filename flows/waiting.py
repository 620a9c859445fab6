"""Waiting for people with Prefect's own human-in-the-loop: ``suspend_flow_run`` + run input.

Why suspend (not pause, not receive): a suspended run holds no process, so hundreds of incidents can
wait days for a person; it survives a restart of the service; resuming it from another process (our
CLI/API, or Prefect's UI with the input form) reschedules it and the dispatcher runs it again from
the top. Our database is the source of truth for answers: ``wait_for`` first looks there, so an
answer typed before the flow reached its waiting point is never lost, and replays are cheap.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import aresume_flow_run, asuspend_flow_run

from incident import actions
from incident.errors import ActionError
from models import Incident, session_scope

log = logging.getLogger(__name__)


def stored(incident_id: str, key: str) -> dict[str, Any] | None:
    with session_scope() as session:
        return actions.answer(session, incident_id, key)


async def wait_for(incident_id: str, key: str) -> dict[str, Any]:
    """The answer for this waiting point: from the database, or after a suspension."""
    step = key.partition("-")[0]
    attempt = 0
    while True:
        answer = stored(incident_id, key)
        if answer is not None:
            return answer
        suspend_key = key if attempt == 0 else f"{key}-retry-{attempt}"
        given = await asuspend_flow_run(wait_for_input=actions.INPUTS[step], key=suspend_key)
        # Only reached when the run was resumed with input our database does not have yet
        # (for example from Prefect's UI): apply it through the same checks as the CLI.
        try:
            actions.APPLY[step](incident_id, given)
        except ActionError as exc:
            log.warning("input for %s at %s refused: %s", incident_id, suspend_key, exc.message)
        attempt += 1


async def pause_key(flow_run_id: str | UUID) -> str | None:
    """The waiting point a suspended run waits at, or None when it is not suspended."""
    async with get_client() as client:
        try:
            run = await client.read_flow_run(UUID(str(flow_run_id)))
        except ObjectNotFound:
            return None
    if run.state is None or not run.state.is_paused():
        return None
    return run.state.state_details.pause_key


async def nudge(incident_id: str) -> bool:
    """Resume the incident's run if it waits at a point the database already has an answer for.

    Called after every action and after every suspension, so neither side can miss the other.
    """
    with session_scope() as session:
        incident = session.get(Incident, incident_id)
        flow_run_id = incident.flow_run_id if incident else None
    if not flow_run_id:
        return False
    key = await pause_key(flow_run_id)
    if key is None:
        return False
    base = key.split("-retry-")[0]
    answer = stored(incident_id, base)
    if answer is None:
        return False
    try:
        await aresume_flow_run(UUID(flow_run_id), run_input=answer)
    except Exception as exc:  # already resumed by the other side: nothing to do
        log.debug("resume of %s at %s skipped: %s", incident_id, key, exc)
        return False
    from flows import dispatch

    dispatch.submit(flow_run_id)
    return True

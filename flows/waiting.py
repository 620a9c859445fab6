"""Waiting for people with Prefect's own human-in-the-loop: ``suspend_flow_run`` + run input.

Why suspend (not pause, not receive): a suspended run holds no process, so hundreds of incidents can
wait days for a person; it survives a restart of the service; resuming it from another process (our
CLI/API, or Prefect's UI with the input form) reschedules it, and the worker's runner executes it
again from the top. Our database is the source of truth for answers: ``wait_for`` first looks there,
so an answer typed before the flow reached its waiting point is never lost, and replays are cheap.
``deliver`` resumes a run whose answer is stored; it is called after each action and by the worker's
periodic sweep, so an answer stored while Prefect was away is delivered once it is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.flow_runs import asuspend_flow_run
from prefect.input import RunInput

from incident import settings
from incident.errors import ActionError
from incident.response import service as actions
from incident.response import steps
from models import Incident, Solution, session_scope
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
        f"Record it with `incident {step.action} {incident_id} …` or the console; an answer given here"
    )
    lines.append("goes through the same checks.")
    return "\n\n".join(lines)


async def wait_for(incident_id: str, key: str) -> dict[str, Any]:
    """The answer for this waiting point: from the database, or after a suspension."""
    step = steps.at(key)
    attempt = 0
    while True:
        answer = stored(incident_id, key)
        if answer is not None:
            return answer
        suspend_key = key if attempt == 0 else f"{key}-retry-{attempt}"
        form = RunInput.subclass_from_base_model_type(step.model)
        form = form.with_initial_data(description=describe(incident_id, key))
        given = await asuspend_flow_run(wait_for_input=form, key=suspend_key)
        # Only reached when the run was resumed with input our database does not have yet
        # (for example from Prefect's UI): apply it through the same checks as the CLI.
        fields = given.model_dump() if hasattr(given, "model_dump") else dict(given)
        try:
            step.act(incident_id, step.model.model_validate(fields))
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


def answer_for(incident_id: str, key: str) -> dict[str, Any] | None:
    """The stored answer for a pause key (``approval-2-retry-1`` waits for ``approval-2``)."""
    return stored(incident_id, key.split("-retry-")[0])


async def resume(flow_run_id: str, key: str, answer: dict[str, Any]) -> bool:
    """Resume a run paused at ``key`` with its answer; False if it had moved on already."""
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
    key = await pause_key(flow_run_id)
    if key is None:
        return False
    answer = answer_for(incident_id, key)
    if answer is None:
        return False
    return await resume(flow_run_id, key, answer)


UNREACHABLE = (httpx.HTTPError, PrefectHTTPStatusError, OSError)


async def try_deliver(incident_id: str) -> str:
    """After an action: ``delivered`` (the run moves on), ``stored`` (the run is not at that point
    yet: it finds the answer when it gets there) or ``pending`` (Prefect did not answer within
    ``INCIDENT_RESUME_TIMEOUT``: the worker's sweep delivers it once Prefect is back)."""
    try:
        moved = await asyncio.wait_for(deliver(incident_id), settings.get().resume_timeout)
    except (TimeoutError, *UNREACHABLE) as exc:
        log.warning("answer for %s stored, delivery pending: %s", incident_id, exc.__class__.__name__)
        return "pending"
    return "delivered" if moved else "stored"

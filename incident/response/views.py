"""HTTP routes of the human steps: ``POST /api/incidents/{id}/<action>``, one per row of the steps table.

Each stores the answer through the step's function as the authenticated person (``authority.perform``:
a refusal is on the timeline and a 403), then hands it to the waiting flow run; the answer's
``delivery`` says whether the run moved on, will find it later, or waits for Prefect to be back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from incident.api.schemas import ACTION_OUT, JSON_ROUTE
from incident.response.authority import perform
from incident.response.inputs import Answer
from incident.response.steps import STEPS, Step

router = APIRouter()


def _route(step: Step) -> None:
    async def act(request: Request, incident_id: str, body: Answer) -> dict[str, Any]:
        from flows.waiting import try_deliver

        actor = getattr(request.state, "actor", None)
        result = await run_in_threadpool(perform, step, incident_id, body, actor)
        return {**result, "delivery": await try_deliver(incident_id)}

    act.__name__ = f"{step.action}_incident"  # the operationId: generated clients get contact_incident()
    act.__doc__ = step.help
    act.__annotations__ = {
        "request": Request,
        "incident_id": str,
        "body": step.model,
        "return": dict[str, Any],
    }
    path = f"/api/incidents/{{incident_id}}/{step.action}"
    router.post(path, response_model=ACTION_OUT[step.action], **JSON_ROUTE)(act)


for _step in STEPS:
    _route(_step)

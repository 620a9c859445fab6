"""``incident contact|measure|cause|propose|approve|confirm|survey``: the human steps from a terminal.

Each command validates with its step's model from ``incident.response.steps`` (imported when the command
runs, to keep start-up light) and posts it to the step's route; the help texts are the steps' own
(``tests/test_steps.py`` holds them equal).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from incident.terminal import JsonOpt, build, call, emit

app = typer.Typer()


def act(incident_id: str, action: str, as_json: bool, **fields: Any) -> None:
    from incident.response.steps import BY_ACTION

    step = BY_ACTION[action]
    body = build(step.model, as_json, **fields)
    path = f"/api/incidents/{incident_id}/{action}"
    data = call(as_json, "POST", path, json=body.model_dump(exclude_none=True))
    emit(data, as_json)


@app.command("contact")
def contact_(
    incident_id: str,
    by: Annotated[str, typer.Option(help="who called the customer")],
    note: str | None = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the first (or a further) contact with the customer."""
    act(incident_id, "contact", as_json, by=by, note=note)


@app.command()
def measure(
    incident_id: str,
    kind: Annotated[str, typer.Option(help="a temporary measure of the playbook")],
    by: str = "on-call",
    note: str | None = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a temporary measure (spare_product, coupon, reschedule …)."""
    act(incident_id, "measure", as_json, kind=kind, by=by, note=note)


@app.command("cause")
def cause_(
    incident_id: str,
    root: Annotated[str, typer.Option(help="root cause")],
    direct: Annotated[str, typer.Option(help="direct cause")],
    stage: Annotated[str, typer.Option(help="production service logistics system external")],
    by: str = "on-call",
    as_json: JsonOpt = False,
) -> None:
    """Record the cause analysis."""
    act(incident_id, "cause", as_json, root=root, direct=direct, stage=stage, by=by)


@app.command()
def propose(
    incident_id: str,
    solution: Annotated[str, typer.Option(help="a solution of the playbook")],
    by: str = "on-call",
    note: str | None = None,
    legal_reviewed: bool = False,
    as_json: JsonOpt = False,
) -> None:
    """Propose the solution; it then waits for the level's approver."""
    fields = {"solution": solution, "by": by, "note": note, "legal_reviewed": legal_reviewed}
    act(incident_id, "propose", as_json, **fields)


@app.command()
def approve(
    incident_id: str,
    by: Annotated[str | None, typer.Option(help="approver's name (INCIDENT_TOKEN: the person's)")] = None,
    role: Annotated[
        str | None, typer.Option(help="leadership (L1) or dept_head (L2/L3); one the person holds")
    ] = None,
    reject: bool = False,
    reason: str | None = None,
    legal_reviewed: bool = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve (or --reject --reason) the proposed solution; only the level's approver role may."""
    fields = {"by": by, "role": role, "reject": reject, "reason": reason, "legal_reviewed": legal_reviewed}
    act(incident_id, "approve", as_json, **fields)


@app.command()
def confirm(
    incident_id: str,
    result: Annotated[str, typer.Option(help="satisfied neutral unsatisfied")],
    by: str = "customer",
    note: str | None = None,
    as_json: JsonOpt = False,
) -> None:
    """The customer's confirmation of the result."""
    act(incident_id, "confirm", as_json, result=result, by=by, note=note)


@app.command()
def survey(
    incident_id: str,
    speed: Annotated[int, typer.Option(help="1-5")],
    result: Annotated[int, typer.Option(help="1-5")],
    attitude: Annotated[int, typer.Option(help="1-5")],
    suggestion: str | None = None,
    by: str = "customer_service",
    as_json: JsonOpt = False,
) -> None:
    """The satisfaction survey; below the level's target opens another follow-up round."""
    fields = {"speed": speed, "result": result, "attitude": attitude, "suggestion": suggestion, "by": by}
    act(incident_id, "survey", as_json, **fields)

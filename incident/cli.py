"""The ``incident`` command (typer). Every command takes ``--json`` and then prints one JSON object.

Input is validated here with the same pydantic models the API uses, so bad input is one line on
stderr and exit code 2 before anything is sent or stored.

Why the application modules are imported inside the commands: ``incident --version``, shell
completion and ``incident db`` must answer in a fraction of a second and without the service's
stack (FastAPI, the ORM's models, Prefect); only the command that runs pays for what it needs.
Colour follows rich, which honours ``NO_COLOR`` (and ``FORCE_COLOR``) from the environment.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from typer._click.exceptions import ClickException  # typer >= 0.29 vendors click

if TYPE_CHECKING:
    from incident.client import Client

app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Emergency incident response for after-sales service.",
)
out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")]


def fail(message: str, as_json: bool, code: int = 2) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message}, ensure_ascii=False))
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"incident {version('incident-orchestrator')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Emergency incident response for after-sales service."""


def _client() -> Client:
    from incident.client import Client

    return Client()


def build(model: type[BaseModel], as_json: bool, **fields: Any) -> BaseModel:
    from incident.api import validation_message

    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        fail(validation_message(list(exc.errors())), as_json)


def call(as_json: bool, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    from incident.client import ServiceError

    try:
        return _client().json(method, path, **kwargs)
    except ServiceError as exc:
        fail(exc.message, as_json, 2 if 400 <= exc.status < 500 else 1)


def emit(data: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], None] | None = None) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    elif human:
        human(data)
    else:
        for key, value in data.items():
            out.print(f"[bold]{key}[/]: {value}")


@app.command()
def report(
    category: Annotated[
        str | None, typer.Option(help="product_quality | service_failure | special_scenario")
    ] = None,
    summary: Annotated[str | None, typer.Option(help="what the customer says")] = None,
    customer: str | None = None,
    contact: Annotated[
        str | None, typer.Option(help="phone or e-mail (kept internal, always masked)")
    ] = None,
    order: str | None = None,
    channel: Annotated[str, typer.Option(help="phone app web email social store internal")] = "phone",
    kind: Annotated[str, typer.Option(help="complaint suggestion inquiry praise alarm")] = "complaint",
    product_model: str | None = None,
    serial: str | None = None,
    batch: str | None = None,
    service: Annotated[str | None, typer.Option(help="the failing service (service failures)")] = None,
    region: str | None = None,
    cause: Annotated[str | None, typer.Option(help="the outside cause (special scenarios)")] = None,
    purchase_date: str | None = None,
    occurred_at: str | None = None,
    impact: str | None = None,
    mood: Annotated[str | None, typer.Option(help="agitated calm anxious")] = None,
    customers: Annotated[int, typer.Option(help="customers this report speaks for")] = 1,
    media: bool = False,
    injury: bool = False,
    property_loss: bool = False,
    brand_risk: bool = False,
    outage: Annotated[str | None, typer.Option(help="regional")] = None,
    big_loss: bool = False,
    compensation_demand: bool = False,
    as_json: JsonOpt = False,
) -> None:
    """Record one feedback, grade it, open or join its incident, start its flow run."""
    fields = {k: v for k, v in locals().items() if k != "as_json"}  # first: before any local name
    from incident.intake import FeedbackIn

    body = build(FeedbackIn, as_json, **fields)
    data = call(as_json, "POST", "/api/feedback", json=body.model_dump(exclude_none=True))
    emit(data, as_json)


def _incident_table(rows: list[dict[str, Any]]) -> None:
    table = Table("incident", "level", "category", "status", "customers", "next deadline")
    for row in rows:
        nxt = row.get("next_deadline") or {}
        table.add_row(
            row["incident_id"],
            f"L{row['level']}",
            row["category"],
            row["status"],
            str(row["customers"]),
            f"{nxt.get('kind', '')} {nxt.get('due_at', '')}".strip(),
        )
    out.print(table)


@app.command("list")
def list_(
    open_only: Annotated[bool, typer.Option("--open", help="only open incidents")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Incidents, newest first."""
    data = call(as_json, "GET", "/api/incidents", params={"open": open_only})
    emit(data, as_json, lambda d: _incident_table(d["incidents"]))


def _show_human(data: dict[str, Any]) -> None:
    out.print(
        f"[bold]{data['incident_id']}[/] L{data['level']} {data['category']} — {data['status']}, "
        f"{data['customers']} customer(s); waiting for: {data.get('waiting_for') or '-'}"
    )
    out.print(data["summary"])
    table = Table("at", "event", "by", "detail")
    for event in data["timeline"]:
        table.add_row(event["at"][:19], event["event"], event["by"], event.get("detail") or "")
    out.print(table)
    deadlines = Table("deadline", "due", "state")
    for d in data["deadlines"]:
        deadlines.add_row(d["kind"], d["due_at"][:19], d["state"])
    out.print(deadlines)


@app.command()
def show(incident_id: str, as_json: JsonOpt = False) -> None:
    """One incident with its timeline and deadlines."""
    emit(call(as_json, "GET", f"/api/incidents/{incident_id}"), as_json, _show_human)


def _act(incident_id: str, name: str, model: str, as_json: bool, **fields: Any) -> None:
    """Validate with ``incident.actions.<model>`` (the API's own model), then POST the action."""
    from incident import actions

    body = build(getattr(actions, model), as_json, **fields)
    emit(
        call(
            as_json, "POST", f"/api/incidents/{incident_id}/{name}", json=body.model_dump(exclude_none=True)
        ),
        as_json,
    )


@app.command("contact")
def contact_(
    incident_id: str,
    by: Annotated[str, typer.Option(help="who called the customer")],
    note: str | None = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the first (or a further) contact with the customer."""
    _act(incident_id, "contact", "ContactIn", as_json, by=by, note=note)


@app.command()
def measure(
    incident_id: str,
    kind: Annotated[str, typer.Option(help="a temporary measure of the playbook")],
    by: str = "on-call",
    note: str | None = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a temporary measure (spare_product, coupon, reschedule …)."""
    _act(incident_id, "measure", "MeasureIn", as_json, kind=kind, by=by, note=note)


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
    _act(incident_id, "cause", "CauseIn", as_json, root=root, direct=direct, stage=stage, by=by)


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
    _act(
        incident_id,
        "propose",
        "ProposeIn",
        as_json,
        solution=solution,
        by=by,
        note=note,
        legal_reviewed=legal_reviewed,
    )


@app.command()
def approve(
    incident_id: str,
    by: Annotated[str, typer.Option(help="approver's name")],
    role: Annotated[str, typer.Option(help="approver's role: leadership (L1) or dept_head (L2/L3)")],
    reject: bool = False,
    reason: str | None = None,
    legal_reviewed: bool = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve (or --reject --reason) the proposed solution; only the level's approver role may."""
    _act(
        incident_id,
        "approve",
        "ApproveIn",
        as_json,
        by=by,
        role=role,
        reject=reject,
        reason=reason,
        legal_reviewed=legal_reviewed,
    )


@app.command()
def confirm(
    incident_id: str,
    result: Annotated[str, typer.Option(help="satisfied neutral unsatisfied")],
    by: str = "customer",
    note: str | None = None,
    as_json: JsonOpt = False,
) -> None:
    """The customer's confirmation of the result."""
    _act(incident_id, "confirm", "ConfirmIn", as_json, result=result, by=by, note=note)


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
    _act(
        incident_id,
        "survey",
        "SurveyIn",
        as_json,
        speed=speed,
        result=result,
        attitude=attitude,
        suggestion=suggestion,
        by=by,
    )


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the service: HTTP API, flow runs and the deadline watcher (until stopped)."""
    from incident import db_cli
    from incident.server import ServeError, run

    db_cli.preflight(fail)  # a wrong INCIDENT_DB_URL is one line here, not a migration's traceback
    try:
        run(host, port)
    except ServeError as exc:
        fail(str(exc), False)


@app.command()
def worker() -> None:
    """Run one more flow worker (another machine, the same PREFECT_API_URL and INCIDENT_DB_URL)."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        fail("PREFECT_API_URL must name the Prefect server the service uses", False)
    from incident.engine.worker import main as run_worker

    run_worker()


@app.command()
def demo(as_json: JsonOpt = False) -> None:
    """Run domain.md's three worked examples end to end and print where their post-mortems are."""
    from incident.demo import run_demo

    emit(
        run_demo(call),
        as_json,
        lambda d: [
            out.print(  # a path must stay on one line to be copied
                f"{r['incident_id']} L{r['level']} {r['category']}: {r['status']} → {r['postmortem']}",
                soft_wrap=True,
            )
            for r in d["incidents"]
        ],
    )


from incident import db_cli, metrics_cli  # noqa: E402  (handed the helpers above)

metrics_cli.register(app, call=call, fail=fail, emit=emit)  # `incident records`, `incident metrics`
db_cli.register(app, fail=fail, emit=emit)  # `incident db upgrade|current|downgrade`


def main() -> None:
    try:
        code = app(standalone_mode=False)  # returns (not raises) the code of typer.Exit
    except ClickException as exc:  # unknown option, missing argument: one line, exit 2
        message = exc.format_message()
        if "--json" in sys.argv:
            print(json.dumps({"error": message}, ensure_ascii=False))
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

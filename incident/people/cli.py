"""``incident people add|list|remove|import`` (the directory) and ``incident audit [ID]``.

Adding prints the person's token once: it is stored only hashed, so a lost token means removing and
adding the person again. Managing the directory needs the service token (``INCIDENT_API_TOKEN``, or the
one the service keeps in ``INCIDENT_HOME``): unset ``INCIDENT_TOKEN`` to use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from incident.terminal import JsonOpt, build, call, emit, fail, out

app = typer.Typer(help="The directory of people: who they are, their roles, how they are told.")
commands = typer.Typer()  # mounted on the root: `incident audit`


def _people_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("name", "roles", *(["token (shown once)"] if rows and "token" in rows[0] else []))
    for row in rows:
        table.add_row(row["name"], ", ".join(row["roles"]), *([row["token"]] if "token" in row else []))
    out.print(table, soft_wrap=True)


@app.command()
def add(
    name: str,
    role: Annotated[list[str], typer.Option("--role", help="a role of the vocabulary; repeat for more")],
    notify: Annotated[list[str] | None, typer.Option("--notify", help="an apprise URL; repeat")] = None,
    phone: str | None = None,
    email: str | None = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a person with their roles; prints their token, shown this once."""
    from incident.people.service import PersonIn

    body = build(PersonIn, as_json, name=name, roles=role, notify=notify or [], phone=phone, email=email)
    emit(call(as_json, "POST", "/api/people", json=body.model_dump(exclude_none=True)), as_json,
         lambda d: _people_table([d]))  # fmt: skip


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Everyone in the directory with their roles."""
    emit(call(as_json, "GET", "/api/people"), as_json, lambda d: _people_table(d["people"]))


@app.command()
def remove(name: str, as_json: JsonOpt = False) -> None:
    """Remove a person; their token stops working at once."""
    emit(call(as_json, "DELETE", f"/api/people/{quote(name, safe='')}"), as_json,
         lambda d: out.print(f"removed {d['name']}"))  # fmt: skip


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="an emergency contact list: .csv or .yaml")],
    as_json: JsonOpt = False,
) -> None:
    """Add the people of an emergency contact list (CSV or YAML); all or nobody."""
    from pydantic import ValidationError

    from incident.api.errors import validation_message
    from incident.errors import ActionError
    from incident.people import contacts
    from incident.people.service import PeopleIn

    try:
        body = PeopleIn.model_validate({"people": contacts.read(file)})
    except ActionError as exc:
        fail(exc.message, as_json)
    except ValidationError as exc:
        fail(validation_message(list(exc.errors())), as_json)
    data = call(as_json, "POST", "/api/people/import", json=body.model_dump(exclude_none=True))
    emit(data, as_json, lambda d: _people_table(d["people"]))


@commands.command()
def audit(incident_id: Annotated[str | None, typer.Argument()] = None, as_json: JsonOpt = False) -> None:
    """Who did or tried what, when and on which incident (outcome ok or refused)."""
    path = f"/api/audit/{quote(incident_id, safe='')}" if incident_id else "/api/audit"

    def human(data: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table("at", "who", "action", "incident", "outcome")
        for e in data["events"]:
            table.add_row(e["at"][:19], e["who"], e["action"], e["incident_id"] or "", e["outcome"])
        out.print(table)

    emit(call(as_json, "GET", path), as_json, human)

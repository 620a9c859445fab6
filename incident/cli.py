"""The ``incident`` command: the domain folders' sub-apps mounted on one typer app.

Every command takes ``--json`` and then prints one JSON object; input is validated with the API's own
pydantic models, so bad input is one line on stderr and exit code 2 before anything is sent or stored
(``incident/terminal.py``). Where a command lives: ``incident/<noun>/cli.py`` (``report`` in feedback,
``list``/``show``/``notifications`` in incidents, the human steps in response, ``records``/``postmortem``
in records, ``metrics``, ``db`` in database, ``serve``/``worker`` in engine).

Why the application modules are imported inside the commands: ``incident --version``, shell completion
and ``incident db`` must answer in a fraction of a second and without the service's stack (FastAPI, the
ORM's models, Prefect); only the command that runs pays for what it needs.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from typer._click.exceptions import ClickException  # typer >= 0.29 vendors click

from incident.database.cli import app as database
from incident.engine.cli import app as engine
from incident.errors import SettingsError
from incident.feedback.cli import app as feedback
from incident.incidents.cli import app as incidents
from incident.metrics.cli import app as metrics
from incident.people.cli import app as people
from incident.people.cli import commands as people_commands
from incident.records.cli import app as records
from incident.response.cli import app as response
from incident.terminal import JsonOpt, call, emit, out

app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Emergency incident response for after-sales service.",
)
for sub in (feedback, incidents, response, records, metrics, engine, people_commands):
    app.add_typer(sub)  # no name: its commands are the root's (`incident report`, `incident approve` …)
app.add_typer(database, name="db")
app.add_typer(people, name="people")


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
    except SettingsError as exc:  # a wrong INCIDENT_* variable: one line naming it, exit 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

"""The ``incident`` command: the domain folders' commands on one argparse parser.

Every command that talks to the service takes ``--json`` and then prints one JSON object; a usage error
or an input the service refuses is one line on stderr and exit 2, before anything is stored
(``incident/terminal.py`` says why this is the standard library's argparse and not typer). Where a command
lives: ``incident/<noun>/cli.py`` (``report`` in feedback, ``list``/``show``/``notifications`` in
incidents, the human steps in response, ``records``/``postmortem`` in records, ``metrics``, ``people``
and ``audit`` in people, ``db`` in database, ``serve``/``worker`` in engine).

Why nothing heavy is imported here: a command must answer within 3× a bare Python start
(``bench/cli_speed.py``), so only the command that runs pays for what it needs (FastAPI, the ORM's
models, Prefect are imported inside ``serve``, ``worker``, ``db`` and ``demo``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from incident.actions.cli import root as actions
from incident.archive.cli import commands as archive
from incident.database.cli import commands as database
from incident.deadlines.cli import commands as deadlines
from incident.engine.cli import commands as engine
from incident.errors import SettingsError
from incident.feedback.cli import commands as feedback
from incident.inbox.cli import commands as inbox
from incident.incidents.cli import commands as incidents
from incident.meetings.cli import commands as meetings
from incident.metrics.cli import commands as metrics
from incident.people.cli import commands as people
from incident.people.cli import deputy, rota, systems
from incident.people.cli import root as people_root
from incident.records.cli import commands as records
from incident.response.cli import commands as response
from incident.reviews.cli import commands as reviews
from incident.terminal import Args, Command, Exit, Group, Parser, call, emit, fail, said, say, word

root = Group()
JSON_HELP = "print exactly one JSON object"  # help is said in INCIDENT_LANG when shown (cli_option)
VERSION_HELP = "print the version and exit"
DESCRIPTION = "Emergency incident response for after-sales service."
GROUPS = (
    feedback, incidents, response, meetings, actions, deadlines, records, metrics, people_root, root, engine,
    database, people, deputy, rota, systems, inbox, reviews, archive,
)  # fmt: skip


@root.command("demo")
def demo(a: Args) -> None:
    """Run domain.md's three worked examples end to end and print where their post-mortems are."""
    from incident.demo import DemoError, run_demo

    def human(d: dict[str, object]) -> None:
        for r in d["incidents"]:  # type: ignore[attr-defined]
            grade = f"{word('level_short', r['level'])} {word('category', r['category'])}"
            state = word("postmortem_state", r.get("postmortem_state", "draft"))
            say(f"{r['incident_id']} {grade}: {word('status', r['status'])}, {state} → {r['postmortem']}")

    try:
        done = run_demo(call)
    except DemoError as exc:  # an example did not close: say which and where to look, exit 1
        fail(str(exc), a.json, 1)
    emit(done, a.json, human)


def _version() -> str:
    from importlib.metadata import version

    return f"incident {version('incident-orchestrator')}"


class _Version(argparse.Action):
    """``--version`` answered when met, without building the rest."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(_version())
        raise Exit(0)


def parser(argv: Sequence[str] = (), everything: bool = False) -> Parser:
    """The whole command line; only the commands named in ``argv`` get their options (building all of
    them costs more than a command may take, and ``incident --help`` lists names and help only), unless
    ``everything`` (shell completion). Built in English: ``Parser`` says its help and errors in
    INCIDENT_LANG when it shows them, so a command that just runs reads no vocabulary first."""
    named = _Everything() if everything else set(argv[:2])
    top = Parser(prog="incident", description=DESCRIPTION)
    top.add_argument("--version", action=_Version, nargs=0, help=VERSION_HELP)
    subs = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in GROUPS:
        target = subs
        if group.name:
            nested = subs.add_parser(group.name, help=group.help, description=group.help)
            target = nested.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
            nested.set_defaults(run=lambda _a, p=nested: p.print_help(), json=False)
            if group.name not in named:
                continue
            if group.default:  # `incident inbox` alone runs its listing, with that command's options
                _options(nested, next(c for c in group.commands if c.name == group.default))
        for command in group.commands:
            sub = target.add_parser(command.name, help=command.help, description=command.run.__doc__)
            sub.set_defaults(run=command.run, json=False)
            if command.name in named:
                _options(sub, command)
    top.set_defaults(run=lambda _a: top.print_help(), json=False)
    return top


def _options(sub: argparse.ArgumentParser, command: Command) -> None:
    sub.set_defaults(run=command.run, json=False)
    for option in command.options:
        sub.add_argument(*option.flags, **option.kwargs)
    if command.takes_json:
        sub.add_argument("--json", action="store_true", help=JSON_HELP)


class _Everything(set[str]):
    def __contains__(self, _: object) -> bool:
        return True


def _complete() -> None:
    """Shell completion through argcomplete, which answers and exits when the shell asks (its
    ``_ARGCOMPLETE`` variable); see the README for ``register-python-argcomplete incident``."""
    if "_ARGCOMPLETE" in os.environ:
        import argcomplete

        argcomplete.autocomplete(parser(everything=True))


def run(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _complete()
        args = parser(argv).parse_args(argv)
        args.run(args)
    except Exit as exc:
        return exc.code
    except SettingsError as exc:  # a wrong INCIDENT_* variable: one line naming it, exit 2
        message = str(exc)
        if "--json" in argv:
            print(json.dumps({"error": message, "code": "settings"}, ensure_ascii=False))
        try:
            line = said("cli", "error", message=message)
        except SettingsError:  # INCIDENT_LANG itself is the wrong one: said in English
            line = f"error: {message}"
        print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()

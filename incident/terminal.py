"""What every command shares: its declaration, one JSON object with ``--json``, one line and exit 2 on error.

Why the standard library (argparse, urllib) and not typer, rich and httpx: issue 12 asks every command to
answer within 3× a bare ``python3 -c "import json, urllib.request"``, and importing typer and rich alone
took about that (``bench/cli_speed.py`` prints the ratio). A command is a plain function taking the
parsed arguments, declared with its options beside it in its domain's ``cli.py``; the input is
validated by the service with the API's own pydantic models (a 4xx is exit 2 with the field named, and
nothing is stored), so the two can't disagree. Commands that run locally (``serve``, ``db``, ``demo``)
import what they need inside the function.

What a person reads is written for people: the words come from the playbooks' vocabulary (zh by default,
``INCIDENT_LANG=en``), times are local (``INCIDENT_TZ``, else the machine's zone, its name shown), and a
table never cuts a cell, so an id can always be copied.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from incident import environ

if TYPE_CHECKING:
    from incident.client import Response

Args = argparse.Namespace
Run = Callable[[Args], None]


class Exit(Exception):
    """A command's end with this exit code (the root turns it into ``sys.exit``)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Opt:
    """One ``argparse.add_argument`` call: its flags (or a positional name) and keywords."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any]


def opt(*flags: str, **kwargs: Any) -> Opt:
    return Opt(flags, kwargs)


INCIDENT = Opt(("incident_id",), {"metavar": "ID", "help": "the incident, e.g. INC-20261202-0001"})


def flag(name: str, help: str | None = None) -> Opt:
    """A yes/no option, with its ``--no-`` form."""
    return opt(name, action=argparse.BooleanOptionalAction, default=False, help=help)


@dataclass(frozen=True)
class Command:
    name: str
    run: Run
    options: tuple[Opt, ...]
    takes_json: bool

    @property
    def help(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0] if self.run.__doc__ else ""


@dataclass
class Group:
    """One ``cli.py``'s commands; with a ``name`` they sit under it (``incident db upgrade``)."""

    name: str | None = None
    help: str = ""
    commands: list[Command] = field(default_factory=list)
    default: str | None = None  # the command the group's name alone runs (``incident inbox``)

    def command(self, name: str | None = None, *options: Opt, json: bool = True) -> Callable[[Run], Run]:
        def register(run: Run) -> Run:
            self.commands.append(Command(name or run.__name__.rstrip("_"), run, options, json))
            return run

        return register


class Parser(argparse.ArgumentParser):
    """argparse that says a usage error in one line, exit 2 (and as JSON when ``--json`` was given).

    Help and errors are said in INCIDENT_LANG, but only when they are shown: a command that just runs
    builds its parser in English and never reads the vocabulary before its request (``bench/cli_speed.py``).
    """

    def error(self, message: str) -> NoReturn:
        said_message = argparse_words(message)
        fail(
            said("cli", "see_help", message=said_message, prog=self.prog),
            "--json" in sys.argv[1:],
            kind="usage",
        )

    def format_help(self) -> str:
        translate_parser(self)
        return super().format_help()

    def format_usage(self) -> str:
        speak_argparse()
        return super().format_usage()


def fail(message: str, as_json: bool, code: int = 2, kind: str | None = None) -> NoReturn:
    """One line on stderr ("错误：…" / "error: …"), and with ``--json`` one object on stdout:
    ``{"error": <the line, in INCIDENT_LANG>, "code": <the service's code, or usage>}``."""
    message = localized(message)
    if as_json:
        print(json.dumps({"error": message, "code": kind}, ensure_ascii=False))
    print(said("cli", "error", message=message), file=sys.stderr)
    raise Exit(code)


def localized(message: str) -> str:
    """A message the CLI made itself, in INCIDENT_LANG: the vocabulary's ``cli_error`` (and ``error``)
    phrases read it back from its English and fill the Chinese with the same values (as given: the
    service says codes in words; the CLI's own messages only carry options, paths and values)."""
    if environ.lang() == "en":
        return message
    for pattern, zh in _phrases():
        found = pattern.match(message)
        if found:
            values = found.groupdict()
            return re.sub(r"\{(\w+)\}", lambda m, v=values: v.get(m[1]) or "", zh)
    return message


@lru_cache(maxsize=1)
def _phrases() -> list[tuple[re.Pattern[str], str]]:
    words = _vocabulary(_vocabulary_file())
    found = []
    for domain in ("cli_error", "error"):
        for entry in words.get(domain, {}).values():
            parts = re.split(r"\{(\w+)\}", str(entry.get("en", "")))
            regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
            literal = sum(len(p) for p in parts[0::2])
            found.append((literal, re.compile(f"^{regex}$", re.S), str(entry.get("zh", ""))))
    return [(pattern, zh) for _, pattern, zh in sorted(found, key=lambda x: -x[0])]


def call(as_json: bool, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One JSON request to the service (started if needed); its 4xx is exit 2, the rest exit 1."""
    return _answer(as_json, method, path, **kwargs).json()  # type: ignore[no-any-return]


def download(path: str, params: dict[str, Any], as_json: bool) -> Response:
    """GET bytes from the service; 4xx → exit 2 with the service's one-line message."""
    return _answer(as_json, "GET", path, params=params)


def _answer(as_json: bool, method: str, path: str, **kwargs: Any) -> Response:
    from incident.client import Client, ServiceError

    try:
        return Client().call(method, path, **kwargs)
    except ServiceError as exc:
        fail(exc.message, as_json, 2 if 400 <= exc.status < 500 else 1, exc.code)


def write(path: Path, body: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return str(path.resolve())


def emit(data: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], None] | None = None) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    elif human:
        human(data)
    else:
        for key, value in data.items():
            say(f"{word('field', key)}: {text(value, key)}")


def say(line: str = "") -> None:
    print(line)


# --- words, times and tables for people -------------------------------------------------------------


@lru_cache(maxsize=4)
def _vocabulary(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """The playbooks' vocabulary as written (``playbooks.vocabulary`` validates the same file; importing
    that package here would cost pydantic). Kept as JSON in the home beside its YAML's size and time:
    importing a YAML parser costs a third of a command's budget, reading JSON almost nothing."""
    stat = path.stat()
    digest = hashlib.sha1(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    kept = environ.home() / "cache" / f"vocabulary-{digest}.json"
    try:
        return json.loads(kept.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        pass
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    words = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}  # noqa: S506 (a safe loader)
    kept.parent.mkdir(exist_ok=True)
    environ.write_whole(kept, json.dumps(words, ensure_ascii=False))  # a concurrent command: old or new
    return words  # type: ignore[no-any-return]


def _vocabulary_file() -> Path:
    folder = os.environ.get("INCIDENT_PLAYBOOKS")  # as ``playbooks.folder()`` reads it
    if folder and (Path(folder) / "vocabulary.yaml").exists():
        return Path(folder) / "vocabulary.yaml"
    from importlib.util import find_spec

    spec = find_spec("playbooks")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) / "vocabulary.yaml"


def said(domain: str, code: str, **values: object) -> str:
    """A phrase of the vocabulary in INCIDENT_LANG with its ``{placeholders}`` filled as given (the
    service says codes in words; the CLI's own phrases only carry messages, names and paths)."""
    entry = _vocabulary(_vocabulary_file()).get(domain, {}).get(code)
    pattern = entry.get(environ.lang(), code) if entry else code
    for name, value in values.items():
        pattern = pattern.replace("{" + name + "}", str(value))
    return pattern


def _argparse_patterns() -> list[tuple[re.Pattern[str], str]]:
    """argparse's English messages (printf-style) as patterns, the most specific first."""
    found = []
    for english, entry in _vocabulary(_vocabulary_file()).get("argparse", {}).items():
        parts = re.split(r"(%\(\w+\)[sr]|%[sr])", english)
        regex = "".join(re.escape(p) if i % 2 == 0 else "(.+?)" for i, p in enumerate(parts))
        found.append(
            (len(english) - len(parts), re.compile(f"^{regex}$", re.S), str(entry.get("zh", english)))
        )
    return [(pattern, zh) for _, pattern, zh in sorted(found, key=lambda x: -x[0])]


def argparse_words(message: str) -> str:
    """An error argparse made in English, in INCIDENT_LANG ("argument --kind: invalid choice: …" nests)."""
    if environ.lang() == "en":
        return message
    for pattern, zh in _argparse_patterns():
        match = pattern.match(message)
        if match:
            groups = match.groups()
            command = said("cli", "command")
            said_groups = [
                argparse_words(v) if i == len(groups) - 1 else (command if v == "COMMAND" else v)
                for i, v in enumerate(groups)
            ]
            values = iter(said_groups)
            return re.sub(r"%\(\w+\)[sr]|%[sr]", lambda _, left=values: next(left, ""), zh)
    return message


def translate_parser(parser: argparse.ArgumentParser) -> None:
    """A parser's help in INCIDENT_LANG, just before it is shown: its sections, its commands' and
    options' help (the vocabulary's ``cli_command`` and ``cli_option``), its description."""
    if environ.lang() == "en":
        return
    speak_argparse()
    name = parser.prog.partition(" ")[2]
    for group in parser._action_groups:
        group.title = argparse._(group.title) if group.title else group.title  # type: ignore[attr-defined]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.metavar = said("cli", "command")
            for choice in action._choices_actions:
                full = f"{name} {choice.dest}".strip()
                choice.help = help_words("command", choice.help, full)
        elif action.help and action.help is not argparse.SUPPRESS:
            action.help = (
                help_words("option", action.help) if action.dest != "help" else argparse._(action.help)
            )  # type: ignore[attr-defined]
    if parser.description:
        first = parser.description.strip().splitlines()[0]
        said_first = help_words("command", first, name) if name else said("cli", "description")
        parser.description = said_first if said_first != first else parser.description


def speak_argparse() -> None:
    """argparse's own words ("usage:", "the following arguments are required") in INCIDENT_LANG.

    argparse says them through ``gettext`` bound at its import (``argparse._``, ``argparse.ngettext``);
    for Chinese both are pointed at the vocabulary's ``argparse`` phrases (keyed by argparse's English,
    as a gettext catalogue is), so no compiled catalogue has to ship with the package.
    """
    if environ.lang() == "en":
        return
    phrases = _vocabulary(_vocabulary_file()).get("argparse", {})

    def gettext(message: str) -> str:
        entry = phrases.get(message)
        return str(entry.get("zh", message)) if entry else message

    def ngettext(singular: str, plural: str, n: int) -> str:
        return gettext(singular if n == 1 else plural)

    argparse._ = gettext  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]


def help_words(kind: str, english: str | None, name: str | None = None) -> str | None:
    """A command's or an option's help in INCIDENT_LANG: the vocabulary's ``cli_command`` (by the
    command's ``name``) or ``cli_option`` (by the English help, gettext-style) words; else the English."""
    if not english or environ.lang() == "en":
        return english
    entry = _vocabulary(_vocabulary_file()).get(f"cli_{kind}", {}).get(name or english)
    return str(entry.get("zh", english)) if entry else english


def word(domain: str, code: object) -> str:
    """The vocabulary's word for ``code`` in INCIDENT_LANG; the code itself when it has none."""
    if code is None or code == "":
        return ""
    key = str(code).lower() if isinstance(code, bool) else str(code)
    entry = _vocabulary(_vocabulary_file()).get(domain, {}).get(key)
    return entry.get(environ.lang(), key) if entry else key


def when(value: str | None) -> str:
    """An ISO 8601 time as people read it: local (INCIDENT_TZ or the machine's), to the minute, with its
    offset ("2026-12-06 10:30 +08:00")."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return environ.stamp(moment)


def text(value: object, key: str = "") -> str:
    """A value for people: no ``None``/``False``/dict reprs."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return word("bool", value)
    if isinstance(value, dict):
        return ", ".join(f"{word('field', k)} {text(v, k)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) or "—"
    if isinstance(value, str) and (key.endswith(("_at", "_deadline")) or key == "at"):
        return when(value)
    if key in ("level", "raised_from") and isinstance(value, int):
        return word("level_short", value)
    if isinstance(value, str) and key in ("delivery", "category", "status"):
        return word(key, value)
    return str(value)


def _width(cell: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in cell)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Aligned columns that never cut a cell (a wide table wraps in the terminal instead)."""
    cells = [[str(h) for h in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        say("  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            say("  ".join("─" * w for w in widths))
    if len(cells) == 1:
        say(word("field", "none"))

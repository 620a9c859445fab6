"""``incident people add|list|remove|import`` (the directory) and ``incident audit [ID]``.

Adding prints the person's token once: it is stored only hashed, so a lost token means removing and
adding the person again. Managing the directory needs the service token (``INCIDENT_API_TOKEN``, or the
one the service keeps in ``INCIDENT_HOME``): unset ``INCIDENT_TOKEN`` to use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from incident.terminal import Args, Group, call, emit, fail, opt, say, table, when, word

commands = Group("people", "The directory of people: who they are, their roles, how they are told.")
root = Group()  # mounted on the root: `incident audit`


def _people_table(rows: list[dict[str, Any]]) -> None:
    shown = rows and "token" in rows[0]
    table(
        [word("field", h) for h in ("name", "roles", *(["token"] if shown else []))],
        (
            (r["name"], "，".join(word("role", x) for x in r["roles"]), *([r["token"]] if shown else []))
            for r in rows
        ),
    )


@commands.command(
    "add",
    opt("name", help="the person's name as the team writes it"),
    opt("--role", action="append", required=True, help="a role of the vocabulary; repeat for more"),
    opt("--notify", action="append", default=[], help="an apprise URL; repeat"),
    opt("--phone"),
    opt("--email"),
)
def add(a: Args) -> None:
    """Add a person with their roles; prints their token, shown this once."""
    body = {"name": a.name, "roles": a.role, "notify": a.notify, "phone": a.phone, "email": a.email}
    body = {k: v for k, v in body.items() if v is not None}
    emit(call(a.json, "POST", "/api/people", json=body), a.json, lambda d: _people_table([d]))


@commands.command("list")
def list_(a: Args) -> None:
    """Everyone in the directory with their roles."""
    emit(call(a.json, "GET", "/api/people"), a.json, lambda d: _people_table(d["people"]))


@commands.command("remove", opt("name"))
def remove(a: Args) -> None:
    """Remove a person; their token stops working at once."""
    data = call(a.json, "DELETE", f"/api/people/{quote(a.name, safe='')}")
    emit(data, a.json, lambda d: say(f"{word('field', 'removed')} {d['name']}"))


@commands.command("import", opt("file", type=Path, help="an emergency contact list: .csv or .yaml"))
def import_(a: Args) -> None:
    """Add the people of an emergency contact list (CSV or YAML); all or nobody."""
    from incident.errors import ActionError
    from incident.people import contacts

    try:
        people = contacts.read(a.file)
    except ActionError as exc:
        fail(exc.message, a.json)
    data = call(a.json, "POST", "/api/people/import", json={"people": people})
    emit(data, a.json, lambda d: _people_table(d["people"]))


@root.command("audit", opt("incident_id", nargs="?", metavar="ID", help="one incident (omit: all)"))
def audit(a: Args) -> None:
    """Who did or tried what, when and on which incident (outcome ok or refused)."""
    path = f"/api/audit/{quote(a.incident_id, safe='')}" if a.incident_id else "/api/audit"

    def human(data: dict[str, Any]) -> None:
        table(
            [word("field", h) for h in ("at", "who", "action", "incident", "outcome")],
            (
                (when(e["at"]), e["who"], e["action"], e["incident_id"] or "—", word("outcome", e["outcome"]))
                for e in data["events"]
            ),  # fmt: skip
        )

    emit(call(a.json, "GET", path), a.json, human)

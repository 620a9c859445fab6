"""``incident people add|list|remove|import`` (the directory) and ``incident audit [ID]``.

Adding prints the person's token once: it is stored only hashed, so a lost token is replaced with
``incident people update NAME --new-token`` (the old one stops working; shifts and delegations stay).
Managing the directory needs the service token (``INCIDENT_API_TOKEN``, or the one the service keeps in
``INCIDENT_HOME``): unset ``INCIDENT_TOKEN`` to use it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from incident.terminal import Args, Group, call, emit, fail, flag, opt, say, table, when, word

commands = Group("people", "The directory of people: who they are, their roles, how they are told.")
deputy = Group("deputy", "代理审批: let another person approve in your role for a period.")
rota = Group("rota", "排班表: who is on duty for a role; notices to that role reach them.")
systems = Group("tokens", "Scoped tokens for systems: intake (report only) or metrics (read only).")
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
    """Remove a person; their token stops working at once, their shifts and delegations end."""
    data = call(a.json, "DELETE", f"/api/people/{quote(a.name, safe='')}")
    emit(data, a.json, lambda d: say(f"{word('field', 'removed')} {d['name']}"))


@commands.command(
    "update",
    opt("name", help="a person of the directory"),
    opt("--role", action="append", help="their roles from now on (all of them); repeat"),
    opt("--notify", action="append", help="their apprise URLs from now on (all of them); repeat"),
    opt("--phone", help='"" clears it'),
    opt("--email", help='"" clears it'),
    flag("--new-token", help="a new token (a lost one): printed once, the old one stops working"),
)
def update(a: Args) -> None:
    """Change a person's roles, channels, phone or e-mail, or give them a new token."""
    body = {"roles": a.role, "notify": a.notify, "phone": a.phone, "email": a.email}
    body = {k: v for k, v in body.items() if v is not None}
    if a.new_token:
        body["new_token"] = True
    if not body:
        fail("say what to change: --role, --notify, --phone, --email or --new-token", a.json)
    data = call(a.json, "PATCH", f"/api/people/{quote(a.name, safe='')}", json=body)
    emit(data, a.json, lambda d: _people_table([{k: v for k, v in d.items() if k != "token" or v}]))


@commands.command("import", opt("file", type=Path, help="an emergency contact list: .csv or .yaml"))
def import_(a: Args) -> None:
    """Add the people of an emergency contact list (CSV or YAML); all or nobody."""
    from incident.people import contacts

    _import_file(a, contacts.read, "/api/people/import", "people", _people_table)


def _import_file(
    a: Args,
    read: Callable[[Path], list[dict[str, Any]]],
    path: str,
    key: str,
    show: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Read a file here (a bad row: exit 2 naming it, nothing sent), then post it all in one request."""
    from incident.errors import ActionError

    try:
        rows = read(a.file)
    except ActionError as exc:
        fail(exc.message, a.json)
    emit(call(a.json, "POST", path, json={key: rows}), a.json, lambda d: show(d[key]))


@root.command(
    "audit",
    opt("incident_id", nargs="?", metavar="ID", help="one incident (omit: all)"),
    opt("--since", help="an ISO 8601 time, or the `next` of the page before: the events after it"),
    opt("--limit", type=int, help="at most this many events (1-5000; default 5000)"),
)
def audit(a: Args) -> None:
    """Who did or tried what, when, from where and on which incident (outcome ok or refused)."""
    path = f"/api/audit/{quote(a.incident_id, safe='')}" if a.incident_id else "/api/audit"

    def human(data: dict[str, Any]) -> None:
        table(
            [word("field", h) for h in ("at", "who", "action", "incident", "outcome", "channel", "address")],
            (
                (
                    when(e["at"]),
                    e["who"],
                    word("act", e["action"]),
                    e["incident_id"] or "—",
                    word("outcome", e["outcome"]),
                    e.get("channel") or "—",
                    e.get("address") or "—",
                )
                for e in data["events"]
            ),  # fmt: skip
        )
        if data.get("next"):
            say(f"{word('field', 'next')}: incident audit --since {data['next']}")

    params = {"since": a.since, "limit": a.limit}
    emit(call(a.json, "GET", path, params=params), a.json, human)


def _deputies_table(rows: list[dict[str, Any]]) -> None:
    table(
        [word("field", h) for h in ("id", "principal", "deputy", "role", "starts", "until")],
        (
            (
                r["id"],
                r["principal"],
                r["deputy"],
                word("role", r["role"]),
                when(r["starts_at"]),
                when(r["ends_at"]),
            )
            for r in rows
        ),  # fmt: skip
    )


@deputy.command(
    "add",
    opt("name", help="the deputy: a person of the directory"),
    opt("--role", required=True, help="the role they may approve in (one you hold)"),
    opt("--until", required=True, help="end of the period, ISO 8601 with offset"),
    opt("--from", dest="starts", help="start of the period (default: now)"),
    opt("--for", dest="principal", help="whose deputy (service token only)"),
)
def deputy_add(a: Args) -> None:
    """Name a deputy; approvals they make in the period are recorded as theirs, for you."""
    body = {
        "deputy": a.name,
        "role": a.role,
        "ends_at": a.until,
        "starts_at": a.starts,
        "principal": a.principal,
    }
    data = call(a.json, "POST", "/api/deputies", json={k: v for k, v in body.items() if v is not None})
    emit(data, a.json, lambda d: _deputies_table([d]))


@deputy.command("list", flag("--all", help="ended delegations too"))
def deputy_list(a: Args) -> None:
    """Delegations in force or to come."""
    data = call(a.json, "GET", "/api/deputies", params={"all": "true"} if a.all else None)
    emit(data, a.json, lambda d: _deputies_table(d["deputies"]))


@deputy.command("end", opt("deputy_id", type=int, metavar="ID"))
def deputy_end(a: Args) -> None:
    """End a delegation early (its principal or the service token)."""
    data = call(a.json, "DELETE", f"/api/deputies/{a.deputy_id}")
    emit(data, a.json, lambda d: say(f"{word('field', 'ended')} {d['id']}"))


def _tokens_table(rows: list[dict[str, Any]]) -> None:
    shown = rows and "token" in rows[0]
    heads = ("name", "scope", *(["token"] if shown else ["created_at"]))
    table([word("field", h) for h in heads], ((r["name"], r["scope"], r.get("token") or when(r["created_at"]))
                                               for r in rows))  # fmt: skip


@systems.command(
    "add",
    opt("name", help="the system, e.g. callcenter or prometheus"),
    opt("--scope", required=True, choices=["intake", "metrics"], help="intake: report only; metrics: read"),
)
def tokens_add(a: Args) -> None:
    """A token for a system; prints it once (stored only hashed). Needs the service token."""
    data = call(a.json, "POST", "/api/tokens", json={"name": a.name, "scope": a.scope})
    emit(data, a.json, lambda d: _tokens_table([d]))


@systems.command("list")
def tokens_list(a: Args) -> None:
    """The systems' tokens (names and scopes; never the tokens)."""
    emit(call(a.json, "GET", "/api/tokens"), a.json, lambda d: _tokens_table(d["tokens"]))


@systems.command("remove", opt("name"))
def tokens_remove(a: Args) -> None:
    """Remove a system's token; it stops working at once."""
    data = call(a.json, "DELETE", f"/api/tokens/{quote(a.name, safe='')}")
    emit(data, a.json, lambda d: say(f"{word('field', 'removed')} {d['name']}"))


def _shifts_table(rows: list[dict[str, Any]]) -> None:
    table(
        [word("field", h) for h in ("id", "role", "name", "starts", "until")],
        (
            (r["id"], word("role", r["role"]), r["person"], when(r["starts_at"]), when(r["ends_at"]))
            for r in rows
        ),
    )


@rota.command(
    "add",
    opt("role", help="a role of the vocabulary, e.g. duty_manager"),
    opt("person", help="a person of the directory holding that role"),
    opt("--from", dest="starts", required=True, help="start of the shift, ISO 8601 with offset"),
    opt("--until", required=True, help="end of the shift (the hand-over), ISO 8601 with offset"),
)
def rota_add(a: Args) -> None:
    """Add one shift (service token or a duty_manager)."""
    body = {"role": a.role, "person": a.person, "starts_at": a.starts, "ends_at": a.until}
    emit(call(a.json, "POST", "/api/rotas", json=body), a.json, lambda d: _shifts_table([d]))


@rota.command("import", opt("file", type=Path, help="CSV: role,person,starts_at,ends_at"))
def rota_import(a: Args) -> None:
    """Add a rota's shifts from a CSV file; all or none."""
    from incident.people import rotas

    _import_file(a, rotas.read_csv, "/api/rotas/import", "shifts", _shifts_table)


@rota.command("list", opt("--role", help="one role's shifts"))
def rota_list(a: Args) -> None:
    """Shifts that have not ended, soonest first."""
    data = call(a.json, "GET", "/api/rotas", params={"role": a.role} if a.role else None)
    emit(data, a.json, lambda d: _shifts_table(d["shifts"]))


@rota.command("now", opt("role", nargs="?", help="one role (omit: every role on a rota)"))
def rota_now(a: Args) -> None:
    """Who is on duty now, and until when."""
    data = call(a.json, "GET", "/api/rotas/now", params={"role": a.role} if a.role else None)
    emit(data, a.json, lambda d: table(
        [word("field", h) for h in ("role", "name", "until")],
        ((word("role", r["role"]), r["person"], when(r["until"])) for r in d["on_duty"]),
    ))  # fmt: skip


@rota.command("remove", opt("shift_id", type=int, metavar="ID"))
def rota_remove(a: Args) -> None:
    """Remove a shift."""
    data = call(a.json, "DELETE", f"/api/rotas/{a.shift_id}")
    emit(data, a.json, lambda d: say(f"{word('field', 'removed')} {d['id']}"))

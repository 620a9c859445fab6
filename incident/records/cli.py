"""``incident records`` and ``incident postmortem``: the seven archived records and the 5W1H post-mortem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from incident import environ
from incident.terminal import INCIDENT, Args, Group, call, download, emit, opt, say, table, when, word, write

commands = Group()
LANG = opt("--lang", choices=("zh", "en"), default=None, help="zh | en (default: INCIDENT_LANG)")
FORMAT = opt("--format", choices=("md", "html", "pdf"), default="md", help="md | html | pdf")
OUT = opt("--out", type=Path, default=None, help="file to write")


def _documents(incident_id: str) -> Path:
    """Where downloads go by default: the home's documents folder, as the service writes them."""
    return environ.home() / "documents" / incident_id


def _records_table(data: dict[str, Any]) -> None:
    lang = environ.lang()
    table(
        [word("field", h) for h in ("kind", "title", "formats", "updated_at")],
        (
            (
                r["kind"],  # what --kind takes
                r["title"][lang],
                " ".join(r["formats"]) if r["available"] else word("field", "not_yet"),
                when(r["updated_at"]),
            )
            for r in data["records"]
        ),
    )
    say(f"incident records {data['incident_id']} --kind KIND [--lang zh|en] [--format md|html|pdf]")


@commands.command(
    "records", INCIDENT, opt("--kind", help="one of the seven records (omit: list them)"), LANG, FORMAT, OUT
)
def records(a: Args) -> None:
    """List the seven archived records, or download one with --kind (writes a file, prints its path)."""
    if a.kind is None:
        emit(call(a.json, "GET", f"/api/incidents/{a.incident_id}/records"), a.json, _records_table)
        return
    lang = a.lang or environ.lang()
    params = {"lang": lang, "format": a.format}
    response = download(f"/api/incidents/{a.incident_id}/records/{a.kind}", params, a.json)
    path = a.out or _documents(a.incident_id) / f"{a.kind}.{lang}.{a.format}"
    emit(
        {
            "incident_id": a.incident_id,
            "kind": a.kind,
            "lang": lang,
            "format": a.format,
            "path": write(path, response.content),
            "updated_at": response.headers.get("X-Record-Updated"),
        },
        a.json,
    )


@commands.command("postmortem", INCIDENT, FORMAT, LANG, OUT)
def postmortem(a: Args) -> None:
    """Render the 5W1H post-mortem (a draft until the incident is closed)."""
    lang = a.lang or environ.lang()
    params = {"format": a.format, "lang": lang}
    response = download(f"/api/incidents/{a.incident_id}/postmortem", params, a.json)
    path = a.out or _documents(a.incident_id) / f"postmortem.{lang}.{a.format}"
    emit(
        {
            "incident_id": a.incident_id,
            "path": write(path, response.content),
            "due_at": response.headers.get("X-Postmortem-Due") or None,
        },
        a.json,
    )

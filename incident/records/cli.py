"""``incident records`` and ``incident postmortem``: the seven archived records and the 5W1H post-mortem."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from incident.terminal import JsonOpt, call, download, emit, fail, out, write

app = typer.Typer()


def _records_table(data: dict[str, Any]) -> None:
    from incident import settings

    table = Table()
    table.add_column("kind", no_wrap=True)  # what --kind takes
    table.add_column("title")
    table.add_column("formats", no_wrap=True)
    table.add_column("updated (UTC)", no_wrap=True)
    for r in data["records"]:
        table.add_row(
            r["kind"],
            r["title"][settings.get().lang],
            " ".join(r["formats"]) if r["available"] else "not yet",
            (r["updated_at"] or "")[:16].replace("T", " "),
        )
    out.print(table)
    out.print(
        f"download: incident records {data['incident_id']} --kind KIND [--lang zh|en] [--format md|html|pdf]"
    )


@app.command()
def records(
    incident_id: str,
    kind: Annotated[str | None, typer.Option(help="one of the seven records")] = None,
    lang: Annotated[str, typer.Option(help="zh | en")] = "zh",
    format: Annotated[str, typer.Option("--format", help="md | html | pdf")] = "md",
    out_path: Annotated[Path | None, typer.Option("--out", help="file to write")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the seven archived records, or download one with --kind (writes a file, prints its path)."""
    from incident import settings
    from models.record import RECORD_KINDS

    if kind is None:
        data = call(as_json, "GET", f"/api/incidents/{incident_id}/records")
        emit(data, as_json, _records_table)
        return
    if kind not in RECORD_KINDS or lang not in ("zh", "en") or format not in ("md", "html", "pdf"):
        fail(
            f"--kind must be one of {', '.join(RECORD_KINDS)}, --lang zh|en, --format md|html|pdf",
            as_json,
        )
    response = download(
        f"/api/incidents/{incident_id}/records/{kind}", {"lang": lang, "format": format}, as_json
    )
    path = out_path or settings.documents_dir() / incident_id / f"{kind}.{lang}.{format}"
    emit(
        {
            "incident_id": incident_id,
            "kind": kind,
            "lang": lang,
            "format": format,
            "path": write(path, response.content),
            "updated_at": response.headers.get("X-Record-Updated"),
        },
        as_json,
    )


@app.command()
def postmortem(
    incident_id: str,
    format: Annotated[str, typer.Option("--format", help="md | html | pdf")] = "md",
    lang: Annotated[str, typer.Option(help="zh | en")] = "zh",
    out_path: Annotated[Path | None, typer.Option("--out", help="file to write")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render the 5W1H post-mortem (a draft until the incident is closed)."""
    from incident.records.postmortem import default_path

    if format not in ("md", "html", "pdf") or lang not in ("zh", "en"):
        fail("--format must be md, html or pdf and --lang zh or en", as_json)
    params = {"format": format, "lang": lang}
    response = download(f"/api/incidents/{incident_id}/postmortem", params, as_json)
    path = write(out_path or default_path(incident_id, lang, format), response.content)
    emit(
        {
            "incident_id": incident_id,
            "path": path,
            "due_at": response.headers.get("X-Postmortem-Due") or None,
        },
        as_json,
    )

"""The reporting commands, ``incident records``, ``metrics``, ``postmortem`` and ``notifications``.

Why a module of their own: ``incident/cli.py`` stays small; ``register`` is handed the CLI's own
helpers (``call``, ``fail``, ``emit``) so errors, exit codes and ``--json`` behave exactly as in every
other command, without this module importing ``incident.cli`` (which runs as ``__main__``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from incident import settings

if TYPE_CHECKING:  # imported by the commands that use them: `incident --version` stays fast
    import httpx

out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")]
Call = Callable[..., dict[str, Any]]
Fail = Callable[..., NoReturn]
Emit = Callable[..., None]


def download(path: str, params: dict[str, Any], as_json: bool, fail: Fail) -> httpx.Response:
    """GET bytes from the service; 4xx → exit 2 with the service's one-line message."""
    from incident.client import Client, ServiceError

    try:
        return Client().call("GET", path, params=params)
    except ServiceError as exc:
        fail(exc.message, as_json, 2 if 400 <= exc.status < 500 else 1)


def write(path: Path, body: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return str(path.resolve())


def _records_table(data: dict[str, Any]) -> None:
    table = Table()
    table.add_column("kind", no_wrap=True)  # what --kind takes
    table.add_column("title")
    table.add_column("formats", no_wrap=True)
    table.add_column("updated (UTC)", no_wrap=True)
    for r in data["records"]:
        table.add_row(
            r["kind"],
            r["title"][settings.default_lang()],
            " ".join(r["formats"]) if r["available"] else "not yet",
            (r["updated_at"] or "")[:16].replace("T", " "),
        )
    out.print(table)
    out.print(
        f"download: incident records {data['incident_id']} --kind KIND [--lang zh|en] [--format md|html|pdf]"
    )


def _metrics_human(d: dict[str, Any]) -> None:
    sat = d["satisfaction"]
    out.print(
        f"[bold]{d['month'] or 'all months'}[/]: {d['incidents']} incident(s), {d['open']} open; "
        f"by level {d['by_level']}; by category {d['by_category']}"
    )
    out.print(
        f"response p50 {d['response_minutes_p50']} min, p90 {d['response_minutes_p90']} min "
        f"({d['contacted']} contacted); handling p50 {d['handling_hours_p50']} h ({d['resolved']} resolved)"
    )
    table = Table("level", "surveys", "good (≥4)", "share", "target", "met")
    for level, row in sat["by_level"].items():
        table.add_row(
            level,
            str(row["surveys"]),
            str(row["good"]),
            str(row["share"]),
            str(row["target"]),
            str(row["met"]),
        )
    out.print(table)
    out.print(f"recurrence rate {d['recurrence_rate']}; missed deadlines {d['missed_deadlines']}")
    for row in d["top_recurring"]:
        out.print(f"  {row['incidents']}× {row['problem']}  ({', '.join(row['incident_ids'])})")
    if d.get("chart"):
        out.print(f"chart: {d['chart']}")


def register(app: typer.Typer, *, call: Call, fail: Fail, emit: Emit) -> None:
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
            f"/api/incidents/{incident_id}/records/{kind}", {"lang": lang, "format": format}, as_json, fail
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
    def metrics(
        month: Annotated[str | None, typer.Option(help="YYYY-MM (default: all incidents)")] = None,
        chart: Annotated[
            Path | None, typer.Option(help="write a PNG line chart of the last 12 months")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Response and handling time, satisfaction vs target, recurrence, missed deadlines, counts."""
        from incident.metrics import MONTH

        if month is not None and not MONTH.match(month):
            fail(f"--month must look like 2026-11, got {month!r}", as_json)
        params = {"month": month} if month else {}
        data = call(as_json, "GET", "/api/metrics", params=params)
        if chart is not None:
            response = download("/api/metrics/chart.png", {**params, "months": 12}, as_json, fail)
            data["chart"] = write(chart, response.content)
        emit(data, as_json, _metrics_human)

    @app.command()
    def postmortem(
        incident_id: str,
        format: Annotated[str, typer.Option("--format", help="md | html | pdf")] = "md",
        lang: Annotated[str, typer.Option(help="zh | en")] = "zh",
        out_path: Annotated[Path | None, typer.Option("--out", help="file to write")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Render the 5W1H post-mortem (a draft until the incident is closed)."""
        from incident.client import Client, ServiceError
        from incident.postmortem import default_path

        if format not in ("md", "html", "pdf") or lang not in ("zh", "en"):
            fail("--format must be md, html or pdf and --lang zh or en", as_json)
        try:
            response = Client().call(
                "GET", f"/api/incidents/{incident_id}/postmortem", params={"format": format, "lang": lang}
            )
        except ServiceError as exc:
            fail(exc.message, as_json, 2 if 400 <= exc.status < 500 else 1)
        path = out_path or default_path(incident_id, lang, format)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(response.content)  # the service sends UTF-8 text, or PDF bytes
        emit(
            {
                "incident_id": incident_id,
                "path": str(path.resolve()),
                "due_at": response.headers.get("X-Postmortem-Due") or None,
            },
            as_json,
        )


    @app.command()
    def notifications(incident_id: str, as_json: JsonOpt = False) -> None:
        """The delivery log of an incident's notices."""

        def human(data: dict[str, Any]) -> None:
            table = Table("at", "notice", "role", "channel", "status", "attempts", "error")
            for d in data["deliveries"]:
                table.add_row(
                    str(d.get("created_at", ""))[:19],
                    d["notice"],
                    d["role"],
                    d["url"],
                    d["status"],
                    str(d["attempts"]),
                    d.get("error") or "",
                )
            out.print(table)

        emit(call(as_json, "GET", f"/api/incidents/{incident_id}/notifications"), as_json, human)

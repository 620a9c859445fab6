"""``incident list``, ``show`` and ``notifications``: what the incidents are and whom they told."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from incident.terminal import JsonOpt, call, emit, out

app = typer.Typer()


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


def _deliveries(data: dict[str, Any]) -> None:
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


@app.command()
def notifications(incident_id: str, as_json: JsonOpt = False) -> None:
    """The delivery log of an incident's notices."""
    emit(call(as_json, "GET", f"/api/incidents/{incident_id}/notifications"), as_json, _deliveries)

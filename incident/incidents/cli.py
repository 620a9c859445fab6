"""``incident list``, ``show`` and ``notifications``: what the incidents are and whom they told."""

from __future__ import annotations

from typing import Any

from incident.terminal import INCIDENT, Args, Group, call, emit, flag, say, table, text, when, word

commands = Group()


def _next_deadline(row: dict[str, Any]) -> str:
    nxt = row.get("next_deadline") or {}
    if not nxt:
        return "—"
    return f"{word('deadline', nxt.get('kind'))} {when(nxt.get('due_at'))}"


def _incident_table(rows: list[dict[str, Any]]) -> None:
    heads = ("incident", "level", "category", "status", "customers", "next_deadline")
    table(
        [word("field", h) for h in heads],
        (
            (
                row["incident_id"],
                word("level_short", row["level"]),
                word("category", row["category"]),
                word("status", row["status"]),
                row["customers"],
                _next_deadline(row),
            )
            for row in rows
        ),
    )


@commands.command("list", flag("--open", "only open incidents"))
def list_(a: Args) -> None:
    """Incidents, newest first."""
    data = call(a.json, "GET", "/api/incidents", params={"open": a.open})
    emit(data, a.json, lambda d: _incident_table(d["incidents"]))


def _show_human(data: dict[str, Any]) -> None:
    say(
        f"{data['incident_id']}  {word('level_short', data['level'])} {word('category', data['category'])}"
        f" — {word('status', data['status'])}, {word('field', 'customers')} {data['customers']};"
        f" {word('field', 'waiting_for')}: {word('duty', data.get('waiting_for')) or '—'}"
    )
    say(data["summary"])
    say()
    table(
        [word("field", h) for h in ("at", "event", "by", "detail")],
        (
            (when(e["at"]), word("event", e["event"]), e["by"], e.get("detail") or "")
            for e in data["timeline"]
        ),
    )
    say()
    table(
        [word("field", h) for h in ("deadline", "due_at", "clock", "state")],
        (
            (
                word("deadline", d["kind"]),
                when(d["due_at"]),
                word("clock", d.get("clock") or "calendar"),
                word("deadline_state", d["state"]),
            )
            for d in data["deadlines"]
        ),
    )


@commands.command("show", INCIDENT)
def show(a: Args) -> None:
    """One incident with its timeline and deadlines."""
    emit(call(a.json, "GET", f"/api/incidents/{a.incident_id}"), a.json, _show_human)


def _deliveries(data: dict[str, Any]) -> None:
    heads = ("at", "notice", "role", "channel", "status", "attempts", "error")
    table(
        [word("field", h) for h in heads],
        (
            (
                when(d.get("created_at")),
                d["notice"],
                word("role", d["role"]),
                d["url"],
                word("delivery", d["status"]),
                d["attempts"],
                text(d.get("error")),
            )
            for d in data["deliveries"]
        ),
    )


@commands.command("notifications", INCIDENT)
def notifications(a: Args) -> None:
    """The delivery log of an incident's notices."""
    path = f"/api/incidents/{a.incident_id}/notifications"
    emit(call(a.json, "GET", path), a.json, _deliveries)


@commands.command("reveal", INCIDENT)
def reveal(a: Args) -> None:
    """The customers' phone numbers and e-mails in full (customer service and the level's lead; audited)."""
    data = call(a.json, "POST", f"/api/incidents/{a.incident_id}/reveal")
    emit(
        data,
        a.json,
        lambda d: table(
            [word("field", h) for h in ("feedback_id", "customer", "contact", "channel")],
            (
                (c["feedback_id"], c["customer"] or "—", c["contact"] or "—", word("channel", c["channel"]))
                for c in d["customers"]
            ),
        ),
    )

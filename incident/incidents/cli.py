"""``incident list``, ``show`` and ``notifications``: what the incidents are and whom they told."""

from __future__ import annotations

from typing import Any

from incident.terminal import INCIDENT, Args, Group, call, emit, flag, opt, said, say, table, text, when, word

commands = Group()


def _next_deadline(row: dict[str, Any]) -> str:
    nxt = row.get("next_deadline") or {}
    if not nxt:
        return "—"
    return f"{word('deadline', nxt.get('kind'))} {when(nxt.get('due_at'))}"


def _late(row: dict[str, Any]) -> str:
    """How long past due, in words: "已超时 2 小时 10 分钟" / "overdue by 2 h 10 min"."""
    minutes = row.get("overdue_minutes")
    if minutes is None:
        return "—"
    hours, rest = divmod(minutes, 60)
    parts = ([said("console", "hours", n=hours)] if hours else []) + [said("console", "minutes", n=rest)]
    return said("console", "overdue_by", span=" ".join(parts))


def _incident_table(rows: list[dict[str, Any]]) -> None:
    heads = ("incident", "level", "category", "status", "customers", "owner", "overdue", "next_deadline")
    table(
        [word("field", h) for h in heads],
        (
            (
                row["incident_id"],
                word("level_short", row["level"]),
                word("category", row["category"]),
                word("status", row["status"]),
                row["customers"],
                row.get("owner") or "—",
                _late(row),
                _next_deadline(row),
            )
            for row in rows
        ),
    )


CATEGORIES = ("product_quality", "service_failure", "special_scenario")
STATUSES = ("response", "handling", "resolution", "follow_up", "closed")


@commands.command(
    "list",
    flag("--open", "only open incidents"),
    opt("--level", type=int, choices=(1, 2, 3)),
    opt("--category", choices=CATEGORIES),
    opt("--status", choices=STATUSES),
    opt("--owner", help="only this owner's incidents"),
    opt("--overdue", action="store_true", default=None, help="only incidents with a deadline past due"),
    opt("--search", "-q", dest="q", help="an id, customer, order, product model, batch or words of the text"),
)
def list_(a: Args) -> None:
    """Incidents, newest first; the options filter as the console's board does."""
    params = {"open": a.open, "level": a.level, "category": a.category, "status": a.status,
              "owner": a.owner, "overdue": a.overdue, "q": a.q}  # fmt: skip
    data = call(a.json, "GET", "/api/incidents", params={k: v for k, v in params.items() if v is not None})
    emit(data, a.json, lambda d: _incident_table(d["incidents"]))


@commands.command("assign", INCIDENT, opt("--owner", required=True, help="who answers for it now"))
def assign(a: Args) -> None:
    """Name the incident's owner (the board filters by it)."""
    data = call(a.json, "POST", f"/api/incidents/{a.incident_id}/assign", json={"owner": a.owner})
    emit(data, a.json, lambda d: say(f"{d['incident_id']} {word('field', 'owner')}: {d['owner']}"))


def _show_human(data: dict[str, Any]) -> None:
    say(
        f"{data['incident_id']}  {word('level_short', data['level'])} {word('category', data['category'])}"
        f" — {word('status', data['status'])}, {word('field', 'customers')} {data['customers']};"
        f" {word('field', 'waiting_for')}: {word('duty', data.get('waiting_for')) or '—'}"
    )
    say(data["summary"])
    if data.get("recurrence_of"):
        say(f"{word('field', 'recurrence_of')}: {data['recurrence_of']}")
    if data.get("postmortem"):
        say(f"{word('field', 'postmortem')}: {word('postmortem_state', data['postmortem'])}")
    if (data.get("contact_progress") or {}).get("customers", 0) > 1:  # a storm: each customer's own
        say(progress_line(data["contact_progress"]))
    say()
    table(
        [word("field", h) for h in ("at", "event", "by", "detail")],
        (
            (when(e["at"]), word("event", e["event"]), e.get("who") or e["by"], e.get("words") or "")
            for e in data["timeline"]  # who and words: the service says them in INCIDENT_LANG
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


def progress_line(progress: dict[str, int]) -> str:
    """``首次联系：已联系 37/120，5 个超时`` (the vocabulary's words, as notices and the console say it)."""
    line = word("contact_progress", "line").format(**progress)
    if progress.get("overdue"):
        line += word("contact_progress", "overdue").format(**progress)
    return line


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
                word("field", "customer") if d["role"] == "customer" else word("role", d["role"]),
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

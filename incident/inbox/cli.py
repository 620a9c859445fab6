"""``incident inbox``: suggestions, inquiries and praise (they open no incident), and their answers.

``incident inbox`` (or ``incident inbox list``) lists them (``--status open`` for what still waits);
``incident inbox answer|close|promote FB`` act on one, as the console's inbox page does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from incident.terminal import Args, Group, call, emit, flag, opt, say, table, when, word

commands = Group("inbox", "Suggestions, inquiries and praise: list, answer, close, promote.", default="list")
STATUSES = ("open", "answered", "closed", "promoted")
FEEDBACK = opt("feedback_id", metavar="FB", help="the feedback, e.g. FB20261202001")


def _table(rows: list[dict[str, Any]]) -> None:
    heads = ("feedback_id", "kind", "category", "status", "routed_to", "at", "summary")
    table(
        [word("field", h) for h in heads],
        (
            (
                r["feedback_id"],
                word("feedback_kind", r["kind"]),
                word("category", r.get("category")) or "—",
                word("inbox_status", r["status"]),
                word("role", r.get("routed_to")) or "—",
                when(r.get("received_at")),
                r.get("summary") or "",
            )
            for r in rows
        ),
    )


@commands.command(
    "list",
    opt("--status", choices=STATUSES, help="only items in this state (default: all)"),
    opt("--group", help="only items routed to this role, e.g. customer_service"),
)
def inbox(a: Args) -> None:
    """Feedback that opened no incident, routed to its owning group; newest first."""
    params = {k: v for k, v in (("status", a.status), ("group", a.group)) if v}
    emit(call(a.json, "GET", "/api/inbox", params=params), a.json, lambda d: _table(d["feedback"]))


def _one(d: dict[str, Any]) -> None:
    say(f"{d['feedback_id']}: {word('inbox_status', d['status'])}")


@commands.command(
    "answer", FEEDBACK, opt("--text", required=True, help="the reply given"), flag("--close", "also close it")
)
def answer(a: Args) -> None:
    """Record the reply given to the customer."""
    body = {"text": a.text, "close": a.close}
    emit(call(a.json, "POST", f"/api/inbox/{quote(a.feedback_id)}/answer", json=body), a.json, _one)


@commands.command("close", FEEDBACK)
def close(a: Args) -> None:
    """Close an item without a reply."""
    emit(call(a.json, "POST", f"/api/inbox/{quote(a.feedback_id)}/close", json={}), a.json, _one)


@commands.command(
    "promote",
    FEEDBACK,
    opt("--category", choices=("product_quality", "service_failure", "special_scenario")),
)
def promote(a: Args) -> None:
    """Turn the item into a complaint: it is graded and opens or joins an incident."""
    body = {"category": a.category} if a.category else {}
    data = call(a.json, "POST", f"/api/inbox/{quote(a.feedback_id)}/promote", json=body)
    emit(data, a.json, lambda d: say(f"{d['feedback_id']} → {d.get('incident_id') or '—'}"))

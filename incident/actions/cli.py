"""``incident actions [ID]``, ``actions add ID --action …``, ``actions close ACTION_ID --evidence T``.

One command with words after it, because the list is ``incident actions [ID]`` (interface.md) and an
argparse group would make the bare ``incident actions`` print help instead of the list.
``--action "kind:owner:due:text"`` is split here at its first three colons (the text may hold more);
``due`` is a date (2026-12-31), or a span after now (14d, 72h, 2w).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from incident.terminal import Args, Group, call, emit, fail, opt, table, when, word

root = Group()
KINDS = ("process", "product", "training", "resources")
ACTION_HELP = "kind:owner:due:text, kind one of process product training resources; repeat for more"


def parse_action(value: str, as_json: bool) -> dict[str, str]:
    """``process:王芳:2026-12-31:text`` → the API's body of one action (exit 2 on a wrong shape)."""
    parts = value.split(":", 3)
    if len(parts) != 4 or not all(p.strip() for p in parts):
        fail(f"--action {value!r}: write kind:owner:due:text", as_json)
    kind, owner, due, text = (p.strip() for p in parts)
    if kind not in KINDS:
        fail(f"--action {value!r}: kind must be one of {', '.join(KINDS)}", as_json)
    return {"kind": kind, "owner": owner, "due": due, "text": text}


def _table(data: dict[str, Any]) -> None:
    rows = data.get("actions", [data] if "id" in data else [])
    table(
        [word("field", h) for h in ("id", "incident", "kind", "owner", "due_at", "status")],
        (
            (
                r["id"],
                r["incident_id"],
                word("action_kind", r["kind"]),
                r["owner"],
                when(r["due_at"]),
                word("action_status", "overdue" if r.get("overdue") else r["status"]),
            )
            for r in rows
        ),  # fmt: skip
    )


@root.command(
    "actions",
    opt("words", nargs="*", metavar="[ID | add ID | close ACTION_ID]", help="what to list or do"),
    opt("--action", action="append", default=[], help=ACTION_HELP),
    opt("--evidence", help="what shows the action is done (required to close)"),
    opt("--by", help="who adds them (the service token only; a person is recorded as themselves)"),
)
def actions(a: Args) -> None:
    """Improvement actions: list (all or one incident's), add, close with evidence."""
    words = list(a.words)
    if not words:
        return emit(call(a.json, "GET", "/api/actions"), a.json, _table)
    if words[0] == "add" and len(words) == 2:
        if not a.action:
            fail("actions add: give at least one --action kind:owner:due:text", a.json)
        body: dict[str, Any] = {"actions": [parse_action(v, a.json) for v in a.action]}
        if a.by:
            body["by"] = a.by
        return emit(call(a.json, "POST", f"/api/incidents/{quote(words[1], safe='')}/actions", json=body),
                    a.json, _table)  # fmt: skip
    if words[0] == "close" and len(words) == 2:
        if not a.evidence:
            fail("actions close: --evidence is required (what shows it is done)", a.json)
        path = f"/api/actions/{quote(words[1], safe='')}/close"
        return emit(call(a.json, "POST", path, json={"evidence": a.evidence}), a.json, _table)
    if len(words) == 1:
        return emit(call(a.json, "GET", f"/api/incidents/{quote(words[0], safe='')}/actions"), a.json, _table)
    usage = "actions [ID], actions add ID --action …, actions close ACTION_ID --evidence T"
    fail(f"actions {' '.join(words)}: use {usage}", a.json)

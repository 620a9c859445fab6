"""``incident meeting ID --at … --participant NAME …`` and ``incident signoff ID``: the post-mortem's people.

The meeting turns the generated post-mortem draft into the final report (findings, what went well and
badly, decisions, improvement actions added by people); the level's lead then signs it off.
"""

from __future__ import annotations

from typing import Any

from incident.actions.cli import ACTION_HELP, parse_action
from incident.terminal import INCIDENT, Args, Group, call, emit, opt, say, when, word

commands = Group()
MANY = {"action": "append", "default": []}


def _said(data: dict[str, Any]) -> None:
    names = "、".join(p["name"] + ("" if p["in_directory"] else "*") for p in data["participants"])
    say(f"{data['incident_id']} {word('postmortem_state', data['postmortem'])}: {names}")
    for row in data["actions"]:
        say(f"  {row['id']} {word('action_kind', row['kind'])} {row['owner']} {when(row['due_at'])}")


@commands.command(
    "meeting", INCIDENT,
    opt("--at", required=True, help="when the meeting was held (ISO 8601 with offset)"),
    opt("--participant", action="append", required=True, help="a participant's name; repeat"),
    opt("--finding", **MANY, help="a finding of the meeting; repeat"),
    opt("--went-well", **MANY, help="what went well (added to the generated ones); repeat"),
    opt("--went-badly", **MANY, help="what went badly (added to the generated ones); repeat"),
    opt("--decision", **MANY, help="a decision taken; repeat"),
    opt("--action", **MANY, help=ACTION_HELP + " (due: a date, or a span after the meeting)"),
    opt("--by", help="who records it (the service token only; a person is recorded as themselves)"),
)  # fmt: skip
def meeting(a: Args) -> None:
    """Record the post-mortem meeting; the post-mortem is then final, awaiting the lead's sign-off."""
    body: dict[str, Any] = {
        "at": a.at, "participants": a.participant, "findings": a.finding, "went_well": a.went_well,
        "went_badly": a.went_badly, "decisions": a.decision,
        "actions": [parse_action(v, a.json) for v in a.action],
    }  # fmt: skip
    if a.by:
        body["by"] = a.by
    emit(call(a.json, "POST", f"/api/incidents/{a.incident_id}/meeting", json=body), a.json, _said)


@commands.command("signoff", INCIDENT, opt("--note"))
def signoff(a: Args) -> None:
    """The level's lead signs the final post-mortem off (refused for anyone else)."""
    body = {"note": a.note} if a.note else {}
    data = call(a.json, "POST", f"/api/incidents/{a.incident_id}/signoff", json=body)
    signed = word("postmortem_state", "signed")
    emit(data, a.json, lambda d: say(f"{d['incident_id']} {signed}: {d['signed_by']}"))

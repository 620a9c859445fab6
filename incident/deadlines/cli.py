"""``incident ack ID [--note T]``: take the incident's escalation on (as the person of INCIDENT_TOKEN)."""

from __future__ import annotations

from incident.terminal import INCIDENT, Args, Group, call, emit, opt, say

commands = Group()


@commands.command("ack", INCIDENT, opt("--note", help="what you will do, for the timeline"))
def ack(a: Args) -> None:
    """Acknowledge an escalation: its chain stops, an alarm's assessment is met; you are recorded."""
    body = {"note": a.note} if a.note is not None else {}
    data = call(a.json, "POST", f"/api/incidents/{a.incident_id}/ack", json=body)
    emit(data, a.json, lambda d: say(f"{d['incident_id']}: {d['acknowledged_by']}"))

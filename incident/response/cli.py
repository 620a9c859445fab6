"""``incident contact|measure|cause|propose|approve|confirm|survey``: the human steps from a terminal.

Each command posts its step's body to the step's route, where the step's model from
``incident.response.steps`` validates it (a wrong field is exit 2 naming it, and nothing is stored); the
help texts are the steps' own (``tests/test_steps.py`` holds them equal).
"""

from __future__ import annotations

from typing import Any

from incident.incidents.cli import progress_line
from incident.terminal import INCIDENT, Args, Group, Opt, call, emit, flag, opt, say, text, word

commands = Group()
NOTE = opt("--note")


def act(a: Args, action: str, *fields: str) -> None:
    body: dict[str, Any] = {f: getattr(a, f) for f in fields if getattr(a, f) is not None}
    emit(call(a.json, "POST", f"/api/incidents/{a.incident_id}/{action}", json=body), a.json)


def by(default: str | None, help: str | None = None) -> Opt:
    return opt("--by", default=default, help=help or f"who records it (default: {default})")


@commands.command(
    "contact", INCIDENT, opt("--by", required=True, help="who called the customer"), NOTE,
    opt("--customer", dest="customers", action="append",
        help="a customer reached (their name or a feedback id of theirs); again for each; none: the first"),
    opt("--update", help="a progress update's text, sent to the customers who consented"),
)  # fmt: skip
def contact(a: Args) -> None:
    """Record the first (or a further) contact with the customer."""
    body: dict[str, Any] = {f: getattr(a, f) for f in ("by", "note", "customers", "update") if getattr(a, f)}
    answer = call(a.json, "POST", f"/api/incidents/{a.incident_id}/contact", json=body)
    emit(answer, a.json, _contacted)


def _contacted(data: dict[str, Any]) -> None:
    """The answer for people: the step's own lines, then ``首次联系：已联系 37/120，5 个超时``."""
    progress = data.pop("contact_progress", None) or {}
    messages = data.pop("messages", None)
    for key, value in data.items():
        name = word("field", "contacted_customers" if key == "customers" else key)  # ids, not a count
        say(f"{name}: {text(value, key)}")
    if progress:
        say(progress_line(progress))
    if messages is not None:
        queued = f"{word('delivery', 'pending')} {messages['queued']}"
        told = f"{word('delivery', 'by_person')} {messages['by_person']}"
        say(f"{word('field', 'customer_messages')}: {queued}, {told}")


@commands.command(
    "measure", INCIDENT, opt("--kind", required=True, help="a temporary measure of the playbook"),
    by("on-call"), NOTE,
)  # fmt: skip
def measure(a: Args) -> None:
    """Record a temporary measure (spare_product, coupon, reschedule …)."""
    act(a, "measure", "kind", "by", "note")


@commands.command(
    "cause", INCIDENT, opt("--root", required=True, help="root cause"),
    opt("--direct", required=True, help="direct cause"),
    opt("--stage", required=True, help="production service logistics system external"), by("on-call"),
)  # fmt: skip
def cause(a: Args) -> None:
    """Record the cause analysis."""
    act(a, "cause", "root", "direct", "stage", "by")


LEGAL = flag("--legal-reviewed", "the legal group has reviewed it (a recall needs it)")


@commands.command(
    "propose", INCIDENT, opt("--solution", required=True, help="a solution of the playbook"),
    by("on-call"), NOTE, LEGAL,
)  # fmt: skip
def propose(a: Args) -> None:
    """Propose the solution; it then waits for the level's approver."""
    act(a, "propose", "solution", "by", "note", "legal_reviewed")


@commands.command(
    "approve", INCIDENT, by(None, "approver's name (INCIDENT_TOKEN: the person's)"),
    opt("--role", help="leadership (L1) or dept_head (L2/L3); one the person holds"),
    flag("--reject", "reject the proposal (give --reason)"), opt("--reason"), LEGAL,
)  # fmt: skip
def approve(a: Args) -> None:
    """Approve (or --reject --reason) the proposed solution; only the level's approver role may."""
    act(a, "approve", "by", "role", "reject", "reason", "legal_reviewed")


@commands.command(
    "confirm", INCIDENT, opt("--result", required=True, help="satisfied neutral unsatisfied"),
    by("customer"), NOTE,
)  # fmt: skip
def confirm(a: Args) -> None:
    """The customer's confirmation of the result."""
    act(a, "confirm", "result", "by", "note")


SCORE = {"type": int, "required": True, "help": "1-5"}


@commands.command(
    "survey", INCIDENT, opt("--speed", **SCORE), opt("--result", **SCORE), opt("--attitude", **SCORE),
    opt("--suggestion"), by("customer_service"),
)  # fmt: skip
def survey(a: Args) -> None:
    """The satisfaction survey; below the level's target opens another follow-up round."""
    act(a, "survey", "speed", "result", "attitude", "suggestion", "by")

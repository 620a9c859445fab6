"""The console's action forms: field names → the same pydantic models and functions the API uses.

Why reuse ``incident.actions`` as is: the console then checks exactly what the CLI checks (the approver's
role, legal review of a recall, the order of the steps) and records the same timeline events, with the
form's ``by`` as who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from incident import actions
from incident.inputs import FORM

CHECKBOXES = ("legal_reviewed",)


@dataclass(frozen=True)
class Action:
    model: type[actions.Answer]
    fn: Callable[..., dict[str, Any]]
    done: Callable[[dict[str, Any], actions.Answer], str]


def _contact(result: dict[str, Any], body: Any) -> str:
    what = "First contact" if result.get("first") else "Progress update"
    return f"{what} recorded by {body.by} ({'on time' if result['on_time'] else 'late'})."


def _approve(result: dict[str, Any], body: Any) -> str:
    verb = "approved" if result["approved"] else "rejected"
    return f"Solution round {result['round']} {verb} by {body.by} ({body.role})."


def _survey(result: dict[str, Any], body: Any) -> str:
    met = "target met" if result["target_met"] else "below target: another follow-up round"
    return f"Survey recorded by {body.by}: score {result['score']} ({met})."


ACTIONS: dict[str, Action] = {
    "contact": Action(actions.ContactIn, actions.contact, _contact),
    "measure": Action(
        actions.MeasureIn, actions.measure, lambda r, b: f"Measure {r['measure']} recorded by {b.by}."
    ),
    "cause": Action(
        actions.CauseIn,
        actions.cause,
        lambda r, b: f"Cause analysis recorded by {b.by} (owner: {r['owner_group']}).",
    ),
    "propose": Action(
        actions.ProposeIn,
        actions.propose,
        lambda r, b: (
            f"Solution {b.solution} proposed by {b.by}; awaiting approval by {r['awaiting_approval_by']}."
        ),
    ),
    "approve": Action(actions.ApproveIn, actions.approve, _approve),
    "confirm": Action(
        actions.ConfirmIn,
        actions.confirm,
        lambda r, b: f"Customer confirmation ({b.result}) recorded by {b.by}; status {r['status']}.",
    ),
    "survey": Action(actions.SurveyIn, actions.survey, _survey),
}


def to_body(name: str, form: dict[str, str]) -> actions.Answer:
    """Validate a posted form with the action's model (raises pydantic.ValidationError).

    Blank optional fields fall back to the model's defaults; a checkbox is true when posted; the
    approve form's two buttons post ``decision=approve|reject``.
    """
    model = ACTIONS[name].model
    fields = model.model_fields
    data: dict[str, Any] = {k: v.strip() for k, v in form.items() if k in fields and k not in CHECKBOXES}
    data = {k: v for k, v in data.items() if v != "" or fields[k].is_required()}
    for box in CHECKBOXES:
        if box in fields:
            data[box] = box in form
    if name == "approve":
        data["reject"] = form.get("decision") == "reject"
    return model.model_validate(data, context=FORM)  # form text: "5" is a score

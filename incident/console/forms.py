"""The console's action forms: field names → the model of the step (``incident.response.steps``).

Why the steps' own models and functions: the console then checks exactly what the CLI and the API check
(the approver's role, legal review of a recall, the order of the steps) and records the same timeline
events, with the form's ``by`` as who did it.
"""

from __future__ import annotations

from typing import Any

from incident.inputs import FORM
from incident.response.inputs import Answer
from incident.response.steps import BY_ACTION

CHECKBOXES = ("legal_reviewed",)
LISTS = ("customers",)  # a group of checkboxes: every value ticked (the contact form's customers)


def to_body(name: str, form: dict[str, str], lists: dict[str, list[str]] | None = None) -> Answer:
    """Validate a posted form with the action's model (raises pydantic.ValidationError).

    Blank optional fields fall back to the model's defaults; a checkbox is true when posted; a group
    of checkboxes (``LISTS``) is the list of the values ticked; the approve form's two buttons post
    ``decision=approve|reject``.
    """
    model = BY_ACTION[name].model
    fields = model.model_fields
    simple = {k: v.strip() for k, v in form.items() if k in fields and k not in (*CHECKBOXES, *LISTS)}
    data: dict[str, Any] = {k: v for k, v in simple.items() if v != "" or fields[k].is_required()}
    for group in LISTS:
        ticked = [v.strip() for v in (lists or {}).get(group, []) if v.strip()]
        if group in fields and ticked:
            data[group] = ticked
    for box in CHECKBOXES:
        if box in fields:
            data[box] = box in form
    if name == "approve":
        data["reject"] = form.get("decision") == "reject"
    return model.model_validate(data, context=FORM)  # form text: "5" is a score

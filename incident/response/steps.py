"""The one table of the human steps: what each is called, where it is posted, what it takes, what it does
and who does it.

Why one table: the CLI's commands, the API's routes, the console's forms, the flows' waiting points and
Prefect's Resume form all name the same seven steps. Read from here, a step added or renamed is added or
renamed everywhere at once, and no edge can validate differently from another.

``action`` is the verb people type (``incident approve``, ``POST …/approve``, the console's form);
``point`` is the flow's waiting point (``approval-2`` waits for round 2's approval). ``who`` names the
roles that do the step, resolved against the incident's playbook and level (``approver`` is the level's
approver, ``cause_owner`` the category's owner of the cause analysis, ``responders`` the level's lead and
joining roles).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import playbooks
from incident.response import inputs, service
from playbooks import vocabulary

Summary = Callable[[dict[str, Any], Any, str], str]  # (result, body, language) → one sentence


@dataclass(frozen=True)
class Step:
    action: str
    point: str
    model: type[inputs.Answer]
    act: Callable[[str, Any], dict[str, Any]]
    who: str
    help: str
    summary: Summary


def _said(key: str, lang: str, **values: Any) -> str:
    """What a step recorded, in the vocabulary's words (the console's flash after a form)."""
    return vocabulary.phrase("console", key, lang, **values)


def _contact(result: dict[str, Any], body: Any, lang: str) -> str:
    timing = vocabulary.label("console", "on_time" if result["on_time"] else "late", lang)
    first, update = result.get("first"), result.get("progress_update", True)
    key = "done_contact_first" if first else "done_contact_progress" if update else "done_contact_customer"
    line = _said(key, lang, by=body.by, timing=timing)
    progress = result.get("contact_progress") or {}
    if progress.get("customers", 0) > 1:  # a storm: how many customers have been reached so far
        said = vocabulary.progress_line(progress, lang)
        line += f"{said}。" if lang == "zh" else f" {said.capitalize()}."
    return line


def _approve(result: dict[str, Any], body: Any, lang: str) -> str:
    key = "done_approve" if result["approved"] else "done_reject"
    return _said(key, lang, round=result["round"], by=body.by, role=body.role)


def _survey(result: dict[str, Any], body: Any, lang: str) -> str:
    key = "done_survey_met" if result["target_met"] else "done_survey_below"
    return _said(key, lang, by=body.by, score=result["score"])


STEPS: tuple[Step, ...] = (
    Step("contact", "contact", inputs.ContactIn, service.contact, "customer_service",
         "Record the first (or a further) contact with the customer.", _contact),
    Step("measure", "measure", inputs.MeasureIn, service.measure, "responders",
         "Record a temporary measure (spare_product, coupon, reschedule …).",
         lambda r, b, lang: _said("done_measure", lang, measure=r["measure"], by=b.by)),
    Step("cause", "cause", inputs.CauseIn, service.cause, "cause_owner",
         "Record the cause analysis.",
         lambda r, b, lang: _said("done_cause", lang, by=b.by, owner_group=r["owner_group"])),
    Step("propose", "proposal", inputs.ProposeIn, service.propose, "cause_owner",
         "Propose the solution; it then waits for the level's approver.",
         lambda r, b, lang: _said("done_propose", lang, solution=b.solution, by=b.by,
                                  approver=r["awaiting_approval_by"])),
    Step("approve", "approval", inputs.ApproveIn, service.approve, "approver",
         "Approve (or --reject --reason) the proposed solution; only the level's approver role may.",
         _approve),
    Step("confirm", "confirmation", inputs.ConfirmIn, service.confirm, "customer_service",
         "The customer's confirmation of the result.",
         lambda r, b, lang: _said("done_confirm", lang, result=b.result, by=b.by, status=r["status"])),
    Step("survey", "survey", inputs.SurveyIn, service.survey, "customer_service",
         "The satisfaction survey; below the level's target opens another follow-up round.", _survey),
)  # fmt: skip
BY_ACTION: dict[str, Step] = {step.action: step for step in STEPS}
BY_POINT: dict[str, Step] = {step.point: step for step in STEPS}


def at(key: str) -> Step:
    """The step a waiting point's key belongs to (``approval-2-retry-1`` → approve)."""
    return BY_POINT[key.partition("-")[0]]


def who_does(step: Step, category: str, level: int) -> list[str]:
    """The roles that do ``step`` for an incident of this category and level (its playbook decides)."""
    book = playbooks.get(category)
    rules = book.level(level)
    if step.who == "approver":
        return [rules.approver]
    if step.who == "cause_owner":
        return [book.cause_owner]
    if step.who == "responders":
        return list(rules.roles)
    return [step.who]

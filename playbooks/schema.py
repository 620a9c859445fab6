"""The playbook schema: everything that differs by category or level, validated on load.

Why a schema: a playbook is edited by people; a typo must be a clear error naming the file and
field when the service starts, never a crash in the middle of an incident.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from playbooks import vocabulary


def roles() -> tuple[str, ...]:
    """The role vocabulary (``vocabulary.yaml``'s ``role``): playbooks, rosters and people name these."""
    return vocabulary.codes("role")


def _known_role(value: str) -> str:
    if value not in roles():
        raise ValueError(f"unknown role {value!r}; use one of {', '.join(roles())}")
    return value


Role = Annotated[str, AfterValidator(_known_role)]
Category = Literal["product_quality", "service_failure", "special_scenario"]
CORRELATION_FIELDS = ("product_model", "batch", "service", "region", "cause")

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days"}


def _parse_duration(value: object) -> object:
    """Accept '30m', '1h', '2d' (what people write in YAML; '20s' for drills) as well as timedeltas."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration like '30m', '4h' or '2d'")
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(Strict):
    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class EscalationStep(Strict):
    """One step of a chain: ``after`` the missed due time, ``notify`` these roles."""

    after: Duration = Field(ge=timedelta(0))
    notify: list[Role] = Field(min_length=1)


def _chain_from_escalate_to(data: object) -> object:
    """Old playbooks name only ``escalate_to``: it becomes the chain's one step, at the miss.

    Why both names stay: the records and older playbooks read ``escalate_to``; a playbook may give
    either, or both when ``escalate_to`` equals the first step's roles (checked after validation).
    """
    if not isinstance(data, dict):
        return data
    if "escalation" not in data and "escalate_to" in data:
        return {**data, "escalation": [{"after": "0m", "notify": data["escalate_to"]}]}
    if "escalate_to" not in data and isinstance(data.get("escalation"), list) and data["escalation"]:
        first = data["escalation"][0]
        if isinstance(first, dict) and "notify" in first:
            return {**data, "escalate_to": first["notify"]}
    return data


class LevelRules(Strict):
    lead: Role
    join: list[Role]
    contact_within: Duration
    approval_within: Duration
    approver: Role
    satisfaction_target: float = Field(gt=0, le=1)
    postmortem_due: Duration
    # An improvement action's reminder this long before its own due date (the meeting sets the date).
    action_remind_before: Duration = timedelta(days=1)
    progress_every: Duration
    warn_before: Duration
    escalate_to: list[Role] = Field(min_length=1)
    # After a missed deadline, until someone runs `incident ack`: each step after its delay, then the
    # last step again every ``repeat_every`` (none: the chain ends with its last step).
    escalation: list[EscalationStep] = Field(min_length=1)
    repeat_every: Duration | None = Field(None, gt=timedelta(0))
    # An internal alarm with no customer: acknowledge and assess it within this (instead of a contact).
    assess_within: Duration = timedelta(minutes=30)
    response_start: Text

    @model_validator(mode="before")
    @classmethod
    def _old_escalate_to(cls, data: object) -> object:
        return _chain_from_escalate_to(data)

    @model_validator(mode="after")
    def _chain_in_order(self) -> LevelRules:
        afters = [step.after for step in self.escalation]
        if afters != sorted(afters):
            raise ValueError("escalation steps must come in the order of their 'after' delays")
        if list(self.escalate_to) != list(self.escalation[0].notify):
            raise ValueError("escalate_to must name the first escalation step's roles (or leave it out)")
        return self

    @property
    def roles(self) -> list[Role]:
        """Everyone who takes part at this level: the lead first, then who joins."""
        return [self.lead, *[r for r in self.join if r != self.lead]]


class Option(Strict):
    label: Text
    legal_review: bool = False


Area = Literal["process", "product", "training", "resources"]  # the improvement measures list's areas


class Analysis(Strict):
    """How the post-mortem reads this category's incidents (the 5W1H "How" and improvement points)."""

    # A low "result" score in the survey points at the product for product faults, at the process else.
    low_result_area: Area = "process"


class Playbook(Strict):
    category: Category
    title: Text
    correlation: list[Literal["product_model", "batch", "service", "region", "cause"]] = Field(min_length=1)
    cause_owner: Role
    # Who answers this category's suggestions, inquiries and praise (the inbox; no incident opens).
    inbox_owner: Role = "customer_service"
    measures: dict[str, Option] = Field(min_length=1)
    solutions: dict[str, Option] = Field(min_length=1)
    levels: dict[Literal[1, 2, 3], LevelRules]
    analysis: Analysis = Analysis()
    # Who sees a customer's contact in full (each reveal audited), besides the level's lead.
    contacts_visible_to: list[Role] = Field(default_factory=lambda: ["customer_service"], min_length=1)

    @model_validator(mode="after")
    def _all_levels(self) -> Playbook:
        missing = {1, 2, 3} - set(self.levels)
        if missing:
            raise ValueError(f"levels {sorted(missing)} are missing")
        return self

    def level(self, level: int) -> LevelRules:
        return self.levels[level]  # type: ignore[index]

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


class LevelRules(Strict):
    lead: Role
    join: list[Role]
    contact_within: Duration
    approval_within: Duration
    approver: Role
    satisfaction_target: float = Field(gt=0, le=1)
    postmortem_due: Duration
    progress_every: Duration
    warn_before: Duration
    escalate_to: list[Role] = Field(min_length=1)
    response_start: Text

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

    @model_validator(mode="after")
    def _all_levels(self) -> Playbook:
        missing = {1, 2, 3} - set(self.levels)
        if missing:
            raise ValueError(f"levels {sorted(missing)} are missing")
        return self

    def level(self, level: int) -> LevelRules:
        return self.levels[level]  # type: ignore[index]

"""The playbook schema: everything that differs by category or level, validated on load.

Why a schema: a playbook is edited by people; a typo must be a clear error naming the file and
field when the service starts, never a crash in the middle of an incident.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
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


Clock = Literal["calendar", "business"]
DeadlineKind = Literal["contact", "progress", "approval", "postmortem", "assess"]
# Kinds a playbook does not name but that count like one it does: each later customer's own first
# contact (incident/deadlines/customers.py) follows ``contact``'s clock and pauses.
SAME_AS = {"customer_contact": "contact"}
# What a deadline may pause for: ``waiting_customer`` is from a solution's approval until the
# customer's answer (``incident confirm``); the deadline then goes on with the time it had left.
PauseReason = Literal["waiting_customer"]


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
    # Which clock the deadlines count on: ``calendar`` (wall-clock time, the default) or ``business``
    # (the category's calendar's working hours), for every kind or per kind ({contact: business}).
    clock: Clock | dict[DeadlineKind, Clock] = "calendar"
    # Deadlines that stop counting while the incident waits on the customer ({progress: [waiting_customer]}).
    pause_while: dict[DeadlineKind, list[PauseReason]] = Field(default_factory=dict)

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

    def clock_of(self, kind: str) -> Clock:
        """The clock one deadline kind follows (kinds a mapping leaves out count calendar time)."""
        if isinstance(self.clock, str):
            return self.clock
        return self.clock.get(SAME_AS.get(kind, kind), "calendar")  # type: ignore[call-overload]

    def pauses(self, kind: str, reason: str) -> bool:
        return reason in self.pause_while.get(SAME_AS.get(kind, kind), [])  # type: ignore[call-overload]

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
    # The team calendar (``calendars.yaml``) a ``clock: business`` deadline counts on; none: its default.
    calendar: str | None = None
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


_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hours(value: object) -> object:
    """'09:00-18:00' → (opens, closes); the day must open before it closes (no overnight shifts)."""
    if not isinstance(value, str):
        return value
    match = _HOURS.match(value)
    if not match:
        raise ValueError(f"{value!r} is not working hours like '09:00-18:00'")
    try:
        opens, closes = time(int(match[1]), int(match[2])), time(int(match[3]), int(match[4]))
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    if opens >= closes:
        raise ValueError(f"{value!r}: the day must open before it closes")
    return (opens, closes)


def _parse_days(value: object) -> object:
    """'mon-fri', 'mon-sat' or a list ['mon', 'wed'] → weekday numbers (0 = Monday)."""
    if isinstance(value, str):
        first, _, last = value.strip().lower().partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValueError(f"{value!r} is not working days like 'mon-fri' (days: {', '.join(_DAYS)})")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        if a > b:
            raise ValueError(f"{value!r}: the first day must come before the last")
        return list(range(a, b + 1))
    if isinstance(value, list):
        bad = [d for d in value if str(d).lower() not in _DAYS]
        if bad:
            raise ValueError(f"unknown days {bad}; use {', '.join(_DAYS)}")
        return sorted({_DAYS.index(str(d).lower()) for d in value})
    return value


def _known_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Shanghai") from None
    return value


class TeamCalendar(Strict):
    """One team's business hours: zone, daily hours, working days, holidays and its own closures."""

    tz: Annotated[str, AfterValidator(_known_zone)] = "Asia/Shanghai"
    hours: Annotated[tuple[time, time], BeforeValidator(_parse_hours)]
    days: Annotated[list[int], BeforeValidator(_parse_days)] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], min_length=1
    )
    # cn: the Chinese statutory holidays and 调休 make-up working days (chinesecalendar); none: weekdays only.
    holidays: Literal["cn", "none"] = "cn"
    closures: list[date] = Field(default_factory=list)
    # announced make-up working days (调休) the libraries do not know yet: worked whatever the weekday
    workdays: list[date] = Field(default_factory=list)


class Calendars(Strict):
    """``calendars.yaml``: the team calendars business-time deadlines count on."""

    default: str
    calendars: dict[str, TeamCalendar] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_exists(self) -> Calendars:
        if self.default not in self.calendars:
            raise ValueError(f"default {self.default!r} names no calendar; have {', '.join(self.calendars)}")
        return self

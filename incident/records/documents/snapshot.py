"""The dossier's types: frozen plain data, no ORM objects, no raw customer contact.

Why separate from :mod:`incident.records.documents.dossier`: the analysis (what went well or badly) and the
builder both need these types, and neither should import the other's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

GOOD_SCORE = 4.0  # a survey "scores well" when its mean is 4 or more (domain.md §4, actions.py)
SEVERITY_FLAGS = (
    "media",
    "injury",
    "property_loss",
    "brand_risk",
    "outage",
    "big_loss",
    "compensation_demand",
)


@dataclass(frozen=True, slots=True)
class Label:
    """A localized name taken from the playbook (category, measure, solution)."""

    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    def __bool__(self) -> bool:
        return bool(self.zh or self.en)


EMPTY = Label("", "")


@dataclass(frozen=True, slots=True)
class Rules:
    """The playbook rules for the incident's category and level (domain.md §3–§4)."""

    lead: str
    join: tuple[str, ...]
    approver: str
    contact_within: timedelta
    approval_within: timedelta
    satisfaction_target: float
    postmortem_due: timedelta
    progress_every: timedelta
    escalate_to: tuple[str, ...]
    response_start: Label
    cause_owner: str
    low_result_area: str

    @property
    def roles(self) -> tuple[str, ...]:
        return (self.lead, *[r for r in self.join if r != self.lead])


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    id: str
    kind: str
    channel: str
    received_at: datetime
    customer_name: str
    contact_masked: str
    order_no: str | None
    purchase_date: str | None
    product_model: str | None
    serial: str | None
    batch: str | None
    service: str | None
    region: str | None
    outside_cause: str | None
    symptom: str
    occurred_at: str | None
    impact: str
    evidence: str
    mood: str | None
    customers: int
    severity: tuple[str, ...]
    raised_from: int | None


@dataclass(frozen=True, slots=True)
class ContactItem:
    at: datetime
    by: str
    note: str
    first: bool
    on_time: bool
    minutes_after_identified: int
    progress_update: bool = False  # an update to the customers (not only first contacts of new ones)


@dataclass(frozen=True, slots=True)
class ContactProgress:
    """Each customer's own first contact: reached, owed one, overdue now, and late (missed their window)."""

    contacted: int
    customers: int
    overdue: int
    late: int


@dataclass(frozen=True, slots=True)
class MeasureItem:
    at: datetime
    by: str
    kind: str
    label: Label
    note: str
    minutes_after_identified: int


@dataclass(frozen=True, slots=True)
class CauseItem:
    at: datetime
    by: str
    owner_group: str
    root: str
    direct: str
    stage: str
    minutes_after_identified: int


@dataclass(frozen=True, slots=True)
class SolutionItem:
    round: int
    kind: str
    label: Label
    note: str
    proposed_at: datetime
    proposed_by: str
    approver_role: str
    legal_review_required: bool
    legal_reviewed: bool
    status: str  # pending | approved | rejected
    decided_at: datetime | None
    decided_by: str
    decided_role: str | None
    deputy_of: str  # the approver a deputy decided for (代理审批), else ""
    reason: str
    approval_due_at: datetime | None
    decision_minutes: int | None  # proposal → decision
    timing: str  # on_time | late | overdue | open
    late_minutes: int | None
    deadline_state: str | None  # state of the approval deadline this proposal opened, if any
    escalated_to: str | None


@dataclass(frozen=True, slots=True)
class ConfirmationItem:
    round: int
    at: datetime
    by: str
    result: str
    note: str


@dataclass(frozen=True, slots=True)
class SurveyItem:
    round: int
    at: datetime
    by: str
    speed: int
    result: int
    attitude: int
    score: float
    good: bool
    suggestion: str


@dataclass(frozen=True, slots=True)
class SurveyRound:
    round: int
    count: int
    good: int
    share: float
    target: float
    met: bool
    at: datetime  # the round's last survey


@dataclass(frozen=True, slots=True)
class DeadlineItem:
    kind: str
    due_at: datetime
    state: str  # pending | warned | met | missed | cancelled
    created_at: datetime
    warned_at: datetime | None
    met_at: datetime | None
    missed_at: datetime | None
    escalated_to: str | None
    late_minutes: int | None  # done late by (met_at - due_at), or overdue by (generated - due)
    clock: str = "calendar"  # the clock the due time counts: calendar | business (the playbook's clock:)


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime
    event: str
    by: str
    detail: str  # as stored (older versions wrote English here); ``words`` is what a reader sees
    data: tuple[tuple[str, str], ...]
    minutes_after_identified: int
    words: Label = Label("", "")  # the event's detail in both languages (incident.incidents.timeline)

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.data if k == key), None)


@dataclass(frozen=True, slots=True)
class Milestone:
    """One line of the When section: a key moment (from the records) or a notable event."""

    event: str
    at: datetime
    minutes_after_identified: int
    by: str
    detail: Label


@dataclass(frozen=True, slots=True)
class Duty:
    """One duty in the Who section and how it was carried out."""

    duty: str
    role: str | None
    people: tuple[str, ...]
    at: datetime | None
    minutes: int | None  # elapsed (since identification, or since proposal for approvals)
    outcome: str
    timing: str | None = None  # on_time | late | overdue | open | None (no deadline applies)
    late_minutes: int | None = None
    limit_minutes: int | None = None
    detail: Label = EMPTY
    round: int | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A went-well / went-badly statement: a message code and its parameters."""

    code: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kw(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class Improvement:
    area: str  # process | product | training | resources
    source: str
    code: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kw(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class Scope:
    products: tuple[str, ...]  # "model / batch"
    services: tuple[str, ...]
    regions: tuple[str, ...]
    outside_causes: tuple[str, ...]
    channels: tuple[str, ...]
    feedback_count: int


@dataclass(frozen=True, slots=True)
class LevelChange:
    at: datetime
    from_level: int | None
    to_level: int | None
    by: str


@dataclass(frozen=True, slots=True)
class ParticipantItem:
    name: str
    roles: tuple[str, ...]
    in_directory: bool


@dataclass(frozen=True, slots=True)
class MeetingItem:
    """The post-mortem meeting: what people found, next to what the dossier derives."""

    at: datetime
    by: str
    participants: tuple[ParticipantItem, ...]
    findings: tuple[str, ...]
    went_well: tuple[str, ...]
    went_badly: tuple[str, ...]
    decisions: tuple[str, ...]
    signed_at: datetime | None
    signed_by: str
    signed_role: str | None


@dataclass(frozen=True, slots=True)
class ActionItem:
    id: str
    kind: str
    owner: str
    due_at: datetime
    text: str
    status: str
    overdue: bool
    closed_at: datetime | None
    evidence: str


@dataclass(frozen=True)
class Dossier:
    incident_id: str
    category: str
    category_label: Label
    level: int
    status: str
    customers: int
    summary: str
    level_reasons: tuple[Label, ...]  # grading's codes in words
    identified_at: datetime
    first_contact_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    solution_round: int
    follow_up_round: int
    rules: Rules
    feedback: tuple[FeedbackItem, ...]
    contacts: tuple[ContactItem, ...]
    measures: tuple[MeasureItem, ...]
    causes: tuple[CauseItem, ...]
    solutions: tuple[SolutionItem, ...]
    confirmations: tuple[ConfirmationItem, ...]
    surveys: tuple[SurveyItem, ...]
    survey_rounds: tuple[SurveyRound, ...]
    deadlines: tuple[DeadlineItem, ...]
    timeline: tuple[TimelineItem, ...]
    scope: Scope
    severity: tuple[str, ...]
    level_changes: tuple[LevelChange, ...]
    generated_at: datetime
    # derived
    response_minutes: int | None = None
    contact_due_at: datetime | None = None
    contact_timing: str | None = None  # on_time | late | overdue | open
    contact_late_minutes: int | None = None
    handling_minutes: int | None = None
    postmortem_due_at: datetime | None = None
    postmortem_timing: str | None = None
    satisfaction: float | None = None  # the last round's share of good surveys
    satisfaction_met: bool | None = None
    approval_refusals: int = 0
    escalated_roles: tuple[str, ...] = ()  # everyone told about a missed deadline
    milestones: tuple[Milestone, ...] = ()
    duties: tuple[Duty, ...] = ()
    went_well: tuple[Finding, ...] = ()
    went_badly: tuple[Finding, ...] = ()
    improvements: tuple[Improvement, ...] = ()
    meeting: MeetingItem | None = None  # None: the post-mortem is a draft
    actions: tuple[ActionItem, ...] = ()
    # A storm's customers, each owed a first contact (their ``customer_contact`` rows are summarised
    # here, not listed among ``deadlines``); None when one customer or none.
    contact_progress: ContactProgress | None = None

    @property
    def postmortem_state(self) -> str:
        """draft (no meeting) → final (met, awaiting the lead's sign-off) → signed."""
        if self.meeting is None:
            return "draft"
        return "signed" if self.meeting.signed_at else "final"

    @property
    def cause(self) -> CauseItem | None:
        """The current cause analysis (the latest one recorded)."""
        return self.causes[-1] if self.causes else None

    @property
    def approved_solution(self) -> SolutionItem | None:
        approved = [s for s in self.solutions if s.status == "approved"]
        return approved[-1] if approved else None

    @property
    def rejected_solutions(self) -> tuple[SolutionItem, ...]:
        return tuple(s for s in self.solutions if s.status == "rejected")

    @property
    def confirmation(self) -> ConfirmationItem | None:
        return self.confirmations[-1] if self.confirmations else None

    @property
    def missed_deadlines(self) -> tuple[DeadlineItem, ...]:
        return tuple(d for d in self.deadlines if d.state == "missed")

    @property
    def suggestions(self) -> tuple[SurveyItem, ...]:
        return tuple(s for s in self.surveys if s.suggestion)

    @property
    def first_contact(self) -> ContactItem | None:
        firsts = [c for c in self.contacts if c.first]
        return firsts[0] if firsts else (self.contacts[0] if self.contacts else None)


def minutes_between(start: datetime | None, end: datetime | None) -> int | None:
    """Whole minutes from start to end, rounded (None if either is unknown)."""
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60)

"""Response models of the HTTP API: what ``/openapi.json`` promises each JSON route returns.

Why these are descriptive rather than the source of the bodies: the routes build plain dicts (the CLI
prints the same dicts), and scripts already read them. The models name the keys a client may rely on,
with their types; a key that is not always there is optional, and each model allows extra keys so
nothing the route returns today is dropped. The routes use ``response_model_exclude_unset`` so a key
a route leaves out stays out instead of turning into ``null``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Out(BaseModel):
    """Every response model: extra keys pass through unchanged."""

    model_config = ConfigDict(extra="allow")


class ErrorOut(Out):
    """Every error of the API (http_errors.py): one line; 422s from validation add ``errors``."""

    error: str
    errors: list[dict[str, Any]] | None = None


Delivery = Literal["delivered", "stored", "pending"]
# int | float, not float: pydantic would turn an int the route returns (a target of 4) into 4.0.
Number = int | float


class FeedbackAccepted(Out):
    """The 202 of ``POST /api/feedback``; run ids are null while a storm delays their runs."""

    feedback_id: str
    incident_id: str | None = None
    level: int | None = None
    category: str | None = None
    contact_deadline: str | None = None
    opened: bool | None = None
    raised_from: int | None = None
    flow_run_id: str | None = None
    incident_flow_run_id: str | None = None
    recurrence_of: str | None = None  # the closed incident this one repeats


class FeedbackStatus(Out):
    feedback_id: str
    incident_id: str | None = None
    kind: str | None = None
    category: str | None = None
    received_at: str | None = None
    opened_incident: bool | None = None
    raised_from: int | None = None
    flow_run_id: str | None = None
    incident_flow_run_id: str | None = None
    handled_at: str | None = None


class NextDeadline(Out):
    kind: str
    due_at: str | None = None
    clock: str | None = None  # calendar | business (working hours of the team calendar)


class IncidentSummary(Out):
    incident_id: str
    level: int
    category: str
    status: str
    customers: int
    summary: str | None = None
    identified_at: str | None = None
    next_deadline: NextDeadline | None = None
    missed_deadlines: int | None = None
    owner: str | None = None
    overdue_minutes: int | None = None


class IncidentList(Out):
    incidents: list[IncidentSummary]


class TimelineEntry(Out):
    at: str | None = None
    event: str
    by: str | None = None
    detail: str | None = None  # as stored (English in older rows); ``words`` is what a person reads
    data: dict[str, Any] | None = None  # the event's codes and values
    who: str | None = None  # ``by`` in words, in the asked language (Accept-Language, else INCIDENT_LANG)
    words: str | None = None  # the detail in words, in the asked language


class DeadlineOut(Out):
    kind: str
    due_at: str | None = None
    clock: str | None = None  # calendar | business (working hours of the team calendar)
    state: str
    met_at: str | None = None
    missed_at: str | None = None
    escalated_to: str | None = None


class ContactProgress(Out):
    """Each customer's own first contact: customers reached, customers owed one, those overdue.

    A report that speaks for many (``customers: 120``) is one customer to contact."""

    contacted: int
    customers: int
    overdue: int = 0  # interface.md names contacted and customers; overdue is ours


class IncidentDetail(IncidentSummary):
    """``GET /api/incidents/{id}``: the summary plus timeline, deadlines, answers and the waiting point."""

    level_reasons: list[Any] | None = None  # grading's codes ({"code": "media"}; older rows: English text)
    level_reason_words: list[str] | None = None  # the same in the asked language
    first_contact_at: str | None = None
    resolved_at: str | None = None
    closed_at: str | None = None
    flow_run_id: str | None = None
    solution_round: int | None = None
    follow_up_round: int | None = None
    lead: Any = None
    approver: Any = None
    timeline: list[TimelineEntry]
    deadlines: list[DeadlineOut]  # each later customer's own contact is in contact_progress instead
    contact_progress: ContactProgress | None = None
    escalating: bool | None = None  # a chain runs (a customer's contact's too): `incident ack` stops it
    contacts: list[dict[str, Any]] | None = None
    measures: list[dict[str, Any]] | None = None
    causes: list[dict[str, Any]] | None = None
    solutions: list[dict[str, Any]] | None = None
    confirmations: list[dict[str, Any]] | None = None
    surveys: list[dict[str, Any]] | None = None
    waiting_for: str | None = None
    recurrence_of: str | None = None
    recurrence: dict[str, Any] | None = None  # the earlier incident and its improvement actions
    meeting: dict[str, Any] | None = None
    postmortem: str | None = None  # draft | final | signed
    actions: list[dict[str, Any]] | None = None


class ActionOut(Out):
    """What every action answers: its own keys, and whether the waiting run got the answer."""

    incident_id: str
    delivery: Delivery


class CustomerMessages(Out):
    """What a progress update's text became for the customers: queued to be sent (they consented and
    came through a channel that carries it) or left to a person (``by_person``)."""

    queued: int = 0
    by_person: int = 0


class ContactOut(ActionOut):
    contacted_at: str
    on_time: bool | None = None
    first: bool | None = None
    progress_update: bool | None = None  # it was a progress update (the cadence counts from it)
    customers: list[str] = []  # the customers reached (each by their first report's id)
    contact_progress: ContactProgress | None = None
    messages: CustomerMessages | None = None  # only when the contact carried an update's text


class MeasureOut(ActionOut):
    measure: str


class CauseOut(ActionOut):
    owner_group: str | None = None
    recurrence_of: str | None = None


class ProposeOut(ActionOut):
    awaiting_approval_by: str | None = None
    round: int | None = None


class ApproveOut(ActionOut):
    approved: bool
    round: int | None = None


class ConfirmOut(ActionOut):
    status: str
    resolved: bool | None = None


class SurveyOut(ActionOut):
    score: Number
    target_met: bool
    share: Number | None = None
    target: Number | None = None
    round: int | None = None


class AckOut(Out):
    """``POST /api/incidents/{id}/ack``: who took it on, whose chains stopped, if an alarm was assessed."""

    incident_id: str
    acknowledged_by: str
    stopped: list[str] = []  # the kinds whose chains stopped (a customer's contact once, however many)
    stopped_count: int = 0  # the deadlines whose chains stopped
    assessed: bool = False


# What each human step answers (incident.response.steps names the steps; a test checks both agree).
ACTION_OUT: dict[str, type[ActionOut]] = {
    "contact": ContactOut,
    "measure": MeasureOut,
    "cause": CauseOut,
    "propose": ProposeOut,
    "approve": ApproveOut,
    "confirm": ConfirmOut,
    "survey": SurveyOut,
}


class ActionRow(Out):
    """One improvement action (``incident actions``)."""

    id: str
    incident_id: str
    kind: str
    owner: str
    due_at: str
    status: Literal["open", "done"]
    text: str | None = None
    overdue: bool | None = None
    closed_at: str | None = None
    closed_by: str | None = None
    evidence: str | None = None


class ActionsOut(Out):
    actions: list[ActionRow]
    incident_id: str | None = None


class Participant(Out):
    name: str
    roles: list[str]
    in_directory: bool


class MeetingOut(Out):
    """``POST /api/incidents/{id}/meeting``: the post-mortem is final (awaiting the lead's sign-off)."""

    incident_id: str
    at: str
    on_time: bool
    postmortem: Literal["draft", "final", "signed"]
    participants: list[Participant]
    actions: list[ActionRow]


class SignoffOut(Out):
    incident_id: str
    signed_by: str
    role: str
    postmortem: Literal["signed"]
    signed_at: str | None = None


class DeliveryRow(Out):
    id: int
    incident_id: str | None = None
    notice: str | None = None
    role: str | None = None
    url: str | None = None
    status: str
    attempts: int | None = None
    error: str | None = None
    title: str | None = None
    created_at: str | None = None
    sent_at: str | None = None


class NotificationsOut(Out):
    incident_id: str
    deliveries: list[DeliveryRow]


class RecordEntry(Out):
    kind: str
    title: dict[str, str]
    available: bool
    languages: list[str]
    formats: list[str]
    updated_at: str | None = None
    path: str


class RecordsOut(Out):
    incident_id: str
    records: list[RecordEntry]


class MetricsOut(Out):
    """The monthly review; nested shapes (satisfaction, recurrences, trend) are kept as they are."""

    month: str | None = None
    timezone: str | None = None
    incidents: int
    open: int | None = None
    by_category: dict[str, int] | None = None
    by_level: dict[str, int] | None = None
    contacted: int | None = None
    response_minutes_p50: Number | None = None
    response_minutes_p90: Number | None = None
    resolved: int | None = None
    handling_hours_p50: Number | None = None
    handling_hours_p90: Number | None = None
    satisfaction: Any = None
    recurrence_rate: Number | None = None
    recurrences: list[Any] | None = None
    missed_deadlines: dict[str, Any] | None = None
    top_recurring: list[Any] | None = None
    trend: list[Any] | None = None
    actions: dict[str, int] | None = None  # improvement actions: open, overdue, done


ERROR_STATUSES = {
    401: "missing or wrong bearer token",
    403: "the role may not do this",
    404: "unknown incident, feedback or record",
    409: "the incident is not at that step, or an identical request was just accepted",
    413: "request body too large",
    422: "input that cannot be stored (do not retry as is)",
    503: "database unavailable; nothing was stored, retry after Retry-After seconds",
}


def errors(extra: dict[int | str, dict[str, Any]] | None = None) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: every error status with ``ErrorOut``, plus ``extra`` ones."""
    found: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorOut, "description": text} for status, text in ERROR_STATUSES.items()
    }
    found.update(extra or {})
    return found


def content(text: tuple[str, ...] = (), binary: tuple[str, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """A 200 whose body is a document or an image, not JSON: its media types in ``/openapi.json``."""
    media = {m: {"schema": {"type": "string"}} for m in text}
    media.update({m: {"schema": {"type": "string", "format": "binary"}} for m in binary})
    return {200: {"description": "the document", "content": media}}


# What every JSON route declares: unset fields left out, and the error answers it can give.
JSON_ROUTE: dict[str, Any] = {"response_model_exclude_unset": True, "responses": errors()}


class InboxItem(Out):
    """One suggestion, inquiry or praise in the inbox (contacts masked)."""

    feedback_id: str
    kind: str
    category: str | None = None
    status: Literal["open", "answered", "closed", "promoted"]
    routed_to: str | None = None


class InboxList(Out):
    """``GET /api/inbox``: the names of interface.md's ``incident inbox``."""

    feedback: list[InboxItem]


class Assigned(Out):
    incident_id: str
    owner: str | None = None

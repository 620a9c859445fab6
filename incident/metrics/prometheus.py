"""``GET /metrics``: Prometheus text format, every number derived from the database at scrape time.

Why a custom collector over the database instead of in-process counters: the service restarts (and
several processes write the same database: CLI actions, the watcher, flow runs), while Prometheus
needs counters that never go back. Counting durable rows at scrape time gives numbers that survive
restarts and agree with the CLI and the post-mortems. Counters only count rows that never leave
their label set (an incident is counted by the level it *opened* at; raises are counted apart).
The rows read are narrow (a few columns) and grouped in SQL where the database can do it.

Every known label set (levels 1-3, the playbooks' categories, deadline kinds, notice kinds and
delivery statuses, feedback kinds and channels) is exported from the first scrape on, at 0: a
``rate()`` or an alert on a series that does not exist yet is silently empty, not 0.

Two kinds of numbers, which replicas aggregate differently (README, Operations):

* database-derived (every ``incident_*`` family below ``DatabaseCollector``): each replica reads the
  same database and reports the same value; aggregate with ``max()``, never ``sum()``;
* per-process (``incident_http_responses_total``, ``process_*``, ``python_info``,
  ``incident_build_info``): each replica's own; ``sum()`` the counters' rates over replicas.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from typing import get_args

from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, generate_latest
from prometheus_client import Counter as EventCounter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import playbooks
from incident.integrations import WRITE_BACKS
from models import (
    Deadline,
    Delivery,
    Feedback,
    ImprovementAction,
    Incident,
    TimelineEvent,
    session_scope,
    utcnow,
)
from notifiers.render import CUSTOMER_KINDS, NOTICE_KINDS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LEVELS = ("1", "2", "3")
RAISED_TO = ("1", "2")  # a raise goes towards L1; nothing is raised to L3
DEADLINE_KINDS = ("contact", "customer_contact", "approval", "progress", "postmortem", "action", "assess")
ACTIVE_DEADLINE = ("pending", "warned")  # incident.deadlines.service.ACTIVE
NOTICE_STATUSES = ("sent", "failed", "no_recipient")
CUSTOMER_STATUSES = ("sent", "failed", "by_person")  # a customer's copy of an update (response/updates.py)
HANDLERS = ("intake", "api", "console", "metrics")
CODES = ("2xx", "3xx", "4xx", "5xx")
INTAKE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
CONTACT_BUCKETS = (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0)
_LEVEL = re.compile(r"L(\d)")


def _histogram(
    name: str, doc: str, seconds: Sequence[float], buckets: Sequence[float]
) -> HistogramMetricFamily:
    cumulative = [(str(b), sum(1 for s in seconds if s <= b)) for b in buckets]
    cumulative.append(("+Inf", len(seconds)))
    return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=sum(seconds))


def _durations(rows: Sequence[tuple[datetime | None, datetime | None]]) -> list[float]:
    return [max((end - start).total_seconds(), 0.0) for start, end in rows if start and end]


def _feedback_vocabulary() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Feedback kinds and channels, from the intake model itself (its ``Literal`` types)."""
    from incident.feedback.service import FeedbackIn

    fields = FeedbackIn.model_fields
    return get_args(fields["kind"].annotation), get_args(fields["channel"].annotation)


def _zeros(*label_values: Sequence[str]) -> Counter[tuple[str, ...]]:
    """Every combination of the given label values, at 0."""
    combos: list[tuple[str, ...]] = [()]
    for values in label_values:
        combos = [(*c, v) for c in combos for v in values]
    return Counter(dict.fromkeys(combos, 0))


# Per-process event counter: responses of this replica's HTTP server (incident.api.web counts them).
HTTP_RESPONSES = EventCounter(
    "incident_http_responses",
    "HTTP responses of this process, by handler (intake: feedback, alarms, integrations) and status class",
    ["handler", "code"],
    registry=None,
)
for _handler in HANDLERS:
    for _code in CODES:
        HTTP_RESPONSES.labels(_handler, _code)


class BuildCollector(Collector):
    """``incident_build_info{version}`` 1: which version each replica runs (rollouts, mixed fleets)."""

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("incident_build_info", "The running version", labels=["version"])
        info.add_metric([version("incident-orchestrator")], 1)
        yield info


class HttpCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from HTTP_RESPONSES.collect()


class DatabaseCollector(Collector):
    """Reads the product's database on every scrape (one short transaction)."""

    def collect(self) -> Iterator[Metric]:
        with session_scope() as s:
            yield from self._incidents(s)
            yield from self._work(s)
            yield from self._latency(s)
            yield from self._review(s)

    def _review(self, s: Session) -> Iterator[Metric]:
        """Improvement actions (open, overdue: open past due, done) and incidents that repeat a closed one."""
        actions = GaugeMetricFamily(
            "incident_improvement_actions",
            "Improvement actions by state: open, overdue (open and past due, also in open), done",
            labels=["state"],
        )
        now, got = utcnow(), Counter(dict.fromkeys(("open", "overdue", "done"), 0))
        for status, due_at in s.execute(select(ImprovementAction.status, ImprovementAction.due_at)):
            got[status] += 1
            if status == "open" and due_at < now:
                got["overdue"] += 1
        for state in ("open", "overdue", "done"):
            actions.add_metric([state], got[state])
        yield actions
        repeats = s.scalar(select(func.count()).where(Incident.recurrence_of.is_not(None))) or 0
        yield CounterMetricFamily(
            "incident_recurrences", "Incidents opened as a recurrence of a closed one", value=repeats
        )

    def _incidents(self, s: Session) -> Iterator[Metric]:
        opened = CounterMetricFamily(
            "incident_incidents_opened",
            "Incidents opened, by the level graded at opening",
            labels=["level", "category"],
        )
        first_level = {}
        for incident_id, detail in s.execute(
            select(TimelineEvent.incident_id, TimelineEvent.detail).where(TimelineEvent.event == "identified")
        ):
            match = _LEVEL.search(detail or "")
            first_level[incident_id] = match[1] if match else "unknown"
        counts = _zeros(LEVELS, sorted(playbooks.load_all()))
        current: Counter[str] = Counter()
        for incident_id, category, level, status in s.execute(
            select(Incident.id, Incident.category, Incident.level, Incident.status)
        ):
            counts[(first_level.get(incident_id, str(level)), category)] += 1
            if status != "closed":
                current[str(level)] += 1
        for (level, category), n in sorted(counts.items()):
            opened.add_metric([level, category], n)
        yield opened

        gauge = GaugeMetricFamily(
            "incident_open_incidents", "Incidents not closed yet, by current level", labels=["level"]
        )
        for level in LEVELS:
            gauge.add_metric([level], current[level])
        yield gauge

        raises = CounterMetricFamily(
            "incident_level_raises", "Level raises, by the level raised to", labels=["to_level"]
        )
        raised = Counter(dict.fromkeys(RAISED_TO, 0))
        for detail in s.scalars(select(TimelineEvent.detail).where(TimelineEvent.event == "level_raised")):
            levels = _LEVEL.findall(detail or "")
            raised[levels[-1] if levels else "unknown"] += 1
        for level, n in sorted(raised.items()):
            raises.add_metric([level], n)
        yield raises

    def _work(self, s: Session) -> Iterator[Metric]:
        missed = CounterMetricFamily(
            "incident_deadlines_missed", "Deadlines missed, by kind", labels=["kind"]
        )
        missed_by_kind = Counter(dict.fromkeys(DEADLINE_KINDS, 0))
        for kind, n in s.execute(
            select(Deadline.kind, func.count()).where(Deadline.state == "missed").group_by(Deadline.kind)
        ):
            missed_by_kind[kind] += n
        for kind, n in sorted(missed_by_kind.items()):
            missed.add_metric([kind], n)
        yield missed
        yield from self._watch(s)

        notices = CounterMetricFamily(
            "incident_notices",
            "Notice deliveries (one per role and channel) by kind and status: sent, failed, no_recipient",
            labels=["notice", "status"],
        )
        sent = _zeros((*NOTICE_KINDS, *WRITE_BACKS), NOTICE_STATUSES)  # a ticket's notes count too
        sent.update(_zeros(CUSTOMER_KINDS, CUSTOMER_STATUSES))
        for notice, status, n in s.execute(
            select(Delivery.notice, Delivery.status, func.count()).group_by(Delivery.notice, Delivery.status)
        ):
            sent[(notice, status)] += n
        for (notice, status), n in sorted(sent.items()):
            notices.add_metric([notice, status], n)
        yield notices

        accepted = CounterMetricFamily(
            "incident_feedback_accepted", "Feedback accepted, by kind and channel", labels=["kind", "channel"]
        )
        got = _zeros(*_feedback_vocabulary())
        for kind, channel, n in s.execute(
            select(Feedback.kind, Feedback.channel, func.count()).group_by(Feedback.kind, Feedback.channel)
        ):
            got[(kind, channel)] += n
        for (kind, channel), n in sorted(got.items()):
            accepted.add_metric([kind, channel], n)
        yield accepted

    def _watch(self, s: Session) -> Iterator[Metric]:
        """How far behind the deadline watcher and the feedback runs are, from the rows they leave.

        Why from rows rather than a heartbeat: a watcher that runs but does nothing (stuck in a
        transaction, a Prefect outage) still heartbeats; an active deadline long past due, or a
        feedback long unhandled, is the symptom itself, and every replica sees it.
        """
        now = utcnow()
        oldest_due = s.scalar(
            select(func.min(Deadline.due_at)).where(
                Deadline.state.in_(ACTIVE_DEADLINE), Deadline.due_at < now
            )
        )
        lag = GaugeMetricFamily(
            "incident_deadline_watch_lag_seconds",
            "Age of the oldest deadline past due but not yet marked missed (0: the watcher is current)",
        )
        lag.add_metric([], _age(now, oldest_due))
        yield lag
        unhandled = Feedback.handled_at.is_(None)
        oldest_feedback = s.scalar(select(func.min(Feedback.received_at)).where(unhandled))
        backlog = GaugeMetricFamily(
            "incident_feedback_unhandled_oldest_seconds",
            "Age of the oldest feedback whose flow run has not finished (0: none waiting)",
        )
        backlog.add_metric([], _age(now, oldest_feedback))
        yield backlog

    def _latency(self, s: Session) -> Iterator[Metric]:
        handled = s.execute(
            select(Feedback.received_at, Feedback.handled_at).where(Feedback.handled_at.is_not(None))
        ).all()
        yield _histogram(
            "incident_intake_latency_seconds",
            "From a feedback received to its flow run done (incident opened or joined, people told)",
            _durations([tuple(r) for r in handled]),
            INTAKE_BUCKETS,
        )
        contacted = s.execute(
            select(Incident.identified_at, Incident.first_contact_at).where(
                Incident.first_contact_at.is_not(None)
            )
        ).all()
        yield _histogram(
            "incident_first_contact_seconds",
            "From an incident identified to the first contact with the customer",
            _durations([tuple(r) for r in contacted]),
            CONTACT_BUCKETS,
        )


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # in case a driver hands an aggregate back naive (it is UTC)
        then = then.replace(tzinfo=UTC)
    return max((now - then).total_seconds(), 0.0)


def exposition() -> bytes:
    """The text a scrape gets: the database's numbers read afresh, plus this process's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    registry.register(HttpCollector())
    registry.register(BuildCollector())
    registry.register(PROCESS_COLLECTOR)  # process_cpu_seconds_total, process_resident_memory_bytes …
    registry.register(PLATFORM_COLLECTOR)  # python_info
    return generate_latest(registry)

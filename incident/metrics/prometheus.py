"""``GET /metrics``: Prometheus text format, every number derived from the database at scrape time.

Why a custom collector over the database instead of in-process counters: the service restarts (and
several processes write the same database: CLI actions, the watcher, flow runs), while Prometheus
needs counters that never go back. Counting durable rows at scrape time gives numbers that survive
restarts and agree with the CLI and the post-mortems. Counters only count rows that never leave
their label set (an incident is counted by the level it *opened* at; raises are counted apart).

Why every family is counted in SQL (``GROUP BY``, histogram buckets as ``SUM(CASE …)``): a scrape comes
every 15 s for years, and reading the rows into Python made each one cost in proportion to the history
(``bench/metrics_scrape.py``: 0.36 s at 50,000 feedback, 2.6 s at 200,000, before; see the README).

Why a database outage does not fail the scrape: the process's own series (its HTTP answers, among
them intake's 503s while the database is away) must reach Prometheus exactly then. The database's
families are left out of that scrape and ``incident_database_up`` says 0.

Every known label set (levels 1-3, the playbooks' categories, deadline kinds, notice kinds and
delivery statuses, feedback kinds and channels) is exported from the first scrape on, at 0: a
``rate()`` or an alert on a series that does not exist yet is silently empty, not 0.

Two kinds of numbers, which replicas aggregate differently (README, Operations):

* database-derived (every ``incident_*`` family of ``DatabaseCollector``): each replica reads the
  same database and reports the same value; aggregate with ``max()``, never ``sum()``;
* per-process (incident/metrics/process.py: ``incident_http_responses_total``,
  ``incident_feedback_runs_total``, ``incident_process_notices_total``, ``incident_database_up``,
  ``process_*``, ``python_info``, ``incident_build_info``): each replica's own; ``sum()`` the counters'
  rates over replicas.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, get_args

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

import playbooks
from incident.integrations import WRITE_BACKS
from incident.metrics.process import HTTP_RESPONSES, api_collectors
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

__all__ = ["CONTENT_TYPE", "DEADLINE_KINDS", "HTTP_RESPONSES", "DatabaseCollector", "exposition"]

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LEVELS = ("1", "2", "3")
RAISED_TO = ("1", "2")  # a raise goes towards L1; nothing is raised to L3
# the kinds of deadline rows (the vocabulary's ``deadline`` codes; tests/test_prometheus_ops.py)
DEADLINE_KINDS = ("contact", "customer_contact", "approval", "progress", "postmortem", "action", "assess")
ACTIVE_DEADLINE = ("pending", "warned")  # incident.deadlines.service.ACTIVE
NOTICE_STATUSES = ("sent", "failed", "no_recipient")
CUSTOMER_STATUSES = ("sent", "failed", "by_person")  # a customer's copy of an update (response/updates.py)
INTAKE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
CONTACT_BUCKETS = (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0)
_LEVEL = re.compile(r"L(\d)")


def _seconds(s: Session, start: Any, end: Any) -> Any:
    """``end - start`` in seconds, in SQL (no portable function: each dialect's own).

    SQLite's ``julianday`` is a day count in a double: exact to ~50 µs at today's dates, so the value is
    rounded to the millisecond."""
    if s.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)


def _histogram(
    s: Session, name: str, doc: str, start: Any, end: Any, buckets: Sequence[float]
) -> HistogramMetricFamily:
    """The histogram of ``end - start`` (never below 0) over the rows having both, counted by the database.

    Each row's seconds are computed once, in a materialized CTE (SQLite 3.35+, PostgreSQL 12+): inlined,
    every bucket's ``CASE`` parsed both timestamps again, and the scrape took 8× as long on SQLite."""
    durations = (
        select(_seconds(s, start, end).label("seconds"))
        .where(start.is_not(None), end.is_not(None))
        .cte("durations")
        .prefix_with("MATERIALIZED")
    )
    seconds = durations.c.seconds  # a negative one (clocks of two hosts) falls in every bucket, as 0 does
    count, total, *within = s.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((seconds < 0, 0.0), else_=seconds)), 0.0),
            *(func.coalesce(func.sum(case((seconds <= b, 1), else_=0)), 0) for b in buckets),
        ).select_from(durations)
    ).one()
    cumulative = [(str(b), int(n)) for b, n in zip(buckets, within, strict=True)]
    cumulative.append(("+Inf", int(count)))
    return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=float(total))


def _feedback_vocabulary() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Feedback kinds and channels, from the intake model itself (its ``Literal`` types)."""
    from incident.feedback.inputs import FeedbackIn

    fields = FeedbackIn.model_fields
    return get_args(fields["kind"].annotation), get_args(fields["channel"].annotation)


def _zeros(*label_values: Sequence[str]) -> Counter[tuple[str, ...]]:
    """Every combination of the given label values, at 0."""
    combos: list[tuple[str, ...]] = [()]
    for values in label_values:
        combos = [(*c, v) for c in combos for v in values]
    return Counter(dict.fromkeys(combos, 0))


def _database_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "incident_database_up",
        "1 if this process read the database for this scrape; 0: it could not (the database's families "
        "are missing from this scrape)",
        value=1 if up else 0,
    )


class DatabaseCollector(Collector):
    """Reads the product's database on every scrape (one short transaction, aggregates only)."""

    def collect(self) -> Iterator[Metric]:
        try:
            with session_scope() as s:
                families = [*self._incidents(s), *self._work(s), *self._latency(s), *self._review(s)]
        except (DBAPIError, PoolTimeout) as exc:  # the database is away: the rest of the scrape goes out
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            log.warning("/metrics without the database's families: %s", reason)
            yield _database_up(False)
            return
        yield _database_up(True)
        yield from families

    def _review(self, s: Session) -> Iterator[Metric]:
        """Improvement actions (open, overdue: open past due, done) and incidents that repeat a closed one."""
        actions = GaugeMetricFamily(
            "incident_improvement_actions",
            "Improvement actions by state: open, overdue (open and past due, also in open), done",
            labels=["state"],
        )
        got = Counter(dict.fromkeys(("open", "overdue", "done"), 0))
        past_due = func.sum(case((ImprovementAction.due_at < utcnow(), 1), else_=0))
        for status, n, late in s.execute(
            select(ImprovementAction.status, func.count(), past_due).group_by(ImprovementAction.status)
        ):
            got[status] += n
            if status == "open":
                got["overdue"] += int(late or 0)
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
        # the level an incident opened at is its ``identified`` event's detail ("L3"): a handful of values
        identified = (
            select(TimelineEvent.incident_id, func.min(TimelineEvent.detail).label("detail"))
            .where(TimelineEvent.event == "identified")
            .group_by(TimelineEvent.incident_id)
            .subquery()
        )
        counts = _zeros(LEVELS, sorted(playbooks.load_all()))
        for category, level, detail, n in s.execute(
            select(Incident.category, Incident.level, identified.c.detail, func.count())
            .outerjoin(identified, identified.c.incident_id == Incident.id)
            .group_by(Incident.category, Incident.level, identified.c.detail)
        ):
            match = _LEVEL.search(detail or "")
            first = match[1] if match else ("unknown" if detail is not None else str(level))
            counts[(first, category)] += n
        for (level, category), n in sorted(counts.items()):
            opened.add_metric([level, category], n)
        yield opened

        gauge = GaugeMetricFamily(
            "incident_open_incidents", "Incidents not closed yet, by current level", labels=["level"]
        )
        still_open = select(Incident.level, func.count()).where(Incident.status != "closed")
        current = Counter({str(level): n for level, n in s.execute(still_open.group_by(Incident.level))})
        for level in LEVELS:
            gauge.add_metric([level], current[level])
        yield gauge

        raises = CounterMetricFamily(
            "incident_level_raises", "Level raises, by the level raised to", labels=["to_level"]
        )
        raised = Counter(dict.fromkeys(RAISED_TO, 0))
        for detail, n in s.execute(  # "L3 → L1": a handful of distinct details
            select(TimelineEvent.detail, func.count())
            .where(TimelineEvent.event == "level_raised")
            .group_by(TimelineEvent.detail)
        ):
            levels = _LEVEL.findall(detail or "")
            raised[levels[-1] if levels else "unknown"] += n
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
        yield _histogram(
            s,
            "incident_intake_latency_seconds",
            "From a feedback received to its flow run done (incident opened or joined, people told)",
            Feedback.received_at,
            Feedback.handled_at,
            INTAKE_BUCKETS,
        )
        yield _histogram(
            s,
            "incident_first_contact_seconds",
            "From an incident identified to the first contact with the customer",
            Incident.identified_at,
            Incident.first_contact_at,
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
    for collector in api_collectors():  # process_cpu_seconds_total, incident_http_responses_total …
        registry.register(collector)
    return generate_latest(registry)

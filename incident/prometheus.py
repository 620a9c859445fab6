"""``GET /metrics``: Prometheus text format, every number derived from the database at scrape time.

Why a custom collector over the database instead of in-process counters: the service restarts (and
several processes write the same database: CLI actions, the watcher, flow runs), while Prometheus
needs counters that never go back. Counting durable rows at scrape time gives numbers that survive
restarts and agree with the CLI and the post-mortems. Counters only count rows that never leave
their label set (an incident is counted by the level it *opened* at; raises are counted apart).
The rows read are narrow (a few columns) and grouped in SQL where the database can do it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Deadline, Delivery, Feedback, Incident, TimelineEvent, session_scope

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LEVELS = ("1", "2", "3")
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


class DatabaseCollector(Collector):
    """Reads the product's database on every scrape (one short transaction)."""

    def collect(self) -> Iterator[Metric]:
        with session_scope() as s:
            yield from self._incidents(s)
            yield from self._work(s)
            yield from self._latency(s)

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
        counts: Counter[tuple[str, str]] = Counter()
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
        raised: Counter[str] = Counter()
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
        for kind, n in s.execute(
            select(Deadline.kind, func.count()).where(Deadline.state == "missed").group_by(Deadline.kind)
        ):
            missed.add_metric([kind], n)
        yield missed

        notices = CounterMetricFamily(
            "incident_notices",
            "Notice deliveries (one per role and channel) by kind and status: sent, failed, no_recipient",
            labels=["notice", "status"],
        )
        for notice, status, n in s.execute(
            select(Delivery.notice, Delivery.status, func.count()).group_by(Delivery.notice, Delivery.status)
        ):
            notices.add_metric([notice, status], n)
        yield notices

        accepted = CounterMetricFamily(
            "incident_feedback_accepted", "Feedback accepted, by kind and channel", labels=["kind", "channel"]
        )
        for kind, channel, n in s.execute(
            select(Feedback.kind, Feedback.channel, func.count()).group_by(Feedback.kind, Feedback.channel)
        ):
            accepted.add_metric([kind, channel], n)
        yield accepted

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


def exposition() -> bytes:
    """The text a scrape gets (a fresh registry each time: no state kept between scrapes)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return generate_latest(registry)

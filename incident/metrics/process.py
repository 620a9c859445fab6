"""The series each process counts itself, and the worker's own ``/metrics`` endpoint.

Why per process, beside the database-derived families of ``prometheus.py``: what a process did (the
HTTP answers it gave, the feedback runs it executed, the notices it sent, the passes of its loops) is
known only to it, and goes back to 0 when it restarts; Prometheus' ``rate()`` and ``increase()`` handle
that reset, and ``sum()`` over the processes gives the fleet's total.

Why the worker has an endpoint of its own: it is a process apart from the API (``incident serve``
starts one beside its API, ``incident worker`` runs more), and a worker that stopped working was
visible nowhere until the deadlines it should have watched were long past due. Its endpoint is
prometheus_client's HTTP server on ``INCIDENT_WORKER_METRICS_HOST``:``INCIDENT_WORKER_METRICS_PORT``
(loopback by default), without a token: its series hold counts of runs, notices and passes, no
business data (the API's ``/metrics``, which counts incidents by category, wants the bearer token).

A notice is counted by ``notifiers`` (``notifiers.service.SENT``: that package imports nothing of the
application's) and exported here. An incident run sends its notices from the run process Prefect's
Runner starts for it, which has no endpoint: those are in the database-derived ``incident_notices_total``.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version

from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry
from prometheus_client import Counter as EventCounter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from notifiers.service import SENT

HANDLERS = ("intake", "api", "console", "metrics")
CODES = ("2xx", "3xx", "4xx", "5xx")
OUTCOMES = ("handled", "failed")
LOOPS = ("sweep", "deadline_watcher")
PASS_OUTCOMES = ("ok", "failed")

# Responses of this replica's HTTP server (incident.api.requestlog counts them).
HTTP_RESPONSES = EventCounter(
    "incident_http_responses",
    "HTTP responses of this process, by handler (intake: feedback, alarms, integrations) and status class",
    ["handler", "code"],
    registry=None,
)
# handle_feedback runs this process executed (incident.engine.queue.handle): the worker's queue, and an
# API process's level-1 reports, which it runs itself at once.
FEEDBACK_RUNS = EventCounter(
    "incident_feedback_runs",
    "handle_feedback flow runs this process executed, by outcome (failed: tried again later)",
    ["outcome"],
    registry=None,
)
# Passes of the worker's loops (incident.engine.worker._every): a pass that raised is ``failed``.
LOOP_PASSES = EventCounter(
    "incident_worker_loop_passes",
    "Passes of this worker's loops (sweep, deadline_watcher), by outcome",
    ["loop", "outcome"],
    registry=None,
)
for _handler in HANDLERS:
    for _code in CODES:
        HTTP_RESPONSES.labels(_handler, _code)
for _outcome in OUTCOMES:
    FEEDBACK_RUNS.labels(_outcome)
for _loop in LOOPS:
    for _pass in PASS_OUTCOMES:
        LOOP_PASSES.labels(_loop, _pass)


class BuildCollector(Collector):
    """``incident_build_info{version}`` 1: which version each process runs (rollouts, mixed fleets)."""

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("incident_build_info", "The running version", labels=["version"])
        info.add_metric([version("incident-orchestrator")], 1)
        yield info


class HolidayDataCollector(Collector):
    """``incident_holiday_data_last_year``: the last year whose statutory holidays and 调休 the kept
    calendar library carries (incident/deadlines/calendar.py); the alert ``IncidentHolidayDataEnding``
    fires in December when next year is missing, so a team lists the announced 调休 days in time."""

    def collect(self) -> Iterator[Metric]:
        from incident.deadlines.calendar import last_year

        yield GaugeMetricFamily(
            "incident_holiday_data_last_year",
            "The last year of Chinese statutory holidays and make-up working days the calendar library has",
            value=last_year(),
        )


class Counters(Collector):
    """Some of this module's counters (a counter made with ``registry=None`` is collected by hand)."""

    def __init__(self, *counters: EventCounter) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        for counter in self.counters:
            yield from counter.collect()


def api_collectors() -> list[Collector]:
    """What an API process exports of its own, beside the database's numbers."""
    return [
        Counters(HTTP_RESPONSES, FEEDBACK_RUNS, SENT),
        BuildCollector(),
        HolidayDataCollector(),
        PROCESS_COLLECTOR,
        PLATFORM_COLLECTOR,
    ]


def worker_registry() -> CollectorRegistry:
    """What a worker's endpoint serves: its own counters, its build and its process."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in (Counters(FEEDBACK_RUNS, SENT, LOOP_PASSES), BuildCollector()):
        registry.register(collector)
    registry.register(PROCESS_COLLECTOR)
    registry.register(PLATFORM_COLLECTOR)
    return registry


def serve_worker_metrics(host: str, port: int) -> int:
    """Start the worker's endpoint (a daemon thread); the port it listens on (``port`` 0: any free one).

    Raises ``OSError`` when the address cannot be bound (the worker says so in one line and exits 2).
    """
    server, _thread = start_http_server(port, addr=host, registry=worker_registry())
    return int(server.server_port)

"""How the service and the worker log: text by default, one JSON object per line with
``INCIDENT_LOG_FORMAT=json``.

Why JSON: a log shipper (Loki, Elasticsearch, CloudWatch) then indexes ``incident_id``, ``feedback_id``,
``flow_run_id`` and ``request_id`` without a regex per message. Those fields come from the record's
``logging`` extras (``log.info(…, extra={"incident_id": …})``; Prefect's run loggers add
``flow_run_id`` themselves), from the Prefect flow run the line is logged in (its id, and the
``incident_id`` or ``feedback_id`` its parameters name: ``run_ids``) and, for ``request_id``, from the
contextvar the request middleware sets (incident/requestlog.py), so every line logged while answering
a request names it.

The same holds in the processes Prefect's Runner starts for the incident runs: they inherit the
worker's environment (``INCIDENT_LOG_FORMAT`` and ``PREFECT_LOGGING_SETTINGS_PATH``), and the console
handler of that logging configuration is ours (incident/engine/logfilter.py).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import OrderedDict
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from incident import settings

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# The incident or feedback a request is about (from its path), for every line logged while answering it.
request_ids: ContextVar[dict[str, str] | None] = ContextVar("request_ids", default=None)

FIELDS = ("incident_id", "feedback_id", "flow_run_id", "request_id")
# Access-line extras (incident/requestlog.py), kept as fields of their own in JSON.
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(process_tag)s: %(message)s"


def log_format() -> str:
    """``json`` or ``text`` (anything else is text: a typo must not silence the logs)."""
    return settings.get().log_format


# What a flow run's parameters said, by flow run id: a line logged outside the run's context (Prefect's
# engine logs the run's end after leaving it) but naming the run still gets its incident or feedback.
_RUNS: OrderedDict[str, dict[str, str]] = OrderedDict()
_KEPT_RUNS = 1024


def run_ids(record: logging.LogRecord | None = None) -> dict[str, str]:
    """The ids of the Prefect flow run a line is logged in: ``flow_run_id`` and the ``incident_id`` or
    ``feedback_id`` its parameters name. From Prefect's run context (public ``prefect.context``), else
    from the run the record names or the process runs (``PREFECT__FLOW_RUN_ID``, set by the Runner for a
    run's own process). Nothing when Prefect is not loaded: this never imports it."""
    context = sys.modules.get("prefect.context")
    run = context.FlowRunContext.get() if context is not None else None
    if run is not None and run.flow_run is not None:
        ids = {"flow_run_id": str(run.flow_run.id)}
        for name in ("incident_id", "feedback_id"):
            value = (run.parameters or {}).get(name)
            if isinstance(value, str):
                ids[name] = value
        _RUNS[ids["flow_run_id"]] = ids
        if len(_RUNS) > _KEPT_RUNS:
            _RUNS.popitem(last=False)
        return ids
    named = getattr(record, "flow_run_id", None) or os.environ.get("PREFECT__FLOW_RUN_ID")
    if not named:
        return {}
    return _RUNS.get(str(named), {"flow_run_id": str(named)})


class Context(logging.Filter):
    """Adds the request id of the current request (if any), the ids of the flow run it is logged in
    (``run_ids``) and the process tag to every record.

    ``one_run``: the process executes one flow run (a run's own process): a line logged after its
    context is gone (Prefect's engine saying the run is paused, as the process ends) names that run too.
    """

    def __init__(self, process: str, one_run: bool = False) -> None:
        super().__init__()
        self.tag = f"[{process}]" if process != "serve" else ""
        self.process = process
        self.one_run = one_run
        self.run: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        ids = run_ids(record)
        if self.one_run:  # one run in this process: what any line said of it holds for every line
            self.run = ids = {**self.run, **ids}
        for name, value in ((request_ids.get() or {}) | ids).items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        record.process_tag = self.tag
        record.process_name = self.process
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the ids it has, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("process_name", *FIELDS, *ACCESS_FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                data["process" if name == "process_name" else name] = (
                    value if isinstance(value, int | float | bool) else str(value)
                )
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def handler(process: str) -> logging.Handler:
    """A stderr handler in the configured format, with the request context filter."""
    out = logging.StreamHandler(sys.stderr)
    if log_format() == "json":
        out.setFormatter(JsonFormatter())
    else:
        out.setFormatter(logging.Formatter(TEXT_FORMAT))
    out.addFilter(Context(process))
    return out


def configure(process: str = "serve") -> None:
    """The root logger at INFO through one handler in the configured format; ``process`` tags lines.

    With JSON, the loggers Prefect gives console handlers of its own (its root console, ``uvicorn``,
    ``fastapi``) are pointed at ours too, so no plain-text line is interleaved; its API handlers (run
    logs shipped to Prefect) are left alone. The incident runs' own processes, which Prefect's Runner
    starts, log through the console handler of incident/engine/logging.yml, which is ours in the same
    format (``process`` is ``run`` there). The Prefect server the service runs keeps Prefect's format
    in its own log file (``INCIDENT_HOME/prefect-server.log``).
    """
    # Prefect configures logging (dictConfig, replacing the root's handlers) when first used; done
    # now, ours are installed after it and stay.
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()
    root = logging.getLogger()
    ours = handler(process)
    for old in [h for h in root.handlers if _is_console(h)]:
        root.removeHandler(old)
    root.addHandler(ours)
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Prefect API call: thousands in a storm
    if log_format() != "json":
        return
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        consoles = [h for h in logger.handlers if _is_console(h)]
        for old in consoles:
            logger.removeHandler(old)
        if consoles:
            logger.addHandler(ours)


def _is_console(h: logging.Handler) -> bool:
    """A handler writing to the terminal (stdout/stderr), not a file or Prefect's API."""
    stream = getattr(h, "stream", None)
    return isinstance(h, logging.StreamHandler) and stream in (sys.stderr, sys.stdout, sys.__stderr__)

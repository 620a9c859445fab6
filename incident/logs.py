"""How the service and the worker log: text by default, one JSON object per line with
``INCIDENT_LOG_FORMAT=json``.

Why JSON: a log shipper (Loki, Elasticsearch, CloudWatch) then indexes ``incident_id``, ``feedback_id``,
``flow_run_id`` and ``request_id`` without a regex per message. Those fields come from the record's
``logging`` extras (``log.info(…, extra={"incident_id": …})``; Prefect's run loggers add
``flow_run_id`` themselves) and, for ``request_id``, from the contextvar the request middleware sets
(incident/requestlog.py), so every line logged while answering a request names it.
"""

from __future__ import annotations

import json
import logging
import sys
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


class Context(logging.Filter):
    """Adds the request id of the current request (if any) and the process tag to every record."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.tag = f"[{process}]" if process != "serve" else ""
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        for name, value in (request_ids.get() or {}).items():
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
    logs shipped to Prefect) are left alone. The processes Prefect starts itself (incident runs the
    runner executes, the Prefect server the service runs) keep Prefect's own console format.
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

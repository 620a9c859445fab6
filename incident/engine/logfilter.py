"""What our logging configuration of Prefect (incident/engine/logging.yml) adds to Prefect's own.

Suspensions are not errors: Prefect's async engine logs every run that does not end Completed at
ERROR, so each wait for a person ("Finished in state Suspended") looked like a failure in the logs and
in Prefect's UI. The filter lowers exactly those records to INFO (a logging filter may change a record
in place).

The console in our format: the worker points ``PREFECT_LOGGING_SETTINGS_PATH`` at logging.yml, and
the processes Prefect's Runner starts for the incident runs inherit it. Their console handler and its
formatter are made here (``console``, ``formatter``): Prefect's own in text, ``incident.logs``' JSON
lines with ``INCIDENT_LOG_FORMAT=json``, each line with the run's ``flow_run_id`` and ``incident_id``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO, Any

WAITING = ("Finished in state Suspended", "Finished in state Paused")
CONFIG = Path(__file__).with_name("logging.yml")


class SuspensionsAreInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and str(record.msg).startswith(WAITING):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def use_in_prefect() -> None:
    """Before Prefect is imported: its logging (and that of the runs this process starts) uses ours."""
    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", str(CONFIG))


def _json() -> bool:
    from incident.logs import log_format

    return log_format() == "json"


def formatter(**prefect_format: Any) -> logging.Formatter:
    """The console's formatter: Prefect's (``prefect_format``: logging.yml's ``standard``), or JSON."""
    if _json():
        from incident.logs import JsonFormatter

        return JsonFormatter()
    from prefect.logging.formatters import PrefectFormatter

    return PrefectFormatter(**prefect_format)


def console(
    stream: IO[str], styles: dict[str, str] | None = None, level: int = logging.NOTSET
) -> logging.Handler:
    """The console handler: Prefect's (colours, highlighting), or a plain stream for JSON lines (Prefect's
    prints through rich, which would rewrap and restyle them). Either names the run's ids (the ``run``
    process tag: these are the runs' own processes)."""
    from incident.logs import Context

    if _json():
        handler: logging.Handler = logging.StreamHandler(stream)
        handler.setLevel(level)
    else:
        from prefect.logging.handlers import PrefectConsoleHandler

        handler = PrefectConsoleHandler(stream=stream, styles=styles, level=level)
    handler.addFilter(Context("run", one_run=True))
    return handler

"""Suspensions are not errors: Prefect's async engine logs every run that does not end Completed at
ERROR, so each wait for a person ("Finished in state Suspended") looked like a failure in the logs and
in Prefect's UI. The filter lowers exactly those records to INFO (a logging filter may change a record
in place). Installed through Prefect's own logging configuration (incident/engine/logging.yml)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

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

"""Collect what apprise logs while *this thread* talks to it.

Why: apprise reports a failed send as ``False`` and explains it only in its log ("Failed to send
JSON notification: Internal Server Error - error=500"). Channels run concurrently in worker
threads, so apprise's own ``LogCapture`` (one shared buffer) would mix their messages; this
handler files each record under the thread that emitted it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_buffers: dict[int, list[str]] = {}


class _ThreadHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer = _buffers.get(record.thread or 0)
        if buffer is not None:
            buffer.append(record.getMessage())


_handler = _ThreadHandler(level=logging.WARNING)
_installed = False


def _install() -> None:
    global _installed
    with _lock:
        if not _installed:
            logging.getLogger("apprise").addHandler(_handler)
            _installed = True


@contextmanager
def capture() -> Iterator[list[str]]:
    """Yield a list that fills with apprise's warnings and errors from the current thread."""
    _install()
    ident = threading.get_ident()
    messages: list[str] = []
    _buffers[ident] = messages
    try:
        yield messages
    finally:
        _buffers.pop(ident, None)

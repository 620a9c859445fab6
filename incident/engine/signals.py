"""Signals for a process that runs Prefect flows in-process: taken on the main thread, while its work
runs on an event loop in a thread of its own.

Why: while a flow runs on a process's main thread, Prefect's engine puts its own SIGTERM handler in
place (``prefect.utilities.engine.capture_sigterm``); on SIGTERM it raises ``TerminationSignal`` in
whatever code runs at that instant and then sends SIGTERM to the process again. That suits a run in a
process of its own (the runner's way of cancelling it) and not a worker with dozens of feedback runs in
one event loop: a stop during a storm cut those runs short instead of giving them ``FINISH_SECONDS``,
and the worker, seeing the signal twice, took it for an operator's second signal and left without
stopping its runner, its runs' processes killed and their runs left Pending or Running unnamed (seen
with strace: ``kill(<worker>, SIGTERM)`` by the worker itself 50 ms after the service's death signal, in
3 of 4 ``test_crash`` runs). Off the main thread Prefect installs no handler (``signal.signal`` works on
the main thread only), and neither does its ``Runner``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any

STOP = (signal.SIGTERM, signal.SIGINT)


class Signals:
    """What each signal does, changeable from the loop's thread; the handlers run on the main thread."""

    def __init__(self, signals: tuple[signal.Signals, ...]) -> None:
        self.signals = signals
        self._loop: asyncio.AbstractEventLoop | None = None
        self._actions: dict[int, tuple[Callable[[], object], bool]] = {}

    def on(self, sig: signal.Signals, action: Callable[[], object], in_loop: bool = True) -> None:
        """From now on ``sig`` calls ``action``: in the loop (``in_loop``), or at once on the main
        thread, for what must work while the loop is stuck (leaving)."""
        if in_loop and self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._actions[sig] = (action, in_loop)

    def _receive(self, sig: int, _frame: object) -> None:
        action, in_loop = self._actions.get(sig, (None, False))
        if action is None:  # nothing asked for yet (starting up): what the signal does by default
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        elif not in_loop:
            action()
        elif self._loop is not None and not self._loop.is_closed():  # closed: the work is over, exiting
            self._loop.call_soon_threadsafe(action)

    def run(self, work: Callable[[Signals], Coroutine[Any, Any, None]]) -> None:
        """Run ``work(self)`` on an event loop in another thread until it returns; its exception, if
        any, is raised here."""
        failed: list[BaseException] = []

        def loop_thread() -> None:
            try:
                asyncio.run(work(self))
            except BaseException as exc:  # handed to the main thread, which raises it
                failed.append(exc)

        for sig in self.signals:
            signal.signal(sig, self._receive)
        thread = threading.Thread(target=loop_thread, name="loop")
        thread.start()
        while thread.is_alive():
            thread.join(0.5)  # interrupted for each signal, whose handler runs here
        if failed:
            raise failed[0]

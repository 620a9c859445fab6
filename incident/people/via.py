"""Where the act being handled comes from: its channel (cli, api, console, prefect) and the client's address.

Why a context variable and not a parameter: the timeline rows and access events of one request are
written deep in the domain (a step's transition, a removal), and the audit must say for each where it
came from. The edge that receives a request (``incident/api/audittrail.py``, the one middleware every
API and console request passes) opens a ``Via`` for it; ``timeline.row`` and ``audit.record`` read it.
Starlette's worker threads copy the context, so the domain code the routes run in threads sees it too;
code outside a request (the flows, the watcher, a test calling a service) sees None and records no
channel.

The request's ``Via`` is also where the domain says it has recorded the act itself (``audited``): the
middleware then adds no row of its own, so one act is one line of the audit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

CHANNELS = ("cli", "api", "console", "prefect")


@dataclass
class Via:
    channel: str
    address: str | None = None
    who: str | None = None  # set once the request's credential is known
    audited: bool = False  # the act is already in the audit (a timeline row of an act, an access event)
    action: str | None = None  # what a handler says it did, when its route's name says too little
    notes: list[str] = field(default_factory=list)  # what the audit row's detail should add


_current: ContextVar[Via | None] = ContextVar("incident_via", default=None)


def current() -> Via | None:
    return _current.get()


@contextmanager
def opened(via: Via) -> Iterator[Via]:
    """``via`` is the current one inside the block."""
    token = _current.set(via)
    try:
        yield via
    finally:
        _current.reset(token)


def mark_audited() -> None:
    here = _current.get()
    if here is not None:
        here.audited = True


def name(action: str) -> None:
    """The handler names the act (the console's people form adds or removes through one route)."""
    here = _current.get()
    if here is not None:
        here.action = action


def note(text: str) -> None:
    """A detail the audit row of this request should carry (what a removal took with it)."""
    here = _current.get()
    if here is not None:
        here.notes.append(text)

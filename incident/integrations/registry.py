"""One adapter interface: every connected system is an ``Adapter`` found through an entry point.

Why entry points (group ``incident.integrations``): a team adds its own system as a package of its own,
``pip install``-ed beside this one, without forking; the built-in adapters are registered the same way
in pyproject.toml. An entry point names an ``Adapter`` (or a function returning one):

    [project.entry-points."incident.integrations"]
    mysystem = "mypackage.adapter:ADAPTER"

An adapter's ``router`` is mounted in the service (``bearer=True``: behind the API's bearer token; else
the adapter authenticates its caller itself, as a signed webhook must); its ``sweep`` runs in every
pass of the worker's sweep (``INCIDENT_SWEEP_SECONDS``) and returns how much it did.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger("incident.integrations")

GROUP = "incident.integrations"
# The built-ins, also when running from a source tree whose entry points were never installed.
BUILT_IN = {
    "alarms": "incident.integrations.views:ALARMS",
    "baidu": "incident.integrations.views:BAIDU",
    "freshdesk": "incident.integrations.views:FRESHDESK",
    "jd": "incident.integrations.views:JD",
    "knowledge": "incident.knowledge.views:ADAPTER",
    "sf": "incident.integrations.views:SF",
    "zendesk": "incident.integrations.views:ZENDESK",
}


@dataclass(frozen=True)
class Adapter:
    name: str
    router: Any = None  # a fastapi.APIRouter
    sweep: Callable[[datetime | None], Awaitable[int]] | None = None
    bearer: bool = False
    supports: str = ""  # one line for the README and `/api/integrations`: what it does


def _as_adapter(value: object, where: str) -> Adapter:
    if not isinstance(value, Adapter) and callable(value):
        value = value()
    if not isinstance(value, Adapter):
        raise TypeError(f"entry point {where} ({GROUP}) is not an incident.integrations.registry.Adapter")
    return value


def _load(ref: str) -> object:
    module, _, attr = ref.partition(":")
    return getattr(import_module(module), attr)


def adapters() -> list[Adapter]:
    """Every installed adapter, by name; a broken third-party entry point fails loudly at start-up."""
    found: dict[str, Adapter] = {}
    for point in entry_points(group=GROUP):
        adapter = _as_adapter(point.load(), f"{point.name} = {point.value}")
        found[adapter.name] = adapter
    for name, ref in BUILT_IN.items():
        if name not in found:
            found[name] = _as_adapter(_load(ref), ref)
    return [found[name] for name in sorted(found)]


async def sweep_all(now: datetime | None = None) -> dict[str, int]:
    """Each adapter's periodic job; one failing does not keep the others from running."""
    counts: dict[str, int] = {}
    for adapter in adapters():
        if adapter.sweep is None:
            continue
        try:
            counts[adapter.name] = await adapter.sweep(now)
        except Exception:  # a third party's fault must not stop the sweep: logged with its traceback
            log.exception("the %s adapter's sweep failed; the next pass tries again", adapter.name)
    return counts

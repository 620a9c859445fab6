"""HTTP route of the knowledge base (``incident export --to confluence|notion`` posts it), and the
adapter that runs the push in the worker's sweep (``incident.integrations.registry``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from incident.api.schemas import JSON_ROUTE, Out
from incident.integrations.registry import Adapter
from incident.knowledge import service

router = APIRouter()


class PushedPage(Out):
    path: str
    title: str
    status: Literal["sent", "failed"]
    version: int | None = None
    remote_id: str | None = None
    url: str | None = None
    error: str | None = None


class PushOut(Out):
    """What one push did: pages sent, found unchanged, failed, left for the sweep; ``refused``: why the
    target stopped (its credential was refused)."""

    target: Literal["confluence", "notion"]
    pushed: int
    unchanged: int
    failed: int
    remaining: int
    refused: str | None = None
    pages: list[PushedPage]


@router.post("/api/knowledge/push", response_model=PushOut, **JSON_ROUTE)
async def push_knowledge(
    to: Annotated[Literal["confluence", "notion"], Query(description="the knowledge base")],
) -> dict[str, Any]:
    """Push the closed incidents' records and the finished reviews that changed, now (409 if the target
    is not configured)."""
    return asdict(await service.push(to, on_demand=True))


ADAPTER = Adapter(
    "knowledge", router, service.sweep, bearer=True,
    supports="closed incidents' records and finished reviews pushed to Confluence Cloud and Notion",
)  # fmt: skip

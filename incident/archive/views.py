"""HTTP route of the archive export: the Markdown tree as one zip (``incident export`` unpacks it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from incident.api.schemas import content, errors
from incident.archive import service

router = APIRouter()


@router.get("/api/export", response_class=Response, responses=errors(content(binary=("application/zip",))))
async def export(
    format: Annotated[str, Query(pattern="^markdown$")] = "markdown",
    lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh",
) -> Response:
    """Records, post-mortems and monthly reviews as a Markdown tree with ``index.md``, zipped."""
    body, count = await run_in_threadpool(service.zipped, lang)
    return Response(body, media_type="application/zip", headers={"X-Export-Files": str(count)})

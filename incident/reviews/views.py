"""HTTP routes of the reviews: a month's or a quarter's review as Markdown, HTML or PDF bytes.

The period is checked by ``incident.reviews.service`` (422 ``{"error": "month must look like 2026-11…"}``
like every other bad input); the document is rendered on demand, as the post-mortem is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from incident.api.schemas import content, errors
from incident.reviews import render, service

router = APIRouter()
DOC = errors(content(("text/markdown", "text/html"), ("application/pdf",)))
Lang = Annotated[str, Query(pattern="^(zh|en)$")]
Format = Annotated[str, Query(pattern="^(md|html|pdf)$")]


def _answer(kind: str, name: str, lang: str, fmt: str, body: bytes) -> Response:
    return Response(
        body,
        media_type=render.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'inline; filename="review-{name}.{lang}.{fmt}"'},
    )


@router.get("/api/reviews/monthly", response_class=Response, responses=DOC)
async def monthly(
    month: Annotated[str, Query(description="YYYY-MM", max_length=7)],
    lang: Lang = "zh",
    format: Format = "md",
) -> Response:
    """The month's review: figures by category and level, targets, recurrence, changes, charts."""
    body = await run_in_threadpool(service.document, "month", month, lang, format)
    return _answer("month", month, lang, format, body)


@router.get("/api/reviews/quarterly", response_class=Response, responses=DOC)
async def quarterly(
    quarter: Annotated[str, Query(description="YYYY-Qn", max_length=7)],
    lang: Lang = "zh",
    format: Format = "md",
) -> Response:
    """The quarter's review: the monthly figures over three months plus the process findings."""
    body = await run_in_threadpool(service.document, "quarter", quarter, lang, format)
    return _answer("quarter", quarter, lang, format, body)

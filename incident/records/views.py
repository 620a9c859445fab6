"""HTTP routes of the records: the seven archived records, and the 5W1H post-mortem rendered on demand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from incident.api.schemas import RecordsOut, content, errors
from incident.records.service import document, listing, postmortem_pdf

router = APIRouter()


@router.get(
    "/api/incidents/{incident_id}/records",
    response_model=RecordsOut,
    response_model_exclude_unset=True,
    responses=errors(),
)
async def list_records(incident_id: str) -> dict[str, Any]:
    """The seven records of an incident: which are archived, in which languages and formats."""
    return await run_in_threadpool(listing, incident_id)


@router.get(
    "/api/incidents/{incident_id}/records/{kind}",
    response_class=Response,
    responses=errors(content(("text/markdown", "text/html"), ("application/pdf",))),
)
async def get_record(
    incident_id: str,
    kind: str,
    lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh",
    format: Annotated[str, Query(pattern="^(md|html|pdf)$")] = "md",
) -> Response:
    """One archived record as Markdown, HTML or PDF (404 while it is not available yet)."""
    doc = await run_in_threadpool(document, incident_id, kind, lang, format)
    return Response(
        doc.body,
        media_type=doc.media_type,
        headers={
            "X-Record-Updated": doc.updated_at.isoformat(),
            "Content-Disposition": f'inline; filename="{incident_id}-{kind}.{lang}.{format}"',
        },
    )


@router.get(
    "/api/incidents/{incident_id}/postmortem",
    response_class=Response,
    responses=errors(content(("text/markdown", "text/html"), ("application/pdf",))),
)
async def postmortem(
    incident_id: str,
    format: Annotated[str, Query(pattern="^(md|html|pdf)$")] = "md",
    lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh",
) -> Response:
    """The 5W1H post-mortem as it stands now (a draft until the incident closes)."""
    from incident.records.postmortem import render_postmortem

    if format == "pdf":
        pdf, due = await run_in_threadpool(postmortem_pdf, incident_id, lang)
        headers = {"X-Postmortem-Due": due.isoformat() if due else ""}
        return Response(pdf, media_type="application/pdf", headers=headers)
    text, due = await run_in_threadpool(render_postmortem, incident_id, lang, format)
    media = "text/html" if format == "html" else "text/markdown"
    return PlainTextResponse(
        text,
        media_type=f"{media}; charset=utf-8",
        headers={"X-Postmortem-Due": due.isoformat() if due else ""},
    )

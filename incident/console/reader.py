"""The post-mortem reader and the seven records: view in the console (zh/en), download as Markdown.

Why embed the ``<main>`` of the rendered page instead of re-rendering: ``incident.records.documents``
is the one place that turns facts into records, escaping every value before its Markdown becomes HTML;
the console
only frames that HTML with its navigation and a language switch, so what is read here is exactly what is
archived and sent.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from incident.console import auth
from incident.console.render import lang as console_lang
from incident.console.render import page, secure, t
from incident.errors import NotFound
from incident.records.documents import LANGS, RECORD_KINDS, IncidentNotFound, build_dossier, render, title
from models import session_scope
from playbooks import vocabulary

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)
_MAIN = re.compile(r"<main>(.*)</main>", re.S)


def document_body(html: str) -> Markup:
    """The record's own content; its values were escaped by incident.records.documents before conversion."""
    found = _MAIN.search(html)
    return Markup(found[1]) if found else Markup("<pre>{}</pre>").format(html)


def _said(message: str) -> str:
    """An English message of the vocabulary's ``error`` phrases, in the console's language."""
    return vocabulary.translate("error", message, console_lang())


def _no_kind(kind: str) -> str:
    return _said(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")


def _lang(value: str | None) -> str:
    return value if value in LANGS else "zh"


def _record(incident_id: str, kind: str, lang: str, fmt: str) -> str:
    with session_scope() as s:
        dossier = build_dossier(s, incident_id)
    return render(kind, dossier, lang=lang, fmt=fmt)


def _missing(request: Request, message: str) -> HTMLResponse:
    return page(request, "error.html.j2", status=404, heading=t("not_found"), message=message)


@router.get("/incidents/{incident_id}/postmortem", response_class=HTMLResponse)
async def postmortem(request: Request, incident_id: str, lang: str = "zh") -> HTMLResponse:
    from incident.records.postmortem import render_postmortem

    lang = _lang(lang)
    try:
        html, due = await run_in_threadpool(render_postmortem, incident_id, lang, "html")
    except NotFound as exc:
        return _missing(request, exc.words(console_lang()))
    return page(
        request,
        "document.html.j2",
        incident_id=incident_id,
        kind="postmortem",
        doc_lang=lang,
        heading=title("postmortem", lang),
        body=document_body(html),
        due=due,
        switch_base=f"/incidents/{quote(incident_id)}/postmortem",
    )


@router.get("/incidents/{incident_id}/records/{kind}", response_class=HTMLResponse)
async def record(request: Request, incident_id: str, kind: str, lang: str = "zh") -> HTMLResponse:
    lang = _lang(lang)
    if kind not in RECORD_KINDS:
        return _missing(request, _no_kind(kind))
    try:
        html = await run_in_threadpool(_record, incident_id, kind, lang, "html")
    except IncidentNotFound as exc:
        return _missing(request, _said(str(exc)))
    return page(
        request,
        "document.html.j2",
        incident_id=incident_id,
        kind=kind,
        doc_lang=lang,
        heading=title(kind, lang),
        body=document_body(html),
        due=None,
        switch_base=f"/incidents/{quote(incident_id)}/records/{kind}",
    )


@router.get("/incidents/{incident_id}/records/{kind}/download", response_model=None)
async def download(request: Request, incident_id: str, kind: str, lang: str = "zh") -> Response:
    lang = _lang(lang)
    if kind not in RECORD_KINDS:
        return _missing(request, _no_kind(kind))
    try:
        text = await run_in_threadpool(_record, incident_id, kind, lang, "md")
    except IncidentNotFound as exc:
        return _missing(request, _said(str(exc)))
    name = f"{incident_id}-{kind}.{lang}.md"
    return secure(
        Response(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{quote(name)}"'},
        )
    )

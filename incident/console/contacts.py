"""The console's reveal of an incident's customer contacts: the same audited act as
``POST /api/incidents/{id}/reveal`` (``incident.incidents.reveal``), recorded with channel ``console``.

Why a form post and a page that is never cached: the reveal is an act (CSRF-checked, one audit row) and
the page holds what is masked everywhere else, so the browser must not keep it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from incident.console import auth
from incident.console.render import lang, page, t
from incident.errors import ActionError
from incident.incidents import reveal

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)


@router.post("/incidents/{incident_id}/reveal", response_model=None)
async def reveal_page(request: Request, incident_id: str) -> Response:
    form = await auth.read_form(request)
    if not auth.csrf_ok(request, form):
        return page(request, "error.html.j2", status=403, heading=t("refused"), message=t("form_expired"))
    try:
        data = await run_in_threadpool(
            reveal.reveal, incident_id, request.state.actor, "console", auth.address(request)
        )
    except ActionError as exc:
        message = exc.words(lang())
        return page(request, "error.html.j2", status=exc.status, heading=t("refused"), message=message)
    response = page(request, "contacts.html.j2", incident_id=incident_id, customers=data["customers"])
    response.headers["Cache-Control"] = "no-store"
    return response

"""The console's audit page: ``incident audit [ID]`` in the browser, newest first.

Why only for the service token and the leads: the audit names who logged in from where and who saw
which customer's contact; it is for whoever answers for the team, not for everyone. The one rule is
``audit.may_read``, the API's and the CLI's too.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from incident.console import auth
from incident.console.render import lang, page, t
from incident.people import audit
from playbooks import vocabulary

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)
SHOWN = 500


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, incident: str | None = None) -> HTMLResponse:
    actor = request.state.actor
    if not audit.may_read(actor):
        message = vocabulary.translate("error", audit.refusal(actor), lang())
        return page(request, "error.html.j2", status=403, heading=t("refused"), message=message)
    events = await run_in_threadpool(audit.events, (incident or "").strip() or None, SHOWN)
    return page(request, "audit.html.j2", rows=list(reversed(events)), incident=incident)

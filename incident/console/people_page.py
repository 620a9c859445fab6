"""The console's directory page: everyone with their roles, and (for the service token) add and remove.

Why the same service calls as ``/api/people``: one set of checks (known roles, unique names, apprise URLs
that load) whichever way a person is added; the new person's token is shown once on the answer page and
stored only hashed, as from the CLI. Managing needs the service token's session, as the API does: the
directory is where authority comes from, so nobody may grant themselves a role from a browser either.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

import playbooks
from incident.api.errors import said_invalid
from incident.console import auth
from incident.console.render import lang, page, secure, set_flash, t
from incident.errors import ActionError
from incident.people import service as people
from incident.people import via
from incident.people.service import PersonIn

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)


def _admin(request: Request) -> bool:
    actor = request.state.actor
    return not actor.person and actor.scope is None


async def _page(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    rows = await run_in_threadpool(people.list_people)
    return page(
        request, "people.html.j2", status=status, rows=rows, admin=_admin(request), roles=playbooks.roles(),
        error=context.pop("error", None), made=context.pop("made", None), **context,
    )  # fmt: skip


@router.get("/people", response_class=HTMLResponse)
async def people_page(request: Request) -> HTMLResponse:
    return await _page(request)


@router.post("/people", response_model=None)
async def people_form(request: Request) -> Response:
    """Add (``name``, ``roles``, ``notify``, ``phone``, ``email``) or remove (``remove``) a person."""
    form = await auth.read_form(request)
    if not auth.csrf_ok(request, form):
        return await _page(request, status=403, error=t("form_expired"))
    if not _admin(request):
        return await _page(request, status=403, error=t("people_admin_only"))
    try:
        if form.get("remove"):
            via.name("remove_person")  # the audit's names, as the API's routes
            done = await run_in_threadpool(people.remove, form["remove"])
            response = RedirectResponse("/people", status_code=303)
            set_flash(response, "ok", t("person_removed", name=done["name"]))
            return secure(response)
        body = PersonIn(
            name=form.get("name", ""),
            roles=form.get("roles", "").replace("，", " ").replace(",", " ").split(),
            notify=form.get("notify", "").split(),
            phone=form.get("phone") or None,
            email=form.get("email") or None,
        )
        via.name("add_person")
        made = await run_in_threadpool(people.add, body)
    except ValidationError as exc:
        return await _page(request, status=422, error=said_invalid(list(exc.errors()), lang()))
    except ActionError as exc:
        return await _page(request, status=exc.status, error=exc.words(lang()))
    return await _page(request, status=201, made=made)

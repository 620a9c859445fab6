"""Closing the loop in the console: the post-mortem meeting, the lead's sign-off, improvement actions.

Why the services' own functions with the session's actor: the console then checks exactly what
``incident meeting``, ``incident signoff`` and ``incident actions`` check (who may record a meeting, only
the level's lead signs, only the owner or a reviewer closes an action, never without evidence), and a
refusal is on the timeline the same way. As every console form: the CSRF field first, post-redirect-get
with a flash on success, the incident page (or the actions page) again with the refusal and its status
otherwise, nothing stored but what the service itself records. The form's lines become the service's
model: one participant, finding or decision a line; an action a line ``kind:owner:due:text`` as the CLI's
``--action``; the meeting's time as the browser's ``datetime-local`` read in INCIDENT_TZ.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from incident.actions import service as improvement
from incident.actions.service import KINDS, ActionIn, ActionsIn, CloseIn
from incident.api.errors import said_invalid
from incident.console import auth
from incident.console.pages import incident_page
from incident.console.render import lang, page, secure, set_flash, t, zone
from incident.errors import ActionError, BadInput
from incident.meetings import service as meetings
from incident.meetings.service import MeetingIn, SignoffIn
from incident.people import service as people

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)
SEPARATORS = re.compile(r"[\r\n、,，;；]+")
FILTERS = ("open", "overdue", "done")


def lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def names(text: str | None) -> list[str]:
    return [name.strip() for name in SEPARATORS.split(text or "") if name.strip()]


def action_lines(text: str | None) -> list[ActionIn]:
    """``kind:owner:due:text`` a line (the text may hold more colons), as the CLI's ``--action``."""
    out = []
    for n, line in enumerate(lines(text), start=1):
        parts = [p.strip() for p in line.split(":", 3)]
        if len(parts) != 4 or not all(parts) or parts[0] not in KINDS:
            raise BadInput(t("action_line", n=n, line=line[:80], kinds=" / ".join(KINDS)))
        kind, owner, due, what = parts
        out.append(ActionIn(kind=kind, owner=owner, due=due, text=what))  # type: ignore[arg-type]
    return out


def held_at(value: str | None) -> datetime:
    """The browser's ``2026-11-25T10:00`` in INCIDENT_TZ (an offset given is kept)."""
    try:
        at = datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise BadInput(t("at_invalid")) from None
    return at if at.tzinfo else at.replace(tzinfo=zone())


def _by(form: dict[str, str]) -> str | None:
    return form.get("by", "").strip()[:200] or None


def meeting_body(form: dict[str, str]) -> MeetingIn:
    return MeetingIn(
        at=held_at(form.get("at")),
        participants=names(form.get("participants")),
        findings=lines(form.get("findings")),
        went_well=lines(form.get("went_well")),
        went_badly=lines(form.get("went_badly")),
        decisions=lines(form.get("decisions")),
        actions=action_lines(form.get("actions")),
        by=_by(form),
    )


def add_body(form: dict[str, str]) -> ActionsIn:
    item = ActionIn(
        kind=form.get("kind", ""),  # type: ignore[arg-type]
        owner=form.get("owner", "").strip(),
        due=form.get("due", "").strip(),
        text=form.get("text", "").strip(),
    )
    return ActionsIn(actions=[item], by=_by(form))


def _back(incident_id: str, message: str) -> Response:
    response = RedirectResponse(f"/incidents/{quote(incident_id)}", status_code=303)
    set_flash(response, "ok", message)
    return secure(response)


async def _archive(incident_id: str) -> None:
    """The stored post-mortem becomes the final one, as after ``POST /api/…/meeting`` (meetings.views)."""
    from flows.notices import keep_records

    await run_in_threadpool(keep_records, incident_id)


Act = Callable[[dict[str, str], people.Actor], Awaitable[Response]]


async def _act(request: Request, incident_id: str, form_id: str, act: Act) -> Response:
    """Check the form's CSRF field, run ``act(form, actor)``; a refusal re-renders the incident page."""
    form = await auth.read_form(request)
    if not auth.csrf_ok(request, form):
        return await incident_page(request, incident_id, status=403, error=t("form_expired"), form=form_id)
    try:
        return await act(form, request.state.actor)
    except ValidationError as exc:
        error = said_invalid(list(exc.errors()), lang())
        return await incident_page(request, incident_id, status=422, error=error, form=form_id)
    except ActionError as exc:
        return await incident_page(
            request, incident_id, status=exc.status, error=exc.words(lang()), form=form_id
        )


@router.post("/incidents/{incident_id}/meeting", response_model=None)
async def meeting(request: Request, incident_id: str) -> Response:
    async def act(form: dict[str, str], actor: people.Actor) -> Response:
        result = await run_in_threadpool(meetings.record, incident_id, meeting_body(form), actor)
        await _archive(incident_id)
        return _back(incident_id, t("meeting_recorded", actions=len(result["actions"])))

    return await _act(request, incident_id, "meeting", act)


@router.post("/incidents/{incident_id}/signoff", response_model=None)
async def signoff(request: Request, incident_id: str) -> Response:
    async def act(form: dict[str, str], actor: people.Actor) -> Response:
        body = SignoffIn(note=form.get("note", "").strip() or None)
        result = await run_in_threadpool(meetings.signoff, incident_id, body, actor)
        await _archive(incident_id)
        return _back(incident_id, t("signed_off", by=result["signed_by"]))

    return await _act(request, incident_id, "signoff", act)


@router.post("/incidents/{incident_id}/actions", response_model=None)
async def add_action(request: Request, incident_id: str) -> Response:
    async def act(form: dict[str, str], actor: people.Actor) -> Response:
        result = await run_in_threadpool(improvement.add, incident_id, add_body(form), actor)
        return _back(incident_id, t("action_added", ids="、".join(a["id"] for a in result["actions"])))

    return await _act(request, incident_id, "add-action", act)


# --- the actions page -------------------------------------------------------------------------


def chosen(params: Any) -> dict[str, str]:
    """The page's filters; a value it does not know is ignored (a hand-edited URL shows everything)."""
    status = params.get("status", "")
    return {"status": status if status in FILTERS else "", "owner": (params.get("owner") or "").strip()[:200]}


def matches(row: dict[str, Any], filters: dict[str, str]) -> bool:
    status = filters["status"]
    if status == "overdue" and not row["overdue"]:
        return False
    if status in ("open", "done") and row["status"] != status:
        return False
    return not filters["owner"] or row["owner"] == filters["owner"]


async def actions_page(
    request: Request, filters: dict[str, str], *, status: int = 200, error: str | None = None
) -> HTMLResponse:
    rows = await run_in_threadpool(improvement.listing, None)
    return page(
        request,
        "actions.html.j2",
        status=status,
        rows=[r for r in rows if matches(r, filters)],
        owners=sorted({r["owner"] for r in rows}),
        filters=filters,
        choices=FILTERS,
        query=urlencode({k: v for k, v in filters.items() if v}),
        person=request.state.actor.person,
        error=error,
    )


@router.get("/actions", response_class=HTMLResponse)
async def actions_list(request: Request) -> HTMLResponse:
    return await actions_page(request, chosen(request.query_params))


@router.post("/actions/{action_id}/close", response_model=None)
async def close_action(request: Request, action_id: str) -> Response:
    """Close an action as done, with the evidence; back to the page with the filters it was on."""
    form = await auth.read_form(request)
    filters = chosen({k: v[-1] for k, v in parse_qs(form.get("back", "")).items()})
    if not auth.csrf_ok(request, form):
        return await actions_page(request, filters, status=403, error=t("form_expired"))
    try:
        body = CloseIn(evidence=form.get("evidence", "").strip())
        done = await run_in_threadpool(improvement.close, action_id, body, request.state.actor)
    except ValidationError as exc:
        return await actions_page(
            request, filters, status=422, error=said_invalid(list(exc.errors()), lang())
        )
    except ActionError as exc:
        return await actions_page(request, filters, status=exc.status, error=exc.words(lang()))
    query = urlencode({k: v for k, v in filters.items() if v})
    response = RedirectResponse("/actions" + (f"?{query}" if query else ""), status_code=303)
    set_flash(response, "ok", t("action_closed", id=done["id"]))
    return secure(response)

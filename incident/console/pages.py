"""Board, closed list, incident page and its action forms.

Why post-redirect-get with the action's own checks: a successful form redirects back to the incident page
with a flash message (reloading never repeats an approval); a refused one (wrong role, wrong order, bad
input) re-renders the page with the refusal and the action's HTTP status (403, 409, 422), storing
nothing but what the action itself records (an ``approval_refused`` event, like the CLI).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

import playbooks
from incident.actions.service import KINDS
from incident.console import auth, board
from incident.console.forms import to_body
from incident.console.inbox import explain
from incident.console.prefect_runs import FRESH, board_points, ui_run_url, waiting_point
from incident.console.render import lang, page, secure, set_flash, t, zone
from incident.deadlines import service as deadlines
from incident.errors import ActionError, BadInput, NotFound
from incident.feedback.inputs import MAX_TEXT
from incident.incidents import service as views
from incident.incidents.service import Filters
from incident.people import service as people
from incident.records.documents import RECORD_KINDS, available, build_dossier, i18n, title
from incident.response.authority import perform
from incident.response.steps import BY_ACTION
from models import session_scope
from playbooks import vocabulary

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)
BY_COOKIE = "incident_by"
FORM_FOR_POINT = {
    "contact": "contact",
    "measure": "measure",
    "cause": "cause",
    "proposal": "propose",
    "approval": "approve",
    "confirmation": "confirm",
    "survey": "survey",
}


def board_filters(params: Any) -> Filters:
    """The board's GET form; a value it does not know is ignored (a hand-edited URL shows everything)."""
    level = params.get("level", "")
    category = params.get("category", "")
    status = params.get("status", "")
    return Filters(
        open_only=True,
        level=int(level) if level in ("1", "2", "3") else None,
        category=category if category in tuple(playbooks.load_all()) else None,
        status=status if status in vocabulary.codes("status") else None,
        owner=(params.get("owner") or "").strip()[:200] or None,
        overdue=True if params.get("overdue") else None,
        q=(params.get("q") or "").strip()[:200] or None,
    )


@router.get("/", response_class=HTMLResponse)
async def board_page(request: Request) -> HTMLResponse:
    chosen = board_filters(request.query_params)
    every = await run_in_threadpool(board.open_rows)
    filtered = chosen != Filters(open_only=True)
    rows = await run_in_threadpool(board.open_rows, chosen) if filtered else every
    waiting, age = await board_points([r["flow_run_id"] for r in rows if r["flow_run_id"]])
    return page(
        request,
        "board.html.j2",
        rows=rows,
        counts=board.counts(every),  # the header counts every open incident, the table what matches
        filters=chosen,
        filtered=filtered,
        owners=await run_in_threadpool(board.owners),
        categories=tuple(playbooks.load_all()),
        statuses=[c for c in vocabulary.codes("status") if c != "closed"],
        waiting=waiting,
        waiting_age=round(age),
        stale=age >= FRESH,
    )


@router.get("/closed", response_class=HTMLResponse)
async def closed_page(request: Request) -> HTMLResponse:
    rows = await run_in_threadpool(board.closed_rows)
    return page(request, "closed.html.j2", rows=rows, limit=board.CLOSED_LIMIT)


def records_of(incident_id: str) -> list[dict[str, str]]:
    """The records this incident's facts allow so far, with their zh/en titles."""
    with session_scope() as s:
        dossier = build_dossier(s, incident_id)
    return [
        {"kind": k, "zh": title(k, "zh"), "en": title(k, "en")} for k in RECORD_KINDS if available(k, dossier)
    ]


def menus(category: str) -> dict[str, Any]:
    """The forms' choices in the page's language (the codes stay the values posted)."""
    book, words = playbooks.get(category), lang()
    return {
        "measures": [(code, opt.label(words)) for code, opt in book.measures.items()],
        "solutions": [(code, opt.label(words), opt.legal_review) for code, opt in book.solutions.items()],
        "solution_names": {code: opt.label(words) for code, opt in book.solutions.items()},
        "stages": [(code, i18n.label("stage", code, words)) for code in vocabulary.codes("stage")],
        "roles": [(code, i18n.label("role", code, words)) for code in playbooks.roles()],
        "results": [(code, i18n.label("result", code, words)) for code in vocabulary.codes("result")],
    }


def not_found(request: Request, message: str) -> HTMLResponse:
    return page(request, "error.html.j2", status=404, heading=t("not_found"), message=message)


async def incident_page(
    request: Request, incident_id: str, *, status: int = 200, error: str | None = None, form: str = ""
) -> HTMLResponse:
    try:
        data = await run_in_threadpool(views.show, incident_id)
    except NotFound as exc:
        return not_found(request, exc.words(lang()))
    waiting = await waiting_point(data["flow_run_id"])
    return page(
        request,
        "incident.html.j2",
        status=status,
        inc=data,
        waiting=waiting,
        open_form=form or FORM_FOR_POINT.get((waiting or "").partition("-")[0], ""),
        error=error,
        records=await run_in_threadpool(records_of, incident_id),
        prefect_url=ui_run_url(data["flow_run_id"]),
        by=unquote(request.cookies.get(BY_COOKIE, "")),
        **menus(data["category"]),
        **await closing_context(request),
    )


async def closing_context(request: Request) -> dict[str, Any]:
    """What the meeting, sign-off and action forms need (incident_closing.html.j2, console/closing.py)."""
    actor = getattr(request.state, "actor", None)
    names = [p["name"] for p in await run_in_threadpool(people.list_people)]
    return {
        "directory": names,  # participants and owners are looked up there
        "person": bool(actor and actor.person),  # a person is recorded as themselves: no "by" field
        "kinds": KINDS,
        "held_default": f"{datetime.now(zone()):%Y-%m-%dT%H:%M}",
    }


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def show_incident(request: Request, incident_id: str) -> HTMLResponse:
    return await incident_page(request, incident_id)


DELIVERY_NOTE = {"delivered": "delivered", "stored": None, "pending": "pending_delivery"}  # console words


def delivery_note(delivery: str) -> str:
    key = DELIVERY_NOTE[delivery]
    return "" if key is None else ("" if lang() == "zh" else " ") + t(key)


@router.post("/incidents/{incident_id}/ack", response_model=None)
async def ack(request: Request, incident_id: str) -> Response:
    """Take the incident's escalation on, as the logged-in person (``incident ack``'s form)."""
    form = await auth.read_form(request)
    if not auth.csrf_ok(request, form):
        return await incident_page(request, incident_id, status=403, error=t("form_expired"))
    note = form.get("note", "").strip()[:MAX_TEXT] or None
    try:
        actor = getattr(request.state, "actor", None)
        if actor is None:
            raise BadInput("no credential")  # never reached behind the login; a guard, not a path
        result = await run_in_threadpool(deadlines.acknowledge, incident_id, actor, note)
    except ActionError as exc:
        error = exc.words(lang())
        return await incident_page(request, incident_id, status=exc.status, error=error, form="ack")
    response = RedirectResponse(f"/incidents/{quote(incident_id)}", status_code=303)
    set_flash(response, "ok", t("acknowledged", name=result["acknowledged_by"]))
    return secure(response)


@router.post("/incidents/{incident_id}/{name}", response_model=None)
async def act(request: Request, incident_id: str, name: str) -> Response:
    from flows.waiting import try_deliver

    if name == "assign":
        return await assign(request, incident_id)
    if name not in BY_ACTION:
        return not_found(request, t("no_action_named", name=name))
    form = await auth.read_form(request)
    if not auth.csrf_ok(request, form):
        return await incident_page(request, incident_id, status=403, error=t("form_expired"))
    try:
        body = to_body(name, form, await auth.read_lists(request))
    except ValidationError as exc:
        return await incident_page(request, incident_id, status=422, error=explain(exc), form=name)
    step = BY_ACTION[name]
    try:
        actor = getattr(request.state, "actor", None)
        result = await run_in_threadpool(perform, step, incident_id, body, actor)
    except ActionError as exc:
        error = exc.words(lang())
        return await incident_page(request, incident_id, status=exc.status, error=error, form=name)
    delivery = await try_deliver(incident_id)
    response = RedirectResponse(f"/incidents/{quote(incident_id)}", status_code=303)
    set_flash(response, "ok", step.summary(result, body, lang()) + delivery_note(delivery))
    if form.get("by", "").strip():  # the console remembers who is at the keyboard
        response.set_cookie(
            BY_COOKIE, quote(form["by"].strip()), max_age=30 * 86400, httponly=True, samesite="lax"
        )
    return secure(response)


async def assign(request: Request, incident_id: str) -> Response:
    """The owner form: the same ``assign`` as ``incident assign`` and ``POST /api/incidents/{id}/assign``."""
    from incident.api.credentials import actor_name

    form = await auth.read_form(request)
    owner = form.get("owner", "").strip()[:200]
    if not auth.csrf_ok(request, form) or not owner:
        message = t("form_expired") if owner else f"{t('owner')}: {t('missing')}"
        return await incident_page(request, incident_id, status=422, error=message)
    try:
        await run_in_threadpool(views.assign, incident_id, owner, actor_name(request, form.get("by") or None))
    except NotFound as exc:
        return not_found(request, exc.words(lang()))
    response = RedirectResponse(f"/incidents/{quote(incident_id)}", status_code=303)
    set_flash(response, "ok", t("assigned", owner=owner))
    return secure(response)

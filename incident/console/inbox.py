"""The inbox page (answer, close, promote) and the report form.

Why the report form calls ``feedback.views.accept`` with ``FeedbackIn``: the same model validates it as
``POST /api/feedback`` (a wrong field is refused and nothing is stored) and the same function records it
(graded, correlated, a level-1 run started at once), so a report typed here is one typed anywhere.
Errors are said in the page's language: the field's word and the kind of mistake come from the
vocabulary, the field's code stays beside them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

import playbooks
from incident.api.credentials import actor_name
from incident.console import auth
from incident.console.render import page, secure, set_flash, t
from incident.errors import ActionError
from incident.feedback.inputs import FeedbackIn
from incident.inbox import service as inbox
from playbooks import vocabulary

router = APIRouter(dependencies=[Depends(auth.require_login)], include_in_schema=False)
TEXT_FIELDS = ("summary", "customer", "contact", "order", "product_model", "batch", "serial", "service",
               "region", "cause", "impact")  # fmt: skip
CHOICES = ("kind", "category", "channel", "mood", "outage")
BOXES = ("media", "injury", "property_loss", "brand_risk", "big_loss", "compensation_demand", "consent")
MISTAKES = {
    *(("missing", "missing"), ("string_too_long", "too_long"), ("literal_error", "not_allowed")),
    *(("int_parsing", "not_a_number"), ("greater_than_equal", "too_small"), ("string_too_short", "missing")),
}
MISTAKE = dict(MISTAKES)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_view(request: Request, status: str = "open") -> HTMLResponse:
    return await inbox_page(request, status)


async def inbox_page(
    request: Request, status: str = "open", error: str | None = None, code: int = 200
) -> HTMLResponse:
    """The inbox, filtered by ``status``; a refused form comes back here with its words and ``code``."""
    wanted = status if status in inbox.STATUSES else None
    rows = await run_in_threadpool(inbox.list_inbox, wanted)
    categories = tuple(playbooks.load_all())
    context = {"rows": rows, "shown_status": wanted, "statuses": inbox.STATUSES, "categories": categories}
    return page(request, "inbox.html.j2", status=code, error=error, **context)


@router.post("/inbox/{feedback_id}/{action}", response_model=None)
async def inbox_act(request: Request, feedback_id: str, action: str) -> Response:
    from incident.inbox.views import promote_item

    form = await auth.read_form(request)
    if not auth.csrf_ok(request, form):
        return await inbox_page(request, error=t("form_expired"), code=403)
    by = actor_name(request, form.get("by", "").strip() or None)
    try:
        if action == "answer" and form.get("text", "").strip():
            done = await run_in_threadpool(
                inbox.answer, feedback_id, form["text"].strip()[:10_000], by, "close" in form
            )
        elif action == "close":
            done = await run_in_threadpool(inbox.close, feedback_id, by)
        elif action == "promote":
            done = await promote_item(feedback_id, form.get("category") or None, by)
        else:
            return await inbox_page(request, error=f"{t('answer')}: {t('missing')}", code=422)
    except ActionError as exc:
        return await inbox_page(request, error=exc.words(_lang()), code=exc.status)
    response = RedirectResponse("/inbox", status_code=303)
    words = vocabulary.label("inbox_status", done["status"], _lang())
    set_flash(
        response,
        "ok",
        f"{feedback_id}: {words}" + (f" → {done['incident_id']}" if done.get("incident_id") else ""),
    )
    return secure(response)


def _lang() -> str:
    from incident.console.render import lang

    return lang()


def form_body(form: dict[str, str]) -> FeedbackIn:
    """The posted form as the API's body: blanks left out, boxes true when ticked, numbers as text."""
    data: dict[str, Any] = {k: form[k].strip() for k in (*TEXT_FIELDS, *CHOICES) if form.get(k, "").strip()}
    if form.get("customers", "").strip():
        data["customers"] = form["customers"].strip()
    data.update({box: True for box in BOXES if box in form})
    data.setdefault("summary", "")
    return FeedbackIn.model_validate(data, context={"form": True})


def explain(exc: ValidationError) -> str:
    """The first mistake in the page's language: '请更正：内容（summary）：必填'."""
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    field = loc[0] if loc else ""
    if not field and "needs a category" in str(first.get("msg")):  # FeedbackIn's rule for complaints
        field, first = "category", {**first, "type": "missing"}
    name = vocabulary.label("field", field, _lang()) if field else ""
    where = f"{name}（{field}）" if field and name != field else field or "—"
    mistake = MISTAKE.get(str(first.get("type")))
    message = t(mistake) if mistake else str(first.get("msg"))
    return t("field_error", field=where, message=message)


@router.get("/report", response_class=HTMLResponse)
async def report_form(request: Request) -> HTMLResponse:
    return _report_page(request, {}, None)


def _report_page(
    request: Request, form: dict[str, str], error: str | None, status: int = 200
) -> HTMLResponse:
    return page(request, "report.html.j2", status=status, form=form, error=error,
                categories=tuple(playbooks.load_all()), kinds=vocabulary.codes("feedback_kind"),
                channels=FeedbackIn.model_fields["channel"].annotation.__args__, boxes=BOXES)  # type: ignore[union-attr]  # fmt: skip


@router.post("/report", response_model=None)
async def report(request: Request) -> Response:
    from incident.feedback.views import accept as record

    form = await auth.read_form(request)
    if not auth.csrf_ok(request, form):
        return _report_page(request, form, t("form_expired"), 403)
    try:
        body = form_body(form)
    except ValidationError as exc:
        return _report_page(request, form, explain(exc), 422)
    accepted = await record(body)
    message = t("reported", feedback=accepted["feedback_id"])
    if accepted.get("incident_id"):
        message += t("opened_incident", incident=accepted["incident_id"])
        target = f"/incidents/{quote(accepted['incident_id'])}"
    else:
        target = "/inbox"
    response = RedirectResponse(target, status_code=303)
    set_flash(response, "ok", message)
    return secure(response)

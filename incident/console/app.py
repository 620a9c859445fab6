"""Mount the console on the API app: login/logout, the page routers, static CSS, the login redirect."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from incident.console import (
    audit_page,
    auth,
    charts,
    closing,
    contacts,
    inbox,
    live,
    pages,
    people_page,
    reader,
)
from incident.console.language import LanguageMiddleware
from incident.console.render import page, secure, t
from incident.people import audit, logins, sessions

STATIC = Path(__file__).parent / "static"


async def _access(who: str, action: str, outcome: str, request: Request, detail: str | None = None) -> None:
    where = auth.address(request)
    await run_in_threadpool(
        audit.record_access, who, action, outcome, channel="console", address=where, detail=detail
    )


async def login_form(request: Request, next: str = "/") -> Response:
    if await auth.who(request) is not None:
        return secure(RedirectResponse(auth.safe_next(next), status_code=303))
    return page(request, "login.html.j2", next=auth.safe_next(next), error=None)


async def login(request: Request) -> Response:
    form = await auth.read_form(request)
    target = auth.safe_next(form.get("next"))
    where = auth.address(request)
    token = form.get("token", "").strip()
    key = logins.key(where, token)
    wait = await run_in_threadpool(logins.retry_after, key)
    if wait:
        await _access("unknown", "login", "refused", request, "too many failed logins")
        error = t("too_many_logins", wait=wait)
        response = page(request, "login.html.j2", status=429, next=target, error=error)
        response.headers["Retry-After"] = str(wait)
        return response
    # A session secret typed into the form is not a credential to open another session with.
    actor = None if not token or sessions.is_session(token) else await auth.who(request, token)
    if actor is None or actor.scope is not None:  # a system's token may report, not use the console
        await run_in_threadpool(logins.failed, key)
        why = "wrong token" if token else "no token"
        if actor is not None:
            why = f"{actor.name}: a system's token cannot open a console session"
        await _access(actor.name if actor else "unknown", "login", "refused", request, why)
        error = (t("wrong_token") if actor is None else t("login_system_token")) if token else None
        return page(request, "login.html.j2", status=401, next=target, error=error or t("enter_token"))
    secret = await run_in_threadpool(sessions.open_session, actor, token, where)
    await run_in_threadpool(logins.succeeded, key)
    await _access(actor.name, "login", "ok", request)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        auth.COOKIE,
        secret,
        max_age=auth.COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return secure(response)


async def logout(request: Request) -> Response:
    """Revokes the session on the server (a copy of the cookie stops working too), then drops the cookie."""
    form = await auth.read_form(request)
    actor = await auth.who(request)
    if actor is not None and not auth.csrf_ok(request, form):
        return page(request, "error.html.j2", status=403, heading=t("refused"), message=t("form_expired"))
    secret = request.cookies.get(auth.COOKIE, "")
    if actor is not None and sessions.is_session(secret) and await run_in_threadpool(sessions.revoke, secret):
        await _access(actor.name, "logout", "ok", request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return secure(response)


async def _to_login(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, auth.LoginRequired)
    return secure(RedirectResponse(auth.login_url(exc.next_path), status_code=303))


def install(app: FastAPI, token: str) -> None:
    app.state.console_token = token
    app.add_middleware(LanguageMiddleware)  # ?lang= (remembered), the cookie, Accept-Language, INCIDENT_LANG
    app.add_exception_handler(auth.LoginRequired, _to_login)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/login", login_form, methods=["GET"], include_in_schema=False)
    app.add_api_route("/login", login, methods=["POST"], include_in_schema=False)
    app.add_api_route("/logout", logout, methods=["POST"], include_in_schema=False)
    # closing before pages: its /incidents/{id}/meeting|signoff|actions are not pages' step forms
    routers = (contacts.router, audit_page.router, closing.router, pages.router, reader.router, charts.router,
               live.router)  # fmt: skip
    for router in (*routers, inbox.router, people_page.router):
        app.include_router(router)

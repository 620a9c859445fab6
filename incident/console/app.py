"""Mount the console on the API app: login/logout, the page routers, static CSS, the login redirect."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from incident.console import auth, charts, inbox, live, pages, reader
from incident.console.render import page, secure

STATIC = Path(__file__).parent / "static"


async def login_form(request: Request, next: str = "/") -> Response:
    if auth.logged_in(request):
        return secure(RedirectResponse(auth.safe_next(next), status_code=303))
    return page(request, "login.html.j2", next=auth.safe_next(next), error=None)


async def login(request: Request) -> Response:
    form = await auth.read_form(request)
    target = auth.safe_next(form.get("next"))
    token = form.get("token", "").strip()
    if not token or await auth.who(request, token) is None:
        error = "Wrong token." if token else "Enter the API token."
        return page(request, "login.html.j2", status=401, next=target, error=error)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        auth.COOKIE,
        token,
        max_age=auth.COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return secure(response)


async def logout(request: Request) -> Response:
    form = await auth.read_form(request)
    if auth.logged_in(request) and not auth.csrf_ok(request, form):
        return page(request, "error.html.j2", status=403, heading="Refused", message="The form has expired.")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return secure(response)


async def _to_login(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, auth.LoginRequired)
    return secure(RedirectResponse(auth.login_url(exc.next_path), status_code=303))


def install(app: FastAPI, token: str) -> None:
    app.state.console_token = token
    app.add_exception_handler(auth.LoginRequired, _to_login)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/login", login_form, methods=["GET"], include_in_schema=False)
    app.add_api_route("/login", login, methods=["POST"], include_in_schema=False)
    app.add_api_route("/logout", logout, methods=["POST"], include_in_schema=False)
    for router in (pages.router, reader.router, charts.router, live.router, inbox.router):
        app.include_router(router)

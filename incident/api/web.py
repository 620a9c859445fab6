"""The ASGI app served by ``incident serve``: the HTTP API and the web console in one app.

Why one app: the console and the API share the token (the console's login cookie is the one the API
accepts), the process, the database engine and the flow dispatcher, so a console approval resumes the
same Prefect run the CLI would.

Every answer, the console's too, passes the API's middlewares (``create_app``): request ids, the
access log and ``incident_http_responses_total`` (``requestlog.py``).
"""

from __future__ import annotations

from fastapi import FastAPI

from incident import console
from incident.api.app import create_app


def create_web_app(token: str) -> FastAPI:
    app = create_app(token)
    console.install(app, token)
    return app

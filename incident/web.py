"""The ASGI app served by ``incident serve``: the HTTP API and the web console in one app.

Why one app: the console and the API share the token (the console's login cookie is the one the API
accepts), the process, the database engine and the flow dispatcher, so a console approval resumes the
same Prefect run the CLI would.
"""

from __future__ import annotations

from fastapi import FastAPI

from incident import console
from incident.api import create_app


def create_web_app(token: str) -> FastAPI:
    app = create_app(token)
    console.install(app, token)
    return app

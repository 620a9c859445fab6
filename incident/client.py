"""How commands reach the service: ``service.json`` in INCIDENT_HOME, started in the background if absent.

Kept free of Prefect imports so a CLI command starts in a fraction of a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx

from incident import settings
from incident.server import healthy, read_json, service_file, token_file


class ServiceError(Exception):
    """An answer from the service (4xx: the user's to fix), or none (status 0: unreachable).

    ``message`` is one line either way, so the CLI prints it as its one-line error.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _running() -> dict[str, Any] | None:
    info = read_json(service_file())
    if info and healthy(info["url"]):
        return info
    return None


def _start() -> dict[str, Any]:
    log_path = settings.home() / "serve.log"
    print(
        f"incident: no service for {settings.home()}; starting one in the background (log: {log_path})",
        file=sys.stderr,
    )
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "incident.cli", "serve", "--port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + settings.get().start_timeout
    while time.monotonic() < deadline:
        info = _running()
        if info:
            print(f"incident: service ready at {info['url']} (pid {info['pid']})", file=sys.stderr)
            return info
        if proc.poll() is not None and not _running():
            time.sleep(1)  # another starter may hold the lock and be about to write service.json
            if _running():
                continue
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
            raise ServiceError(f"the service did not start: {tail[0]}", 1)
        time.sleep(0.3)
    raise ServiceError(
        f"the service did not start within {settings.get().start_timeout:.0f} s; see {log_path}", 1
    )


def credential(info: dict[str, Any]) -> str:
    """What the CLI presents: ``INCIDENT_TOKEN`` (a person: actions are recorded as them) when set, else
    the service token (``INCIDENT_API_TOKEN``, or the one the service made and keeps in the home)."""
    chosen = settings.get().token or settings.get().api_token or info.get("token")
    if chosen:
        return chosen
    kept = token_file()
    return kept.read_text().strip() if kept.exists() else ""


class Client:
    """One CLI invocation's connection to the service.

    Every POST carries an ``Idempotency-Key`` (a uuid4) made once per invocation and request, so a
    retry of the same request (by this invocation) is answered as the first was and never acts twice,
    while two invocations of the same command are two acts.
    """

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        url = settings.get().url
        info: dict[str, Any] = {"url": url} if url else (_running() or _start())
        token = credential(info)
        self.http = httpx.Client(
            base_url=info["url"], headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if method.upper() == "POST":
            request_id = f"{path} {json.dumps(kwargs.get('json'), sort_keys=True, default=str)}"
            key = self._keys.setdefault(request_id, str(uuid.uuid4()))
            kwargs["headers"] = {"Idempotency-Key": key, **kwargs.get("headers", {})}
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # refused, timed out, reset: one line, not a traceback
            raise ServiceError(f"cannot reach the service at {self.http.base_url}: {exc}", 0) from exc
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text
            raise ServiceError(
                str(message).splitlines()[0] if message else response.reason_phrase, response.status_code
            )
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.call(method, path, **kwargs).json()

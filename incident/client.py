"""How commands reach the service: ``service.json`` in INCIDENT_HOME, started in the background if absent.

Why the standard library (``urllib``) and not httpx: a command must answer within 3× a bare Python
start (issue 12), and importing httpx alone costs about that much. One invocation makes one or two
requests to a local service, so a connection pool buys nothing here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from incident import environ
from incident.terminal import said

AGENT = "incident-cli/1"  # the channel the audit names: cli (incident/api/audittrail.py)


class ServiceError(Exception):
    """An answer from the service (4xx: the user's to fix), or none (status 0: unreachable).

    ``message`` is one line either way, so the CLI prints it as its one-line error.
    """

    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


class Response:
    """What a command reads of an answer: status, headers, bytes, and the JSON in them."""

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def healthy(url: str, path: str = "/healthz", timeout: float = 2.0) -> bool:
    """Does ``url`` answer 200 at ``path`` (our service's ``/healthz``, Prefect's ``/health``)?"""
    try:
        with urlopen(url.rstrip("/") + path, timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (OSError, ValueError):  # URLError, refused, timed out, reset, a malformed URL
        return False


def _running() -> dict[str, Any] | None:
    info = read_json(environ.service_file())
    if info and healthy(info["url"]):
        return info
    return None


def _start() -> dict[str, Any]:
    log_path = environ.home() / "serve.log"
    print(said("cli", "starting", home=environ.home(), log=log_path), file=sys.stderr)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "incident.cli", "serve", "--port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + environ.start_timeout()
    while time.monotonic() < deadline:
        info = _running()
        if info:
            print(said("cli", "ready", url=info["url"], pid=info["pid"]), file=sys.stderr)
            return info
        if proc.poll() is not None and not _running():
            time.sleep(1)  # another starter may hold the lock and be about to write service.json
            if _running():
                continue
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
            reason = tail[0].removeprefix("错误：").removeprefix("error: ")  # the service's own one line
            raise ServiceError(said("cli", "not_started", reason=reason), 1, "not_started")
        time.sleep(0.3)
    waited = f"{environ.start_timeout():.0f}"
    raise ServiceError(said("cli", "not_started_in", seconds=waited, log=log_path), 1, "not_started")


def credential(info: dict[str, Any]) -> str:
    """What the CLI presents: ``INCIDENT_TOKEN`` (a person: actions are recorded as them) when set, else
    the service token (``INCIDENT_API_TOKEN``, or the one the service made and keeps in the home)."""
    chosen = environ.token() or environ.api_token() or info.get("token")
    if chosen:
        return str(chosen)
    kept = environ.token_file()
    return kept.read_text().strip() if kept.exists() else ""


def _message(status: int, reason: str, body: bytes) -> tuple[str, str | None]:
    """The service's one-line ``error`` (in the language the CLI asked for) and its ``code``."""
    code = None
    try:
        answer = json.loads(body)
        message, code = answer.get("error") or body.decode(errors="replace"), answer.get("code")
    except (ValueError, AttributeError):
        message = body.decode(errors="replace")
    text = str(message).splitlines()[0] if str(message).strip() else reason or f"HTTP {status}"
    return text, code


class Client:
    """One CLI invocation's connection to the service.

    Every POST carries an ``Idempotency-Key`` (a uuid4) made once per invocation and request, so a
    retry of the same request (by this invocation) is answered as the first was and never acts twice,
    while two invocations of the same command are two acts.
    """

    def __init__(self, timeout: float = 60) -> None:
        self._keys: dict[str, str] = {}
        self.configured = environ.url()
        # The service file is trusted until a request finds nobody there (then the service is started):
        # a health check before every command would double its round trips.
        info = {"url": self.configured} if self.configured else read_json(environ.service_file())
        self._use(info or _start())
        self.timeout = timeout

    def _use(self, info: dict[str, Any]) -> None:
        self.base_url = str(info["url"]).rstrip("/")
        self.token = credential(info)

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        method = method.upper()
        # The User-Agent tells the audit the act came from the command line (incident/api/audittrail.py);
        # Accept-Language: the service says its refusals and a timeline's words in the language read here.
        sent = {"Authorization": f"Bearer {self.token}", "User-Agent": AGENT,
                "Accept-Language": environ.lang(), **(headers or {})}  # fmt: skip
        body = None
        if json is not None:
            body = _dumps(json).encode()
            sent["Content-Type"] = "application/json"
        if method == "POST":
            key = self._keys.setdefault(f"{path} {_dumps(json)}", str(uuid.uuid4()))
            sent.setdefault("Idempotency-Key", key)
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        suffix = path + (f"?{urlencode(query, doseq=True)}" if query else "")
        try:
            return self._send(suffix, body, sent, method)
        except ServiceError as exc:
            if exc.status or self.configured or _running():
                raise
            self._use(_start())  # the service file named a service that is gone
            if "Authorization" not in (headers or {}):  # a caller's own credential stays theirs
                sent["Authorization"] = f"Bearer {self.token}"
            return self._send(suffix, body, sent, method)

    def _send(self, suffix: str, body: bytes | None, headers: dict[str, str], method: str) -> Response:
        request = Request(self.base_url + suffix, data=body, headers=headers, method=method)
        try:
            with urlopen(request, timeout=self.timeout) as answer:
                return Response(answer.status, answer.headers, answer.read())
        except HTTPError as exc:
            message, code = _message(exc.code, exc.reason, exc.read())
            raise ServiceError(message, exc.code, code) from None
        except (URLError, OSError) as exc:  # refused, timed out, reset: one line, not a traceback
            reason = getattr(exc, "reason", exc)
            message = said("cli", "unreachable", url=self.base_url, reason=reason)
            raise ServiceError(message, 0, "unreachable") from None

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.call(method, path, **kwargs).json()
        return answer


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value

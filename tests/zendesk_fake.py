"""A local Zendesk Ticket API for the tests: the endpoint our write-back calls, as Zendesk documents it.

Followed: developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
(``PUT /api/v2/tickets/{ticket_id}.json``, body ``{"ticket": {"comment": {"body", "public"}}}``,
answer ``200 {"ticket": {...}, "audit": {...}}``) and .../introduction/security-and-auth/
(API token: basic auth with ``{email}/token`` as the user name and the token as the password; a wrong
one answers 401). ``fail_next`` makes the next answers 503, as Zendesk answers when it is unavailable.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EMAIL, TOKEN = "agent@example.com", "zd-api-token"
TICKET_PATH = re.compile(r"^/api/v2/tickets/(\d+)\.json$")


@dataclass
class FakeZendesk:
    url: str = ""
    puts: list[dict[str, Any]] = field(default_factory=list)  # accepted updates: ticket id, body
    refused: list[str] = field(default_factory=list)  # why requests were refused
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notes(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p["body"]["ticket"]["comment"] for p in self.puts if p["ticket_id"] == ticket_id]


def _handler(fake: FakeZendesk) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:  # noqa: N802 (http.server's name)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            found = TICKET_PATH.match(self.path)
            with fake.lock:
                if self.headers.get("Authorization") != expected:
                    fake.refused.append("auth")
                    return self._answer(401, {"error": "Couldn't authenticate you"})
                if found is None:
                    fake.refused.append(self.path)
                    return self._answer(404, {"error": "InvalidEndpoint"})
                if fake.fail_next > 0:
                    fake.fail_next -= 1
                    return self._answer(503, {"error": "Service Unavailable"})
                body = json.loads(raw)
                comment = body["ticket"]["comment"]
                assert isinstance(comment["body"], str) and comment["public"] is False
                fake.puts.append({"ticket_id": found.group(1), "body": body})
            self._answer(200, {"ticket": {"id": int(found.group(1))}, "audit": {"events": [comment]}})

    return Handler


@contextmanager
def fake_zendesk() -> Iterator[FakeZendesk]:
    fake = FakeZendesk()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()

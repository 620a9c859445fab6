"""A local Freshdesk API v2 for the tests: the endpoints our write-back calls, as Freshdesk documents them.

Followed (developers.freshdesk.com/api/): "Authentication" (basic auth, the API key as the user name
and ``X`` as the password; otherwise ``401 {"code": "invalid_credentials", …}``), "Add Note"
(``POST /api/v2/tickets/{id}/notes`` with ``body`` (HTML, required) and ``private`` → ``201`` the note),
"Update a Ticket" (``PUT /api/v2/tickets/{id}`` with ``status`` 2-5 → ``200`` the ticket; another
status ``400 {"description": "Validation failed", "errors": […]}``) and "Rate limit" (``429`` with
``Retry-After``; ``fail_next`` answers so, as Freshdesk does when a plan's per-minute limit is hit).
"""

from __future__ import annotations

import base64
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from tests.fake_http import Answer, Request, running

API_KEY = "fd-api-key"
NOTES = re.compile(r"^/api/v2/tickets/(\d+)/notes$")
TICKET = re.compile(r"^/api/v2/tickets/(\d+)$")


@dataclass
class FakeFreshdesk:
    url: str = ""
    notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ticket id → its notes
    statuses: dict[str, int] = field(default_factory=dict)  # ticket id → the status set last
    refused: list[str] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    fail_next: int = 0

    def answer(self, request: Request) -> Answer:
        expected = "Basic " + base64.b64encode(f"{API_KEY}:X".encode()).decode()
        if request.headers.get("authorization") != expected:
            self.refused.append("auth")
            return 401, {
                "code": "invalid_credentials",
                "message": "You have to be logged in to perform this action.",
            }
        if self.fail_next > 0:
            self.fail_next -= 1
            return 429, {"message": "You have exceeded the limit of requests per minute"}
        if request.method == "POST" and (found := NOTES.match(request.path)):
            body = request.json()
            if not isinstance(body.get("body"), str) or not isinstance(body.get("private", True), bool):
                return 400, {"description": "Validation failed", "errors": [{"field": "body"}]}
            note = {"id": len(self.seen), "ticket_id": int(found.group(1)), "body": body["body"],
                    "private": body.get("private", True)}  # fmt: skip
            self.notes.setdefault(found.group(1), []).append(note)
            return 201, note
        if request.method == "PUT" and (found := TICKET.match(request.path)):
            status = request.json().get("status")
            if status not in (2, 3, 4, 5):
                return 400, {"description": "Validation failed", "errors": [{"field": "status"}]}
            self.statuses[found.group(1)] = status
            return 200, {"id": int(found.group(1)), "status": status}
        self.refused.append(f"{request.method} {request.path}")
        return 404, {"code": "invalid_path"}


def fake_freshdesk() -> AbstractContextManager[FakeFreshdesk]:
    return running(FakeFreshdesk())

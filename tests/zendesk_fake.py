"""A local Zendesk API for the tests: the endpoints our adapter calls, as Zendesk documents them.

Followed: developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
(``PUT /api/v2/tickets/{ticket_id}.json``, body ``{"ticket": {"comment": {"body", "public"}}}``,
answer ``200 {"ticket": {...}, "audit": {...}}``), .../ticketing/users/users/#show-user
(``GET /api/v2/users/{user_id}.json`` → ``{"user": {"id", "name", "email", "phone", …}}``, an unknown
user ``404 {"error": "RecordNotFound"}``) and .../introduction/security-and-auth/ (API token: basic
auth with ``{email}/token`` as the user name and the token as the password; a wrong one answers 401).
``fail_next`` makes the next ticket updates 503, as Zendesk answers when it is unavailable.
"""

from __future__ import annotations

import base64
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from tests.fake_http import Answer, Request, running

EMAIL, TOKEN = "agent@example.com", "zd-api-token"
TICKET_PATH = re.compile(r"^/api/v2/tickets/(\d+)\.json$")
USER_PATH = re.compile(r"^/api/v2/users/(\d+)\.json$")


@dataclass
class FakeZendesk:
    url: str = ""
    puts: list[dict[str, Any]] = field(default_factory=list)  # accepted updates: ticket id, body
    refused: list[str] = field(default_factory=list)  # why requests were refused
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id → the user
    seen: list[Request] = field(default_factory=list)
    fail_next: int = 0

    def notes(self, ticket_id: str) -> list[dict[str, Any]]:
        return [p["body"]["ticket"]["comment"] for p in list(self.puts) if p["ticket_id"] == ticket_id]

    def answer(self, request: Request) -> Answer:
        expected = "Basic " + base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
        if request.headers.get("authorization") != expected:
            self.refused.append("auth")
            return 401, {"error": "Couldn't authenticate you"}
        if request.method == "GET" and (user := USER_PATH.match(request.path)):
            found = self.users.get(user.group(1))
            return (200, {"user": found}) if found else (404, {"error": "RecordNotFound"})
        ticket = TICKET_PATH.match(request.path)
        if request.method != "PUT" or ticket is None:
            self.refused.append(request.path)
            return 404, {"error": "InvalidEndpoint"}
        if self.fail_next > 0:
            self.fail_next -= 1
            return 503, {"error": "Service Unavailable"}
        body = request.json()
        comment = body["ticket"]["comment"]
        assert isinstance(comment["body"], str) and comment["public"] is False
        self.puts.append({"ticket_id": ticket.group(1), "body": body})
        return 200, {"ticket": {"id": int(ticket.group(1))}, "audit": {"events": [comment]}}


def fake_zendesk() -> AbstractContextManager[FakeZendesk]:
    return running(FakeZendesk())

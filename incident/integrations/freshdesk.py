"""Freshdesk: an automation rule's webhook in (a ticket becomes a feedback), private notes out (API v2).

Documentation followed:
- "Using Webhooks in automation rules" (support.freshdesk.com/support/solutions/articles/132589):
  the *Trigger webhook* action of a rule on ticket creation or update sends a request to a URL with
  the method, custom headers, encoding (JSON) and content the admin chooses; *Advanced* content is a
  JSON body with placeholders (``{{ticket.id}}``, ``{{ticket.subject}}``, ``{{ticket.description_text}}``,
  ``{{ticket.tags}}``, ``{{ticket.status}}``, ``{{ticket.source}}``, ``{{ticket.requester.name}}``,
  ``{{ticket.requester.email}}``, ``{{ticket.requester.phone}}``, ``{{ticket.cf_<field>}}``). Freshdesk
  does not sign webhooks, so the rule sends a shared secret in a custom header (``X-Incident-Secret``)
  that is compared in constant time with ``INCIDENT_FRESHDESK_SECRET``.
- API v2 (developers.freshdesk.com/api/): authentication is basic auth with the API key as the user
  name and ``X`` as the password; "Add Note": ``POST /api/v2/tickets/{id}/notes`` with ``{"body"
  (HTML), "private": true}`` → 201; "Update a Ticket": ``PUT /api/v2/tickets/{id}`` with ``{"status"}``
  (2 Open, 3 Pending, 4 Resolved, 5 Closed) → 200; ticket ``source`` codes 1 Email, 2 Portal, 3 Phone,
  7 Chat, 9 Feedback Widget, 10 Outbound Email; a 429 carries ``Retry-After``.
"""

from __future__ import annotations

import hmac
from html import escape
from typing import Any

import httpx

from incident import settings
from incident.errors import BadInput
from incident.feedback.inputs import FeedbackIn
from incident.integrations import service as links
from incident.integrations import tickets, writeback

SYSTEM = "freshdesk"
NOTICE = "freshdesk_note"
MAP = "INCIDENT_FRESHDESK_MAP"
SECRET_HEADER = "X-Incident-Secret"
RESOLVED = 4  # the ticket's status once its incident is closed (the customer may still reopen it)
# {{ticket.source}} as Freshdesk renders it, or the API's source code → our channels.
SOURCES = {
    "email": "email", "outbound_email": "email", "1": "email", "10": "email",
    "portal": "web", "feedback_widget": "web", "chat": "web", "forum": "web", "2": "web", "7": "web",
    "9": "web", "phone": "phone", "3": "phone", "mobihelp": "app", "8": "app",
    "twitter": "social", "facebook": "social", "whatsapp": "social", "instagram": "social",
    "line": "social", "wechat": "social", "5": "social", "6": "social",
}  # fmt: skip


class Unsigned(Exception):
    """Not the team's automation rule: the shared secret is missing or wrong (401)."""


def verify(headers: Any) -> None:
    secret = settings.get().freshdesk_secret
    if not secret:
        raise Unsigned("INCIDENT_FRESHDESK_SECRET is not set: Freshdesk webhooks are refused")
    given = headers.get(SECRET_HEADER)
    if not given:
        raise Unsigned(f"missing {SECRET_HEADER}")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unsigned(f"wrong {SECRET_HEADER}")


def ticket_of(payload: object) -> tuple[str, dict[str, Any], str]:
    """(ticket id, the ticket, its status) from the rule's body (README "Freshdesk")."""
    if not isinstance(payload, dict) or not isinstance(payload.get("ticket"), dict):
        raise BadInput('body: {"event": …, "ticket": {…}} as README "Freshdesk" shows')
    ticket = payload["ticket"]
    ticket_id = str(ticket.get("id") or "").strip()
    if not ticket_id:
        raise BadInput("ticket.id: missing")
    if not ticket_id.isdigit():
        raise BadInput(f"ticket.id: a Freshdesk ticket number, not {ticket_id[:40]!r}")
    return ticket_id, ticket, str(ticket.get("status") or "updated").lower()


def is_update(payload: object) -> bool:
    return isinstance(payload, dict) and str(payload.get("event", "created")) != "created"


def channel_of(source: object) -> str:
    key = "_".join(str(source or "").strip().lower().split())
    return SOURCES.get(key, "web")


def _fields(raw: object) -> dict[str, str]:
    """``{"cf_<name>": value}``: the custom fields the rule's body names (empty ones are not set)."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v).strip() for k, v in raw.items() if v is not None and str(v).strip()}


def _text(ticket: dict[str, Any]) -> tuple[object, object]:
    return ticket.get("subject"), ticket.get("description")


def feedback_of(ticket_id: str, ticket: dict[str, Any]) -> FeedbackIn:
    """The feedback a ticket seen for the first time becomes (422 when it selects no category)."""
    person = ticket.get("requester") if isinstance(ticket.get("requester"), dict) else {}
    extra = tickets.mapping(settings.get().freshdesk_map, MAP)
    category = tickets.category_of(tickets.tags_of(ticket.get("tags")), _fields(ticket.get("custom_fields")),
                                   extra, MAP)  # fmt: skip
    return tickets.feedback(
        links.order_ref(SYSTEM, ticket_id),
        category=category,
        summary=tickets.text_of(_text(ticket), f"Freshdesk #{ticket_id}"),
        channel=channel_of(ticket.get("source")),
        customer=person.get("name"),
        contact=person.get("email") or person.get("phone"),
    )


def _url(path: str) -> str:
    return f"{(settings.get().freshdesk_url or '').rstrip('/')}{path}"


async def send(pending: links.Pending, text: str) -> writeback.Attempt:
    """The note (HTML, so the text is escaped); once the incident is closed the ticket is Resolved first.

    The status goes first because it is idempotent: a retry after a failed note sets it again harmlessly.
    """
    cfg = settings.get()
    note = _url(f"/api/v2/tickets/{pending.external_id}/notes")
    if not cfg.freshdesk_url or not cfg.freshdesk_api_key:
        return writeback.Attempt(False, 0, "INCIDENT_FRESHDESK_URL/API_KEY not set: no write-back", note)
    attempts = 0
    async with writeback.client(httpx.BasicAuth(cfg.freshdesk_api_key, "X")) as http:
        if pending.status == "closed":
            done = await writeback.call(http, "PUT", _url(f"/api/v2/tickets/{pending.external_id}"),
                                        {"status": RESOLVED})  # fmt: skip
            if not done.ok:
                return done
            attempts = done.attempts
        body = {"body": escape(text).replace("\n", "<br>"), "private": True}
        told = await writeback.call(http, "POST", note, body)
    return writeback.Attempt(told.ok, attempts + told.attempts, told.error, told.url)


TOLD = writeback.TicketSystem(SYSTEM, NOTICE, send, lambda: bool(settings.get().freshdesk_url))
write_back, sweep = TOLD.write_back, TOLD.sweep

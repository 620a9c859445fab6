"""Zendesk: its webhooks in (a ticket becomes a feedback), internal notes out (the Ticket API).

Documentation followed:
- Verifying webhook authenticity (developer.zendesk.com/documentation/webhooks/verifying/):
  ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret, TIMESTAMP + BODY)), the timestamp in
  ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601, e.g. ``2024-04-17T17:18:10Z``).
- Webhook event types, ticket events (developer.zendesk.com/api-reference/webhooks/event-types/
  ticket-events): the envelope ``{"type": "zen:event-type:ticket.created", "subject":
  "zen:ticket:35436", "detail": {"id", "subject", "description", "requester_id", "status", "tags",
  "via": {"channel"}, …}, "event": {…}}``.
- Via types reference (developer.zendesk.com/documentation/ticketing/reference-guides/via-types):
  ``via.channel`` is a via type (``mail``, ``web_form``, ``web_service``, ``voicemail``,
  ``phone_call_inbound`` …) or its via id (``4`` is ``mail``); both are read.
- Users API, show user: ``GET /api/v2/users/{user_id}.json`` → ``{"user": {"id", "name", "email",
  "phone", …}}`` (an event names only ``requester_id``: the requester is looked up).
- Tickets API, update ticket: ``PUT /api/v2/tickets/{id}.json`` with ``{"ticket": {"comment":
  {"body", "public": false}}}`` (a private comment is an internal note); API-token basic auth is
  ``{email}/token:{token}``.
A trigger webhook has no fixed body: teams paste the one in README "Zendesk" (``{"ticket": {…}}``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from incident import settings
from incident.errors import BadInput
from incident.feedback.inputs import FeedbackIn
from incident.integrations import service as links
from incident.integrations import tickets, writeback
from models import utcnow

log = logging.getLogger("incident.integrations.zendesk")

SYSTEM = "zendesk"
NOTICE = "zendesk_note"  # the deliveries' kind (incident/integrations/__init__.py)
MAP = "INCIDENT_ZENDESK_MAP"
SIGNATURE = "X-Zendesk-Webhook-Signature"
TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
EVENT_PREFIX = "zen:event-type:ticket."
# Via types (Zendesk's names) → our channels. Not listed: the types of Zendesk's own housekeeping
# (merge, linked_problem, user_change …), which are internal, and unknown ones, read by their words.
CHANNELS = {
    "mail": "email", "email": "email", "web_form": "web", "web": "web", "web_widget": "web",
    "dropbox": "web", "chat": "web", "help_center": "web", "topic": "web", "native_messaging": "web",
    "web_service": "internal", "api": "internal", "rule": "internal", "batch": "internal",
    "closed_ticket": "internal", "ticket_sharing": "internal", "side_conversation": "internal",
    "voice": "phone", "phone": "phone", "voicemail": "phone", "phone_call_inbound": "phone",
    "phone_call_outbound": "phone", "api_voicemail": "phone", "api_phone_call_inbound": "phone",
    "api_phone_call_outbound": "phone", "text_message": "phone", "sms": "phone",
    "iphone": "app", "mobile": "app", "mobile_sdk": "app",
    "twitter": "social", "twitter_dm": "social", "twitter_favorite": "social",
    "facebook_post": "social", "facebook_message": "social", "facebook": "social",
    "instagram_dm": "social", "whatsapp": "social", "wechat": "social", "line": "social",
    "any_channel": "social",
}  # fmt: skip
VIA_IDS = {
    0: "web_form", 4: "mail", 5: "web_service", 8: "rule", 15: "iphone", 17: "dropbox", 20: "batch",
    23: "twitter_favorite", 26: "twitter_dm", 29: "chat", 30: "twitter", 33: "voicemail",
    34: "phone_call_inbound", 35: "phone_call_outbound", 38: "facebook_post", 41: "facebook_message",
    44: "any_channel", 45: "mobile_sdk", 46: "help_center", 56: "mobile", 57: "text_message",
}  # fmt: skip
WORDS = (  # an unlisted via type (or a trigger's rendering, "Phone call (inbound)") by its words
    ({"mail", "email"}, "email"), ({"phone", "voice", "voicemail", "call", "sms", "text"}, "phone"),
    ({"twitter", "facebook", "instagram", "whatsapp", "wechat", "line", "social"}, "social"),
    ({"mobile", "iphone", "android", "app"}, "app"),
)  # fmt: skip


class Unsigned(Exception):
    """The request is not Zendesk's: missing, wrong or stale signature (401)."""


def _when(raw: str) -> datetime:
    """Zendesk sends ISO 8601; epoch seconds are accepted too (some proxies rewrite it)."""
    if raw.isdigit():
        return datetime.fromtimestamp(int(raw), UTC)
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(headers: Any, body: bytes, now: datetime | None = None) -> None:
    """Raise Unsigned unless the body is signed with INCIDENT_ZENDESK_SECRET within the replay window."""
    secret = settings.get().zendesk_secret
    signature, timestamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
    if not secret:
        raise Unsigned("INCIDENT_ZENDESK_SECRET is not set: Zendesk webhooks are refused")
    if not signature or not timestamp:
        raise Unsigned(f"missing {SIGNATURE} or {TIMESTAMP}")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise Unsigned(f"wrong {SIGNATURE}")
    try:
        at = _when(timestamp)
    except ValueError:
        raise Unsigned(f"{TIMESTAMP} is not a time") from None
    window = timedelta(seconds=settings.get().zendesk_replay_seconds)
    if abs((now or utcnow()) - at) > window:
        raise Unsigned(f"stale {TIMESTAMP} (outside {window.total_seconds():.0f} s): a replay is refused")


def category_of(tags: list[str], fields: object) -> str:
    """A tag equal to a category id wins; then INCIDENT_ZENDESK_MAP's tags, then its custom fields."""
    extra = tickets.mapping(settings.get().zendesk_map, MAP)
    return tickets.category_of(tags, _fields(fields), extra, MAP)


def _fields(raw: object) -> dict[str, str]:
    """Custom fields as events and the trigger body give them: ``[{"id", "value"}]`` (or ``{id: value}``)."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items() if v is not None}
    if not isinstance(raw, list):
        return {}
    pairs = (f for f in raw if isinstance(f, dict) and isinstance(f.get("id"), str | int))
    return {str(f["id"]): str(f.get("value")) for f in pairs if f.get("value") is not None}


def channel_of(via: object) -> str:
    """Our channel for ``via.channel``: a via type, a via id, or a trigger's rendering of either."""
    raw = via.get("channel") if isinstance(via, dict) else via
    if isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit()):
        raw = VIA_IDS.get(int(raw), "")
    key = "_".join(str(raw or "").strip().lower().replace("(", " ").replace(")", " ").split())
    if key in CHANNELS:
        return CHANNELS[key]
    words = set(key.split("_"))
    return next((ours for names, ours in WORDS if names & words), "web")


def is_update(payload: object) -> bool:
    """Not the creation: an event other than ticket.created, or the trigger body's ``"event": "updated"``."""
    if not isinstance(payload, dict):
        return False
    if "type" in payload:
        return payload["type"] != EVENT_PREFIX + "created"
    return str(payload.get("event", "created")) != "created"


def ticket_of(payload: object) -> tuple[str, dict[str, Any], dict[str, Any], str]:
    """(ticket id, the ticket, its requester, its status) from an event envelope or a trigger body.

    An event names only ``requester_id``: the requester is ``{"id": …}`` until ``requester`` looks it up.
    """
    if not isinstance(payload, dict):
        raise BadInput("body: a JSON object (a Zendesk event or the trigger body in README)")
    if "type" in payload and "detail" in payload:  # event subscription
        kind = str(payload["type"])
        if not kind.startswith(EVENT_PREFIX):
            raise BadInput(f"type: only ticket events ({EVENT_PREFIX}*) are taken, not {kind}")
        ticket = payload["detail"]
        requester = {"id": str(ticket.get("requester_id") or "")} if isinstance(ticket, dict) else {}
    elif isinstance(payload.get("ticket"), dict):  # trigger webhook (README)
        ticket = payload["ticket"]
        requester = ticket.get("requester") if isinstance(ticket.get("requester"), dict) else {}
    else:
        raise BadInput('body: neither a Zendesk ticket event nor {"ticket": {...}}')
    if not isinstance(ticket, dict) or not str(ticket.get("id") or "").strip():
        raise BadInput("ticket.id: missing")
    ticket_id = str(ticket["id"]).strip()
    if not ticket_id.isdigit():
        raise BadInput(f"ticket.id: a Zendesk ticket number, not {ticket_id[:40]!r}")
    status = str(ticket.get("status") or "updated").lower()
    return ticket_id, ticket, requester, status


def _auth() -> httpx.Auth | None:
    cfg = settings.get()
    if not cfg.zendesk_url or not cfg.zendesk_email or not cfg.zendesk_token:
        return None
    return httpx.BasicAuth(f"{cfg.zendesk_email}/token", cfg.zendesk_token)


def _url(path: str) -> str:
    return f"{(settings.get().zendesk_url or '').rstrip('/')}{path}"


async def requester(found: dict[str, Any]) -> dict[str, Any]:
    """The requester with name, e-mail and phone: an event's ``requester_id`` looked up in the Users API.

    Without the API configured, or when Zendesk does not answer, the customer is ``zendesk-user-<id>``
    (still one customer per requester) and the lookup's failure is logged: the ticket is recorded anyway.
    """
    user_id = str(found.get("id") or "")
    if not user_id.isdigit() or found.get("name"):
        return found
    fallback = {"name": f"zendesk-user-{user_id}"}
    auth = _auth()
    if auth is None:
        return fallback
    async with writeback.client(auth) as http:
        answer = await writeback.call(http, "GET", _url(f"/api/v2/users/{user_id}.json"), tries=1)
    user = answer.body.get("user") if answer.ok and isinstance(answer.body, dict) else None
    if not isinstance(user, dict):
        log.warning("zendesk user %s not looked up (%s): recorded as %s", user_id, answer.error, fallback)
        return fallback
    name = user.get("name") or fallback["name"]
    return {"name": name, "email": user.get("email"), "phone": user.get("phone")}


def feedback_of(ticket_id: str, ticket: dict[str, Any], found: dict[str, Any]) -> FeedbackIn:
    """The feedback a ticket seen for the first time becomes (422 when it selects no category)."""
    parts = (ticket.get("subject"), ticket.get("description"))
    return tickets.feedback(
        links.order_ref(SYSTEM, ticket_id),
        category=category_of(tickets.tags_of(ticket.get("tags")), ticket.get("custom_fields")),
        summary=tickets.text_of(parts, f"Zendesk #{ticket_id}"),
        channel=channel_of(ticket.get("via")),
        customer=found.get("name"),
        contact=found.get("email") or found.get("phone"),
    )


async def send(pending: links.Pending, text: str) -> writeback.Attempt:
    """One internal note on the ticket (a private comment through the Ticket API)."""
    url, auth = _url(f"/api/v2/tickets/{pending.external_id}.json"), _auth()
    if auth is None:
        return writeback.Attempt(False, 0, "INCIDENT_ZENDESK_URL/EMAIL/TOKEN not set: no write-back", url)
    body = {"ticket": {"comment": {"body": text, "public": False}}}
    async with writeback.client(auth) as http:
        return await writeback.call(http, "PUT", url, body)


# The worker's sweep tells every ticket whose incident changed since its last note (writeback.py).
TOLD = writeback.TicketSystem(SYSTEM, NOTICE, send, lambda: bool(settings.get().zendesk_url))
write_back, sweep = TOLD.write_back, TOLD.sweep

"""Zendesk: its webhooks in (a ticket becomes a feedback), internal notes out (the Ticket API).

Documentation followed:
- Verifying webhook authenticity (developer.zendesk.com/documentation/webhooks/verifying/):
  ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret, TIMESTAMP + BODY)), the timestamp in
  ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601, e.g. ``2024-04-17T17:18:10Z``).
- Webhook event types, ticket events (developer.zendesk.com/api-reference/webhooks/event-types/
  ticket-events): the envelope ``{"type": "zen:event-type:ticket.created", "subject":
  "zen:ticket:35436", "detail": {"id", "subject", "description", "requester_id", "status", "tags",
  "via": {"channel"}, …}, "event": {…}}``.
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
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

import playbooks
from incident import environ, settings
from incident.errors import BadInput
from incident.feedback.service import FeedbackIn
from incident.integrations import WRITE_BACKS
from incident.integrations import service as links
from models import Delivery, session_scope, utcnow
from playbooks.vocabulary import label

log = logging.getLogger("incident.integrations.zendesk")

SYSTEM = "zendesk"
SIGNATURE = "X-Zendesk-Webhook-Signature"
TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
EVENT_PREFIX = "zen:event-type:ticket."
CATEGORIES = ("product_quality", "service_failure", "special_scenario")
# via.channel (Zendesk's names) → our channels; anything else came in through the web.
CHANNELS = {
    "email": "email", "web": "web", "web_form": "web", "web_widget": "web", "chat": "web",
    "api": "internal", "rule": "internal", "voice": "phone", "phone": "phone", "sms": "phone",
    "mobile": "app", "mobile_sdk": "app", "native_messaging": "app", "twitter": "social",
    "facebook": "social", "instagram_dm": "social", "whatsapp": "social", "wechat": "social",
    "line": "social", "any_channel": "web",
}  # fmt: skip


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


@lru_cache(maxsize=4)
def _mapping(path: Path, mtime: float) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise BadInput(f"INCIDENT_ZENDESK_MAP {path}: not a mapping")
    return data


def mapping() -> dict[str, Any]:
    """INCIDENT_ZENDESK_MAP: ``tags: {tag: category}``, ``fields: {field id: {value: category}}``."""
    path = settings.get().zendesk_map
    return _mapping(path, path.stat().st_mtime) if path else {}


def category_of(tags: list[str], fields: list[dict[str, Any]]) -> str:
    """A tag equal to a category id wins; then the mapping file's tags, then its custom fields."""
    for tag in tags:
        if tag in CATEGORIES:
            return tag
    extra = mapping()
    for tag in tags:
        if (found := (extra.get("tags") or {}).get(tag)) in CATEGORIES:
            return str(found)
    by_field = {str(k): v for k, v in (extra.get("fields") or {}).items() if isinstance(v, dict)}
    for field in fields:
        values = by_field.get(str(field.get("id"))) if isinstance(field, dict) else None
        if values and (found := values.get(str(field.get("value")))) in CATEGORIES:
            return str(found)
    raise BadInput(
        f"ticket tags {sorted(tags)} select no category: tag it with one of {', '.join(CATEGORIES)}"
        " (or map a tag or custom field in INCIDENT_ZENDESK_MAP)"
    )


def _tags(raw: object) -> list[str]:
    """Event payloads carry a list; the trigger placeholder ``{{ticket.tags}}`` a space-separated string."""
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        return list(raw)
    if raw is None:
        return []
    raise BadInput("ticket.tags: a list of tags or a space-separated string")


def _channel(via: object) -> str:
    channel = via.get("channel") if isinstance(via, dict) else via
    key = str(channel or "web").strip().lower().replace(" ", "_")
    return CHANNELS.get(key, "web")


def is_update(payload: object) -> bool:
    """Not the creation: an event other than ticket.created, or the trigger body's ``"event": "updated"``."""
    if not isinstance(payload, dict):
        return False
    if "type" in payload:
        return payload["type"] != EVENT_PREFIX + "created"
    return str(payload.get("event", "created")) != "created"


def ticket_of(payload: object) -> tuple[str, dict[str, Any], dict[str, Any], str]:
    """(ticket id, the ticket, its requester, its status) from an event envelope or a trigger body."""
    if not isinstance(payload, dict):
        raise BadInput("body: a JSON object (a Zendesk event or the trigger body in README)")
    if "type" in payload and "detail" in payload:  # event subscription
        kind = str(payload["type"])
        if not kind.startswith(EVENT_PREFIX):
            raise BadInput(f"type: only ticket events ({EVENT_PREFIX}*) are taken, not {kind}")
        ticket = payload["detail"]
        requester = {"name": f"zendesk-user-{ticket.get('requester_id')}"} if isinstance(ticket, dict) else {}
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


def feedback_of(ticket_id: str, ticket: dict[str, Any], requester: dict[str, Any]) -> FeedbackIn:
    """The feedback a ticket seen for the first time becomes (422 when it selects no category)."""
    fields = ticket.get("custom_fields") if isinstance(ticket.get("custom_fields"), list) else []
    text = "\n\n".join(str(ticket.get(k) or "").strip() for k in ("subject", "description") if ticket.get(k))
    try:
        return FeedbackIn(
            category=category_of(_tags(ticket.get("tags")), fields),
            summary=text or f"Zendesk #{ticket_id}",
            channel=_channel(ticket.get("via")),
            customer=(str(requester.get("name") or "").strip() or None),
            contact=(str(requester.get("email") or "").strip() or None),
            order=f"zendesk:{ticket_id}",
        )  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadInput(
            f"ticket: {'.'.join(str(p) for p in first['loc']) or 'body'}: {first['msg']}"
        ) from None


def _solution(p: links.Pending, lang: str) -> str | None:
    """The approved solution as the playbook names it, with the note its proposer wrote."""
    if p.solution is None:
        return None
    option = playbooks.get(p.category).solutions.get(p.solution)
    name = option.label(lang) if option else p.solution
    return (
        f"{name}（{p.solution_note}）"
        if p.solution_note and lang != "en"
        else (f"{name} ({p.solution_note})" if p.solution_note else name)
    )


def note_text(p: links.Pending, lang: str | None = None) -> str:
    """The internal note: what a Zendesk agent must know about the incident behind the ticket."""
    lang = lang or settings.get().lang
    zone = environ.zone()
    level = label("level", p.level, lang)
    status = label("status", p.status, lang)
    solution = _solution(p, lang)

    def at(value: datetime | None) -> str:
        return environ.stamp(value, zone) if value else "-"

    if lang == "en":
        if p.first:
            return (
                f"Incident {p.incident_id} opened: {level}; contact the customer by {at(p.contact_deadline)}."
            )
        lines = [f"Incident {p.incident_id}: {status}, {level}."]
        if solution:
            lines.append(f"Solution: {solution}.")
        if p.resolved_at:
            lines.append(f"Resolved at {at(p.resolved_at)}.")
        if p.closed_at:
            lines.append(f"Closed at {at(p.closed_at)}.")
        return " ".join(lines)
    if p.first:
        return f"事件 {p.incident_id} 已启动：{level}；须在 {at(p.contact_deadline)} 前联系客户。"
    lines = [f"事件 {p.incident_id}：{status}，{level}。"]
    if solution:
        lines.append(f"解决方案：{solution}。")
    if p.resolved_at:
        lines.append(f"已于 {at(p.resolved_at)} 解决。")
    if p.closed_at:
        lines.append(f"已于 {at(p.closed_at)} 结案。")
    return "".join(lines)


class Transient(Exception):
    """A failure worth another attempt (network, 429, 5xx)."""


async def put_note(ticket_id: str, text: str) -> tuple[bool, int, str | None, str]:
    """(ok, attempts, error, url): one internal note, retried as notices are (INCIDENT_NOTIFY_*)."""
    cfg = settings.get()
    base = (cfg.zendesk_url or "").rstrip("/")
    url = f"{base}/api/v2/tickets/{ticket_id}.json"
    if not base or not cfg.zendesk_email or not cfg.zendesk_token:
        return False, 0, "INCIDENT_ZENDESK_URL/EMAIL/TOKEN not set: no write-back", url
    auth = httpx.BasicAuth(f"{cfg.zendesk_email}/token", cfg.zendesk_token)
    body = {"ticket": {"comment": {"body": text, "public": False}}}
    attempts = 0
    try:
        async with httpx.AsyncClient(auth=auth, timeout=cfg.notify_timeout) as client:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(cfg.notify_retries),
                wait=wait_exponential(multiplier=cfg.notify_backoff, max=30),
                retry=retry_if_exception(lambda e: isinstance(e, Transient)),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    try:
                        answer = await client.put(url, json=body)
                    except httpx.HTTPError as exc:
                        raise Transient(f"{type(exc).__name__}: {exc}") from exc
                    if answer.status_code == 429 or answer.status_code >= 500:
                        raise Transient(f"HTTP {answer.status_code}")
                    answer.raise_for_status()
    except Transient as exc:
        return False, attempts, str(exc), url
    except httpx.HTTPStatusError as exc:
        return False, attempts, f"HTTP {exc.response.status_code}: {exc.response.text[:200]}", url
    return True, attempts, None, url


def _log(p: links.Pending, ok: bool, attempts: int, error: str | None, url: str, text: str) -> None:
    """One ``deliveries`` row per note, as a notice has: the console's delivery log shows it."""
    now = utcnow()
    with session_scope() as s:
        s.add(Delivery(
            incident_id=p.incident_id, notice=WRITE_BACKS[0], role=SYSTEM, url=url,
            status="sent" if ok else "failed", attempts=attempts, error=error, title=text[:500],
            created_at=now, sent_at=now if ok else None,
        ))  # fmt: skip


async def write_back(link_id: int, now: datetime | None = None) -> bool | None:
    """Tell the ticket what changed, if anything did and nobody else is telling it; None: nothing to tell."""
    now = now or utcnow()
    pending = links.take(link_id, now)
    if pending is None:
        return None
    text = note_text(pending)
    ok, attempts, error, url = await put_note(pending.external_id, text)
    _log(pending, ok, attempts, error, url, text)
    links.told(pending, ok, now)
    if not ok:
        log.warning(
            "zendesk ticket %s not told about %s: %s", pending.external_id, pending.incident_id, error
        )
    return ok


async def sweep(now: datetime | None = None) -> int:
    """The worker's periodic pass: every ticket whose incident changed since its last note is told."""
    now = now or utcnow()
    if not settings.get().zendesk_url:
        return 0
    told = 0
    for link_id in links.due_links(SYSTEM, now):
        told += bool(await write_back(link_id, now))
    return told

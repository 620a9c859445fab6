"""Progress updates reach the customers: their own copy, only with their consent, on their channel.

Who gets one: a contact that carries an update's text (``incident contact … --update TEXT``) owes it to
the customers it names, or to every customer of the incident when it names none. A customer receives it
when they consented at intake (``consent`` on any of their reports) and came through a channel that
can carry a message back:

- ``email`` → an e-mail to the address they wrote from (``INCIDENT_CUSTOMER_MAIL_URL``);
- ``phone`` → an SMS to their number (``INCIDENT_CUSTOMER_SMS_URL``);
- ``web``, ``app``, ``store`` → they reached us through no channel of ours that talks back, so the
  contact they left decides: an e-mail address or a phone number, as above;
- ``social``, ``internal`` → none (we do not answer on someone's Weibo).

Everyone else — no consent, no usable address, no URL configured — hears it from a person: their copy
is logged at once as ``by_person`` with the reason, and nothing is sent.

Why a queue: the contact's transaction only records what is owed (``customer_updates`` rows, pending),
so a contact is never slowed or failed by an SMTP server; the worker sends them every
``INCIDENT_WATCH_SECONDS`` (``send_owed``), each claimed by one worker (compare-and-set; a claim older
than ``STALE`` is taken again: its worker died mid-send), and logs each like any notice (``Delivery``
of notice ``customer_update``, role ``customer``, the address masked). The cadence of progress updates
(4 h at L1, 24 h otherwise) counts from the contact (incident/response/service.py); nothing is sent on
the cadence alone: an update is what a person has to say.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from incident import settings
from models import Contact, CustomerUpdate, Deadline, Delivery, Feedback, Incident, session_scope, utcnow
from notifiers.customers import send, shown
from notifiers.render import render_for_customer

NOTICE, ROLE = "customer_update", "customer"
STALE = timedelta(minutes=10)  # a send takes at most retries × INCIDENT_NOTIFY_TIMEOUT (< 1 min by default)
BATCH = 100
CARRIES = {"email": "email", "phone": "sms"}  # a channel that itself carries our message back
LEFT_CONTACT = ("web", "app", "store")  # no channel of ours: the contact they left decides
SETTING = {"email": "INCIDENT_CUSTOMER_MAIL_URL", "sms": "INCIDENT_CUSTOMER_SMS_URL"}


@dataclass(frozen=True)
class Route:
    """How one customer's copy goes: ``via`` email or sms, else ``reason`` why a person tells them."""

    feedback: Feedback
    via: str | None
    reason: str | None = None


def _kind_of(contact: str | None) -> str | None:
    """``email`` for an e-mail address, ``sms`` for a phone number (7+ digits), else None."""
    value = (contact or "").strip()
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        return "email"
    return "sms" if len(re.sub(r"\D", "", value)) >= 7 else None


def _way(fb: Feedback) -> str | None:
    """How this report's customer can be written to (email | sms), consent aside; None: not at all."""
    kind = _kind_of(fb.contact)
    if fb.channel in CARRIES:
        return kind if kind == CARRIES[fb.channel] else None
    return kind if fb.channel in LEFT_CONTACT else None


def _why_not(fb: Feedback) -> str:
    if fb.channel in CARRIES:
        wanted = "e-mail address" if CARRIES[fb.channel] == "email" else "phone number"
        return f"came by {fb.channel} but left no {wanted}"
    if fb.channel in LEFT_CONTACT:
        return f"came by {fb.channel} and left no e-mail address or phone number"
    return f"came by {fb.channel}: no channel to answer on"


def _base(via: str) -> str | None:
    config = settings.get()
    return config.customer_mail_url if via == "email" else config.customer_sms_url


def route(reports: list[Feedback]) -> Route:
    """One customer's reports (oldest first) → how their copy goes (their latest consenting report)."""
    consenting = [fb for fb in reports if fb.consent]
    if not consenting:
        return Route(reports[-1], None, "no consent to updates recorded at intake")
    fb = consenting[-1]
    via = _way(fb)
    if via is None:
        return Route(fb, None, _why_not(fb))
    if not _base(via):
        return Route(fb, None, f"{SETTING[via]} is not set")
    return Route(fb, via)


def _nobody(fb: Feedback) -> bool:
    """An internal alarm that names no customer: nobody to send an update to."""
    return fb.kind == "alarm" and not fb.customer_name and not fb.contact


def _customers(session: Session, incident_id: str, subjects: list[str] | None) -> list[list[Feedback]]:
    """Each customer's reports in this incident (the named ones, else all), oldest first."""
    stmt = (
        select(Feedback)
        .where(Feedback.incident_id == incident_id)
        .order_by(Feedback.received_at, Feedback.id)
    )
    reports = [fb for fb in session.scalars(stmt) if not _nobody(fb)]
    wanted = None
    if subjects is not None:
        wanted = {fb.customer_key for fb in reports if fb.id in subjects}
    by_key: dict[str, list[Feedback]] = {}
    for fb in reports:
        if wanted is None or fb.customer_key in wanted:
            by_key.setdefault(fb.customer_key, []).append(fb)
    return list(by_key.values())


def owe(
    session: Session, incident: Incident, contact: Contact, named: list[Deadline] | None, now: datetime
) -> dict[str, int]:
    """Record each customer's copy of ``contact.message``: queued to be sent, or logged ``by_person``."""
    subjects = [row.subject for row in named if row.subject] if named is not None else None
    queued = by_person = 0
    for reports in _customers(session, incident.id, subjects):
        way = route(reports)
        if way.via is not None:
            session.add(CustomerUpdate(incident_id=incident.id, contact_id=contact.id,
                                       feedback_id=way.feedback.id, via=way.via, created_at=now))  # fmt: skip
            queued += 1
            continue
        target = _way(way.feedback)  # the address a person may use, masked; "-": none
        session.add(
            Delivery(incident_id=incident.id, notice=NOTICE, role=ROLE,
                     url=shown(target, way.feedback.contact or "") if target else "-", status="by_person",
                     attempts=0, error=way.reason, title=_title(way.feedback), created_at=now)
        )  # fmt: skip
        by_person += 1
    return {"queued": queued, "by_person": by_person}


def _title(fb: Feedback) -> str:
    return render_for_customer(NOTICE, {"feedback_id": fb.id}, settings.get().customer_lang).title


def _claim(now: datetime) -> list[int]:
    """The owed copies this worker takes now, each claimed by a compare-and-set (one sender each)."""
    stale = now - STALE
    owed = or_(CustomerUpdate.state == "pending",
               (CustomerUpdate.state == "sending") & (CustomerUpdate.claimed_at < stale))  # fmt: skip
    with session_scope() as s:
        ids = list(s.scalars(select(CustomerUpdate.id).where(owed).order_by(CustomerUpdate.id).limit(BATCH)))
    taken = []
    for update_id in ids:
        with session_scope() as s:
            claimed = s.execute(
                update(CustomerUpdate).where(CustomerUpdate.id == update_id, owed)
                .values(state="sending", claimed_at=now)
            ).rowcount  # fmt: skip
        if claimed == 1:
            taken.append(update_id)
    return taken


async def send_owed(now: datetime | None = None) -> dict[str, int]:
    """Send every owed copy (the worker's loop, every ``INCIDENT_WATCH_SECONDS``): sent and failed."""
    taken = await asyncio.to_thread(_claim, now or utcnow())
    results = await asyncio.gather(*(_send_one(update_id) for update_id in taken))
    return {"sent": results.count("sent"), "failed": results.count("failed")}


async def _send_one(update_id: int) -> str:
    with session_scope() as s:
        row = s.get_one(CustomerUpdate, update_id)
        fb = s.get_one(Feedback, row.feedback_id)
        text = s.get_one(Contact, row.contact_id).message or ""
        incident_id, via, address, created = row.incident_id, row.via, fb.contact or "", utcnow()
        context = {"customer": fb.customer_name, "feedback_id": fb.id, "update": text}
    message = render_for_customer(NOTICE, context, settings.get().customer_lang)
    base = _base(via)
    if base:
        outcome = await send(base, via, address, message)
        status = "sent" if outcome.ok else "failed"
        attempts, error, sent_at = outcome.attempts, outcome.error, outcome.sent_at
    else:  # unset since the contact was recorded
        status, attempts, error, sent_at = "failed", 0, f"{SETTING[via]} is not set", None
    with session_scope() as s:
        s.add(Delivery(incident_id=incident_id, notice=NOTICE, role=ROLE, url=shown(via, address),
                       status=status, attempts=attempts, error=error, title=message.title,
                       created_at=created, sent_at=sent_at))  # fmt: skip
        s.execute(update(CustomerUpdate).where(CustomerUpdate.id == update_id).values(state="done"))
    return status

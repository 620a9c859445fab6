"""The Freshdesk adapter against a real database and a local Freshdesk API v2 (tests/freshdesk_fake.py).

What a rule's body becomes (its placeholders as Freshdesk renders them: ``{{ticket.tags}}`` comma-
separated, ``{{ticket.source}}`` by name), the shared secret, and the write-back: a private note (HTML,
escaped) on open, the ticket Resolved and a note once the incident closes, retried on 429 and logged.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from incident.errors import BadInput
from incident.feedback import service as intake
from incident.feedback.inputs import FeedbackIn
from incident.integrations import freshdesk
from incident.integrations import service as links
from models import Delivery, Incident, Solution, session_scope, utcnow
from tests.freshdesk_fake import API_KEY, fake_freshdesk


def test_the_shared_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(freshdesk.Unsigned, match="not set"):
        freshdesk.verify({freshdesk.SECRET_HEADER: "anything"})
    monkeypatch.setenv("INCIDENT_FRESHDESK_SECRET", "s3cret")
    freshdesk.verify({freshdesk.SECRET_HEADER: "s3cret"})
    for headers, why in (({}, "missing"), ({freshdesk.SECRET_HEADER: "s3cre"}, "wrong")):
        with pytest.raises(freshdesk.Unsigned, match=why):
            freshdesk.verify(headers)


def test_a_rules_body_becomes_a_feedback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mapping = tmp_path / "freshdesk.yaml"
    mapping.write_text("tags: {broken: product_quality}\nfields: {cf_category: {台风: special_scenario}}\n")
    monkeypatch.setenv("INCIDENT_FRESHDESK_MAP", str(mapping))
    ticket = {"id": "42", "subject": "门店安装延误", "description": "台风后一直没人来", "tags": "vip, late",
              "source": "Phone", "requester": {"name": "孙先生", "email": "", "phone": "13812345678"},
              "custom_fields": {"cf_category": "台风"}}  # fmt: skip
    body = freshdesk.feedback_of("42", ticket)
    assert (body.category, body.channel, body.customer, body.contact) == (
        "special_scenario", "phone", "孙先生", "13812345678",
    )  # fmt: skip
    assert body.order == "freshdesk:42" and body.summary == "门店安装延误\n\n台风后一直没人来"
    assert (
        freshdesk.feedback_of("43", {**ticket, "tags": "broken", "custom_fields": {}}).category
        == "product_quality"
    )
    sources = {"Email": "email", "Portal": "web", "Feedback Widget": "web", "Chat": "web",
               "Outbound Email": "email", "WhatsApp": "social", 3: "phone", "9": "web"}  # fmt: skip
    for source, ours in sources.items():
        assert freshdesk.channel_of(source) == ours, source
    with pytest.raises(BadInput, match="select no category"):
        freshdesk.feedback_of("44", {**ticket, "tags": "vip", "custom_fields": {"cf_category": ""}})
    with pytest.raises(BadInput, match="ticket.id"):
        freshdesk.ticket_of({"ticket": {"id": "{{ticket.id}}"}})


def _opened(summary: str, ticket: str) -> int:
    result = intake.record(FeedbackIn(category="service_failure", summary=summary, service=summary))
    link_id, known = links.claim(freshdesk.SYSTEM, ticket)
    assert known is None and result.incident_id is not None
    links.recorded(link_id, result.feedback_id, result.incident_id)
    return link_id


def _env(monkeypatch: pytest.MonkeyPatch, url: str, key: str = API_KEY) -> None:
    monkeypatch.setenv("INCIDENT_FRESHDESK_URL", url)
    monkeypatch.setenv("INCIDENT_FRESHDESK_API_KEY", key)
    monkeypatch.setenv("INCIDENT_NOTIFY_BACKOFF", "0.01")


def test_notes_on_open_and_resolved_once_closed(any_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_freshdesk() as fake:
        _env(monkeypatch, fake.url)
        link_id = _opened("installer <b>never</b> came", "1001")
        fake.fail_next = 2  # two 429s, then it answers
        assert asyncio.run(freshdesk.sweep()) == 1
        assert asyncio.run(freshdesk.sweep()) == 0  # nothing changed: nothing told
        assert fake.statuses == {}  # still open: the ticket's status is not touched
        with session_scope() as s:
            link = s.get_one(links.IntegrationLink, link_id)
            inc = s.get_one(Incident, link.incident_id)
            inc.status, inc.resolved_at, inc.closed_at = "closed", utcnow(), utcnow()
            who = {"proposed_by": "cs_manager", "approver_role": "cs_director", "proposed_at": utcnow()}
            s.add(Solution(incident_id=inc.id, round=1, kind="compensate", note="<script>x</script>",
                           status="approved", **who))  # fmt: skip
        assert asyncio.run(freshdesk.sweep()) == 1
        notes = fake.notes["1001"]
    assert [n["private"] for n in notes] == [True, True] and fake.statuses == {"1001": 4}
    assert "已启动" in notes[0]["body"] and "已结案" in notes[1]["body"]
    assert "&lt;script&gt;" in notes[1]["body"] and "<script>" not in notes[1]["body"]  # the note is HTML
    with session_scope() as s:
        rows = s.scalars(
            select(Delivery).where(Delivery.notice == "freshdesk_note").order_by(Delivery.id)
        ).all()
        assert [(r.status, r.attempts, r.role) for r in rows] == [
            ("sent", 3, "freshdesk"),
            ("sent", 2, "freshdesk"),
        ]


def test_a_wrong_api_key_fails_without_retrying_and_is_logged(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_freshdesk() as fake:
        _env(monkeypatch, fake.url, key="not-the-key")
        link_id = _opened("wrong key ticket", "1002")
        assert asyncio.run(freshdesk.write_back(link_id)) is False
        assert fake.refused == ["auth"] and fake.notes == {}
    with session_scope() as s:
        row = s.scalars(select(Delivery).where(Delivery.notice == "freshdesk_note")).one()
        assert row.status == "failed" and row.attempts == 1 and "401" in (row.error or "")
        assert API_KEY not in row.url

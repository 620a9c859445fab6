"""Notices through real channels: a local SMTP server (aiosmtpd) and a local webhook (httpserver).

Nothing of ours is mocked: notify() renders, apprise sends over sockets, the receivers keep what
arrived, and the delivery log is read back from a real SQLite database.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

import models
import notifiers
from notifiers import NOTICE_KINDS, deliveries, notify, notify_sync, render
from notifiers import roster as roster_mod
from notifiers.render import TEMPLATES

INC = "INC20261124001"
L1_ROLES = ["leadership", "customer_service", "technical_support", "quality_control", "pr", "legal"]
PHONE = "13812345678"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mailbox:
    """What the local SMTP server accepted."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


def parts(message: EmailMessage) -> tuple[str, str]:
    """(plain text, html) of a received e-mail."""
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    return (plain.get_content() if plain else "", html.get_content() if html else "")


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def notify_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh database holding the incident the notices are about; fast retries."""
    monkeypatch.setenv("INCIDENT_HOME", str(tmp_path))
    monkeypatch.setenv("INCIDENT_DB_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("INCIDENT_NOTIFY_RETRIES", "4")
    monkeypatch.setenv("INCIDENT_NOTIFY_BACKOFF", "0.02")
    monkeypatch.delenv("INCIDENT_NOTIFY_CONFIG", raising=False)
    monkeypatch.delenv("INCIDENT_LANG", raising=False)
    models.reset_engine()
    models.Base.metadata.create_all(models.get_engine())
    with models.session_scope() as session:
        session.add(
            models.Incident(
                id=INC, category="product_quality", level=1, status="response",
                correlation_key="k", summary="s", customers=120, level_reasons=[],
                identified_at=models.utcnow(),
            )
        )  # fmt: skip
    yield tmp_path
    models.reset_engine()


def use_roster(path: Path, monkeypatch: pytest.MonkeyPatch, entries: list[tuple[str, str]]) -> Path:
    """Write an apprise YAML config (url, comma-separated roles) and point the product at it."""
    lines = ["urls:"]
    for url, roles in entries:
        lines += [f'  - "{url}":', f"      - tag: {roles}"]
    config = path / "roster.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("INCIDENT_NOTIFY_CONFIG", str(config))
    return config


def mailto(port: int, to: str) -> str:
    return f"mailto://127.0.0.1:{port}?from=bot@example.com&to={to}"


def opened_context(**extra: Any) -> dict[str, Any]:
    return {
        "incident_id": INC,
        "level": 1,
        "category": "product_quality",
        "summary": f"电池鼓包，客户电话 {PHONE}，邮箱 li.lei@example.com",
        "customers": 120,
        "deadline_kind": "contact",
        "due_at": datetime.now(UTC) + timedelta(minutes=30),
        **extra,
    }


def hook_messages(server: HTTPServer, path: str) -> list[dict[str, Any]]:
    return [json.loads(req.get_data()) for req, _ in server.log if req.path == path]


def test_l1_opened_reaches_every_channel_of_every_role(
    notify_env: Path, smtp: tuple[Mailbox, int], httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    hook = httpserver.url_for("/").replace("http://", "json://").rstrip("/")
    for path in ("/hook/customer_service", "/hook/technical_support", "/hook/quality_control",
                 "/hook/shared"):  # fmt: skip
        httpserver.expect_request(path, method="POST").respond_with_data("ok")
    use_roster(notify_env, monkeypatch, [
        (mailto(port, "gm@example.com"), "leadership"),
        (mailto(port, "pr@example.com"), "pr"),
        (mailto(port, "legal@example.com"), "legal"),
        (f"{hook}/hook/customer_service", "customer_service"),
        (f"{hook}/hook/technical_support", "technical_support"),
        (f"{hook}/hook/quality_control", "quality_control"),
        (f"{hook}/hook/shared", "pr, legal"),  # one URL, two roles: told once
    ])  # fmt: skip

    results = asyncio.run(notify("incident_opened", L1_ROLES, opened_context(), incident_id=INC))

    assert {r.status for r in results} == {"sent"}
    assert {r.role for r in results} == set(L1_ROLES)
    for address in ("gm@example.com", "pr@example.com", "legal@example.com"):
        [message] = box.to(address)
        text, html = parts(message)
        assert INC in message["Subject"]
        for body in (text, html):
            assert INC in body and "首次联系客户时限 30 分钟" in body
            assert PHONE not in body and "138****5678" in body
            assert "li.lei@" not in body
    for role in ("customer_service", "technical_support", "quality_control"):
        [payload] = hook_messages(httpserver, f"/hook/{role}")
        assert INC in payload["title"]
        assert INC in payload["message"] and "首次联系客户时限 30 分钟" in payload["message"]
        assert PHONE not in payload["message"] and "138****5678" in payload["message"]
    assert len(hook_messages(httpserver, "/hook/shared")) == 1

    rows = deliveries(INC)
    json.dumps(rows)  # JSON-able for `incident notifications ID --json`
    assert len(rows) == 8  # six roles, pr and legal each with their own e-mail and the shared hook
    assert all(row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] for row in rows)
    shared = [row for row in rows if row["url"].endswith("/hook/shared") or "/hook/shared?" in row["url"]]
    assert sorted(row["role"] for row in shared) == ["legal", "pr"]


def test_webhook_failing_three_times_is_delivered_on_the_fourth_attempt(
    notify_env: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        httpserver.expect_ordered_request("/flaky", method="POST").respond_with_data("no", status=500)
    httpserver.expect_ordered_request("/flaky", method="POST").respond_with_data("ok")
    hook = httpserver.url_for("/flaky").replace("http://", "json://")
    use_roster(notify_env, monkeypatch, [(hook, "duty_manager")])

    [result] = notify_sync(
        "deadline_missed", ["duty_manager"],
        {**opened_context(), "minutes_left": -5, "escalated_from": "customer_service"},
        incident_id=INC,
    )  # fmt: skip

    assert (result.status, result.attempts, result.error) == ("sent", 4, None)
    httpserver.check_assertions()
    assert len(httpserver.log) == 4
    [row] = deliveries(INC)
    assert (row["status"], row["attempts"], row["role"]) == ("sent", 4, "duty_manager")
    assert row["notice"] == "deadline_missed" and INC in row["title"]


def test_smtp_down_fails_alone_and_notify_does_not_raise(
    notify_env: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENT_NOTIFY_RETRIES", "3")
    httpserver.expect_request("/director", method="POST").respond_with_data("ok")
    hook = httpserver.url_for("/director").replace("http://", "json://")
    use_roster(notify_env, monkeypatch, [
        (mailto(free_port(), "director@example.com"), "cs_director"),  # nobody listens there
        (hook, "cs_director"),
    ])  # fmt: skip

    results = asyncio.run(
        notify("level_raised", ["cs_director"], {**opened_context(), "old_level": 3, "new_level": 2,
               "level": 2}, incident_id=INC)
    )  # fmt: skip

    by_scheme = {r.url.split(":")[0]: r for r in results}
    assert by_scheme["mailto"].status == "failed" and by_scheme["mailto"].attempts == 3
    assert by_scheme["mailto"].error
    assert by_scheme["json"].status == "sent"
    assert len(hook_messages(httpserver, "/director")) == 1
    rows = {row["url"].split(":")[0]: row for row in deliveries(INC)}
    assert rows["mailto"]["status"] == "failed" and rows["mailto"]["error"]
    assert rows["mailto"]["sent_at"] is None
    assert rows["json"]["status"] == "sent"


def test_webhook_always_failing_is_logged_with_apprise_reason(
    notify_env: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENT_NOTIFY_RETRIES", "2")
    httpserver.expect_request("/down", method="POST").respond_with_data("no", status=503)
    use_roster(
        notify_env, monkeypatch, [(httpserver.url_for("/down").replace("http://", "json://"), "logistics")]
    )
    [result] = notify_sync("progress_due", ["logistics"], opened_context(), incident_id=INC)
    assert (result.status, result.attempts) == ("failed", 2)
    assert "503" in (result.error or "")


def test_customer_text_is_data_never_template(
    notify_env: Path, smtp: tuple[Mailbox, int], httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    evil = "{{ 7*7 }} <script>alert(1)</script>"
    httpserver.expect_request("/cs", method="POST").respond_with_data("ok")
    use_roster(notify_env, monkeypatch, [
        (httpserver.url_for("/cs").replace("http://", "json://"), "customer_service"),
        (mailto(port, "cs@example.com"), "customer_service"),
    ])  # fmt: skip
    context = {"incident_id": INC, "level": 3, "category": "service_failure", "summary": evil}

    results = notify_sync("stage_changed", ["customer_service"], context, incident_id=INC)

    assert [r.status for r in results] == ["sent", "sent"]
    [payload] = hook_messages(httpserver, "/cs")
    assert evil in payload["message"] and "49" not in payload["message"]
    [message] = box.to("cs@example.com")
    text, html = parts(message)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "{{ 7*7 }}" in html and "49" not in html
    assert evil in text
    rendered = render("stage_changed", context, "en")
    assert evil in rendered.text and "&lt;script&gt;" in rendered.html


def test_chinese_and_emoji_are_kept_intact(
    notify_env: Path, smtp: tuple[Mailbox, int], httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = smtp
    summary = "冰箱不制冷🧊，客户非常着急😡🔥（第三次报修）"
    httpserver.expect_request("/qc", method="POST").respond_with_data("ok")
    use_roster(notify_env, monkeypatch, [
        (httpserver.url_for("/qc").replace("http://", "json://"), "quality_control"),
        (mailto(port, "qc@example.com"), "quality_control"),
    ])  # fmt: skip
    context = {**opened_context(summary=summary), "category_label": "产品质量类 🛠"}

    notify_sync("incident_opened", ["quality_control"], context, incident_id=INC)

    [payload] = hook_messages(httpserver, "/qc")
    assert summary in payload["message"] and "产品质量类 🛠" in payload["title"]
    [message] = box.to("qc@example.com")
    text, html = parts(message)
    assert summary in text and summary in html
    assert "产品质量类 🛠" in message["Subject"]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("kind", [k for k in NOTICE_KINDS if k != "review_ready"])  # one incident each
def test_every_kind_renders_in_both_languages(kind: str, lang: str) -> None:
    assert (TEMPLATES / f"{kind}.{lang}.j2").is_file()
    rendered = render(kind, {"incident_id": "INC20260101007", "level": 2,
                             "category": "special_scenario"}, lang)  # fmt: skip
    assert rendered.title and "\n" not in rendered.title
    assert "INC20260101007" in rendered.title and "INC20260101007" in rendered.text
    assert "INC20260101007" in rendered.html
    chinese = any("\u4e00" <= ch <= "\u9fff" for ch in rendered.text)
    assert chinese == (lang == "zh")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_review_ready_names_the_month_and_the_file(lang: str) -> None:
    """The monthly review's notice to leadership is about a month, not an incident."""
    context = {
        "review": "2026-11",
        "review_path": "/srv/reviews/review-2026-11.zh.pdf",
        "review_lines": ["x 20%"],
    }
    rendered = render("review_ready", context, lang)
    assert "2026-11" in rendered.title and "\n" not in rendered.title
    assert "/srv/reviews/review-2026-11.zh.pdf" in rendered.text and "x 20%" in rendered.text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in rendered.text) == (lang == "zh")


def test_opened_en_names_the_contact_deadline() -> None:
    due = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    rendered = render("incident_opened", {**opened_context(), "due_at": due, "minutes_left": 12},
                      "en")  # fmt: skip
    assert "within 30 min" in rendered.text and "2026-11-24 10:30 +00:00" in rendered.text
    assert "12 min left" in rendered.text and PHONE not in rendered.text


def test_no_config_means_nobody_is_told(notify_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = notify_sync("resolved", ["cs_manager", "pr"], opened_context(), incident_id=INC)
    assert [(r.role, r.url, r.status) for r in results] == [
        ("cs_manager", "-", "no_recipient"), ("pr", "-", "no_recipient")]  # fmt: skip
    monkeypatch.setenv("INCIDENT_NOTIFY_CONFIG", str(notify_env / "missing.yaml"))
    [result] = notify_sync("resolved", ["pr"], opened_context(), incident_id=INC)
    assert result.status == "no_recipient" and "missing.yaml" in (result.error or "")
    assert [row["status"] for row in deliveries(INC)] == ["no_recipient"] * 3


def test_role_without_url_is_no_recipient(
    notify_env: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/pr", method="POST").respond_with_data("ok")
    use_roster(notify_env, monkeypatch, [(httpserver.url_for("/pr").replace("http://", "json://"), "pr")])
    results = notify_sync("resolved", ["pr", "legal"], opened_context(), incident_id=INC)
    assert [(r.role, r.status) for r in results] == [("pr", "sent"), ("legal", "no_recipient")]


def test_broken_config_is_an_error_naming_the_file(notify_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = notify_env / "broken.yaml"
    monkeypatch.setenv("INCIDENT_NOTIFY_CONFIG", str(config))
    for content in ("urls: [unclosed", "urls:\n  - bogus://nowhere:\n      - tag: pr\n",
                    "urls:\n  - json://127.0.0.1:9/x:\n      - tag: prr\n"):  # fmt: skip
        config.write_text(content, encoding="utf-8")
        with pytest.raises(notifiers.RosterError, match="broken.yaml"):
            roster_mod.check()
    [result] = notify_sync("resolved", ["pr"], opened_context(), incident_id=INC)
    assert result.status == "failed" and "broken.yaml" in (result.error or "")


def test_roster_reloads_when_the_file_changes(notify_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = use_roster(notify_env, monkeypatch, [("json://127.0.0.1:9/a", "pr")])
    first = roster_mod.check()
    assert roster_mod.check() is first  # cached
    assert [c.roles for c in first.for_role("pr")] == [frozenset({"pr"})]
    config.write_text('urls:\n  - "json://user:s3cret@127.0.0.1:9/b":\n      - tag: pr, legal\n')
    second = roster_mod.check()
    [channel] = second.for_role("legal")
    assert "s3cret" not in channel.redacted and channel.roles == {"pr", "legal"}


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown notice kind"):
        render("incident_exploded", {"incident_id": INC, "level": 1, "category": "x"}, "zh")


def test_silent_servers_time_out_instead_of_hanging(
    notify_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENT_NOTIFY_RETRIES", "1")
    monkeypatch.setenv("INCIDENT_NOTIFY_TIMEOUT", "0.5")
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        use_roster(notify_env, monkeypatch, [
            (mailto(port, "gm@example.com"), "leadership"),
            (f"json://127.0.0.1:{port}/hook", "leadership"),
        ])  # fmt: skip
        started = time.monotonic()
        results = notify_sync("deadline_warning", ["leadership"], opened_context(), incident_id=INC)
        elapsed = time.monotonic() - started
    assert [r.status for r in results] == ["failed", "failed"]
    assert elapsed < 5, f"took {elapsed:.1f}s"

"""Notices through the real ``incident serve``: its flows tell roles over real SMTP and webhooks.

The service is the real console script in a subprocess on the session's Prefect server. Its roster
sends some roles e-mail (aiosmtpd in this process), the others JSON webhooks with secrets in their
URLs (the session's local HTTP receiver), and gives ``technical_support`` an extra e-mail address
where no server listens. Assertions read what the receivers got, the CLI's JSON and Prefect's runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from prefect.client.orchestration import get_client
from sqlalchemy import update

from incident.feedback import service as intake
from models import Feedback, session_scope, utcnow
from tests.conftest import ROLES, RUN_WAIT, Inbox, Service, start_service, stop_service, webhook_receiver
from tests.test_deadlines import L1_ROLES, Received, Receivers
from tests.test_notifiers import Mailbox, free_port

PHONE = "13812345678"
EVIL = "{{ 7*7 }} <script>alert(1)</script>"
SECRET = "s3cret"
SMTP_ROLES = ("leadership", "pr", "legal", "duty_manager")
T = TypeVar("T")


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture(scope="module")
def hooks() -> Iterator[Inbox]:
    """A webhook receiver of this module's own: the session's other services number their incidents
    from 001 too, so on a shared receiver their notices would carry the same ids."""
    with webhook_receiver() as received:
        yield received


@pytest.fixture(scope="module")
def svc(
    prefect_api: str,
    hooks: Inbox,
    mailbox: tuple[Mailbox, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("escalation")
    _, smtp_port = mailbox
    lines = ["urls:"]
    for role in ROLES:
        if role in SMTP_ROLES:
            url = f"mailto://127.0.0.1:{smtp_port}?from=bot@example.com&to={role}@example.com"
        else:
            url = f"json://bot:{SECRET}@127.0.0.1:{hooks.server.port}/{role}?+X-Token={SECRET}-header"
        lines += [f'  - "{url}":', f"      - tag: {role}"]
    dead = f"mailto://127.0.0.1:{free_port()}?from=bot@example.com&to=tech-oncall@example.com"
    lines += [f'  - "{dead}":', "      - tag: technical_support"]
    roster = home / "escalation-roster.yaml"
    roster.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {
        "INCIDENT_NOTIFY_CONFIG": str(roster),
        "INCIDENT_NOTIFY_RETRIES": "2",
        "INCIDENT_NOTIFY_BACKOFF": "0.05",
        "INCIDENT_LANG": "zh",
    }
    service = start_service(home, prefect_api, hooks, extra_env=env)
    yield service
    stop_service(service)


@pytest.fixture
def told(svc: Service, mailbox: tuple[Mailbox, int]) -> Receivers:
    return Receivers(mailbox[0], svc.inbox.server)


def eventually(probe: Callable[[], T | None], what: str, timeout: float = RUN_WAIT) -> T:
    """Poll ``probe`` until it returns something truthy (delivery is asynchronous to the API)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_name(flow_run_id: str) -> str:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id)).name


def by_role(messages: list[Received], prefix: str) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = {}
    for message in messages:
        if message.title.startswith(prefix):
            found.setdefault(message.role, []).append(message)
    return found


def test_l1_opened_notice_reaches_every_l1_role_by_email_and_webhook(svc: Service, told: Receivers) -> None:
    reported = svc.cli_json(
        "report", "--category", "product_quality", "--summary", f"电池鼓包 {EVIL} 客户电话 {PHONE}",
        "--customer", "张伟", "--contact", PHONE, "--product-model", "P30", "--batch", "SVC-L1",
        "--customers", "120", "--media",
    )  # fmt: skip
    inc = reported["incident_id"]
    assert reported["level"] == 1
    due = datetime.fromisoformat(reported["contact_deadline"]).strftime("%Y-%m-%d %H:%M +00:00")

    def opened() -> dict[str, list[Received]] | None:
        found = by_role(told.all(inc), f"【一级事件】{inc} 已立案")
        return found if set(found) >= L1_ROLES else None

    found = eventually(opened, "the incident_opened notice at every L1 role")
    assert set(found) == L1_ROLES  # nobody outside the level is told it opened
    for role, message in ((r, m) for r, ms in found.items() for m in ms):  # at-least-once: a retry may repeat
        assert inc in message.title and inc in message.text, role
        assert "首次联系客户时限 30 分钟" in message.text and due in message.text, role
        assert PHONE not in message.text + message.html and "138****5678" in message.text, role
        assert EVIL in message.text, role  # customer text is data: printed as written
    for role in ("leadership", "pr", "legal"):  # e-mail also carries the HTML body, escaped
        html = found[role][0].html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
        assert "{{ 7*7 }}" in html


def test_dead_smtp_is_logged_and_the_incident_still_moves_on(svc: Service, told: Receivers) -> None:
    reported = svc.cli_json(
        "report", "--category", "product_quality", "--summary", "fridge not cooling",
        "--customer", "李雷", "--product-model", "F200", "--batch", "SVC-L3",
    )  # fmt: skip
    inc = reported["incident_id"]
    assert reported["level"] == 3
    svc.wait_for_point(inc, "contact")
    assert svc.cli_json("contact", inc, "--by", "王芳")["on_time"] is True
    shown = svc.wait_for_point(inc, "measure")  # the dead channel did not stop the flow
    assert [e["event"] for e in shown["timeline"]].count("contacted") == 1

    listed = svc.cli("notifications", inc, "--json")
    assert SECRET not in listed.stdout  # passwords and header values are redacted in the log
    log = json.loads(listed.stdout)
    assert log["incident_id"] == inc
    rows = [d for d in log["deliveries"] if d["notice"] == "incident_opened"]
    tech = {d["url"].split(":")[0]: d for d in rows if d["role"] == "technical_support"}
    assert tech["mailto"]["status"] == "failed" and tech["mailto"]["attempts"] == 2
    assert tech["mailto"]["error"] and tech["mailto"]["sent_at"] is None
    assert (tech["json"]["status"], tech["json"]["attempts"]) == ("sent", 1) and tech["json"]["sent_at"]
    assert "bot:****@" in tech["json"]["url"] and "X-Token=****" in tech["json"]["url"]
    assert {(d["role"], d["status"]) for d in rows} == {
        ("cs_manager", "sent"), ("technical_support", "sent"), ("technical_support", "failed")}  # fmt: skip
    assert all(d["attempts"] >= 1 and d["title"] for d in log["deliveries"])
    assert {d["notice"] for d in log["deliveries"]} >= {"incident_opened", "stage_changed"}
    assert by_role(told.all(inc), "【三级事件】").keys() == {"cs_manager", "technical_support"}


REPORT = {
    "category": "product_quality",
    "summary": "battery swelling after update",
    "product_model": "P40",
    "batch": "SVC-RAISE",
}


def post(svc: Service, customer: str) -> dict[str, Any]:
    response = svc.api("POST", "/api/feedback", json={**REPORT, "customer": customer})
    assert response.status_code == 202, response.text
    return response.json()


def record_directly(svc: Service, monkeypatch: pytest.MonkeyPatch, customer: str) -> intake.IntakeResult:
    """Record a report that changes nothing with the code ``POST /api/feedback`` runs, in the service's
    database, and mark it handled (its ``handle_feedback`` run would only do that).

    Why: a POST costs 1-3 s on this 2-core machine (a Prefect flow run is created per report); the
    89 reports between the 10th and the 100th would take minutes. The raising reports use the API.
    """
    monkeypatch.setenv("INCIDENT_HOME", str(svc.home))
    monkeypatch.setenv("INCIDENT_DB_URL", f"sqlite:///{svc.home / 'incident.db'}")
    body = {k: v for k, v in REPORT.items() if k != "customer"}
    result = intake.record(intake.FeedbackIn(customer=customer, **body))
    with session_scope() as s:
        s.execute(update(Feedback).where(Feedback.id == result.feedback_id).values(handled_at=utcnow()))
    return result


def test_level_raises_tell_the_new_levels_roles_and_rename_the_run(
    svc: Service, told: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [post(svc, f"customer-{n:03d}") for n in range(1, 10)]
    inc = first[0]["incident_id"]
    assert {r["incident_id"] for r in first} == {inc} and {r["level"] for r in first} == {3}
    shown = svc.wait_for_point(inc, "contact")
    assert run_name(shown["flow_run_id"]) == f"{inc}-L3-product_quality"

    tenth = post(svc, "customer-010")
    assert (tenth["level"], tenth["raised_from"]) == (2, 3)
    l2_roles = {"cs_director", "technical_support", "logistics"}

    def told_l2() -> dict[str, list[Received]] | None:
        found = by_role(told.all(inc), "【升级】")
        return found if l2_roles <= set(found) else None

    found = eventually(told_l2, "level_raised at the L2 roles")
    assert set(found) == l2_roles and all(len(m) == 1 for m in found.values())
    assert all("由三级升为二级" in m[0].title and "10 位" in m[0].text for m in found.values())
    eventually(lambda: run_name(shown["flow_run_id"]) == f"{inc}-L2-product_quality", "the L2 run name")

    middle = [record_directly(svc, monkeypatch, f"customer-{n:03d}") for n in range(11, 100)]
    assert {(r.incident_id, r.level, r.raised_from) for r in middle} == {(inc, 2, None)}

    hundredth = post(svc, "customer-100")
    assert (hundredth["level"], hundredth["raised_from"]) == (1, 2)
    assert datetime.fromisoformat(hundredth["contact_deadline"]) <= datetime.fromisoformat(
        tenth["contact_deadline"]
    )

    def told_l1() -> dict[str, list[Received]] | None:
        found = {
            role: messages
            for role, messages in by_role(told.all(inc), "【升级】").items()
            if any("由二级升为一级" in m.title for m in messages)
        }
        return found if set(found) >= L1_ROLES else None

    found = eventually(told_l1, "level_raised at the L1 roles", timeout=90)
    assert set(found) == L1_ROLES
    for role, messages in found.items():
        assert len([m for m in messages if "由二级升为一级" in m.title]) == 1, role
    [to_leadership] = found["leadership"]
    assert "100 位" in to_leadership.text and "升级原因：100 名客户投诉（≥100 名）" in to_leadership.text
    assert "complaining" not in to_leadership.text  # the reason is in the notice's language
    eventually(lambda: run_name(shown["flow_run_id"]) == f"{inc}-L1-product_quality", "the L1 run name")
    assert svc.show(inc)["level"] == 1 and svc.show(inc)["customers"] == 100


def test_the_flow_emits_each_stage_notice_once(svc: Service, told: Receivers) -> None:
    """Answers typed straight after the report; the delivery log shows every notice the stages send."""
    inc = svc.cli_json(
        "report", "--category", "service_failure", "--summary", "technician never came",
        "--service", "installation", "--region", "SVC-STAGES", "--customer", "韩梅梅",
    )["incident_id"]  # fmt: skip
    for command in (
        ["contact", "--by", "王芳"],
        ["measure", "--kind", "expedite"],
        ["cause", "--root", "dispatch skipped the visit", "--direct", "no reminder", "--stage", "service"],
        ["propose", "--solution", "train_staff"],
        ["approve", "--by", "周", "--role", "dept_head"],
        ["confirm", "--result", "satisfied"],
        ["survey", "--speed", "2", "--result", "3", "--attitude", "3"],
        ["survey", "--speed", "5", "--result", "4", "--attitude", "5"],
    ):
        svc.cli_json(command[0], inc, *command[1:])
    svc.wait_until(inc, lambda s: s["status"] == "closed", "closed", timeout=120)

    log = svc.cli_json("notifications", inc)["deliveries"]
    sent = {(d["notice"], d["role"]) for d in log}
    assert {n for n, _ in sent} == {
        "incident_opened", "stage_changed", "approval_requested", "approval_decided", "resolved",
        "survey_below_target",
    }  # fmt: skip
    assert ("approval_requested", "dept_head") in sent and ("survey_below_target", "customer_service") in sent
    to_cs_manager = [d["notice"] for d in log if d["role"] == "cs_manager" and d["url"].startswith("json")]
    for notice in ("incident_opened", "approval_requested", "approval_decided", "resolved"):
        assert to_cs_manager.count(notice) == (0 if notice == "approval_requested" else 1), notice
    assert told.all(inc) and all(inc in m.title for m in told.all(inc))

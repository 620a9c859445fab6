"""The audit against the session's running service: every act and refusal with who, channel and address,
through the CLI, the API and the console; who may read it; its pages.

The shared service trusts no proxy (``INCIDENT_TRUSTED_PROXIES`` unset): an ``X-Forwarded-For`` header
changes no address. ``tests/test_console_sessions.py`` runs the service that trusts one.
"""

from __future__ import annotations

import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import Service
from tests.test_console import browser, csrf

Row = tuple[str, str, str, str | None]


def _audit(service: Service, *args: str) -> list[dict[str, Any]]:
    return list(service.cli_json("audit", *args)["events"])


def _rows(events: list[dict[str, Any]]) -> list[Row]:
    return [(e["who"], e["action"], e["outcome"], e.get("channel")) for e in events]


def _incident(service: Service, region: str) -> str:
    body = {"category": "service_failure", "summary": "师傅没来", "service": "install", "region": region}
    return str(service.api("POST", "/api/feedback", json=body).json()["incident_id"])


def test_acts_carry_their_channel_and_address_and_no_one_picks_an_address(service: Service) -> None:
    inc = _incident(service, f"AUDIT-{uuid.uuid4().hex[:6]}")
    service.cli_json("contact", inc, "--by", "客服 A")  # the command line, as the service token
    spoofed = {"X-Forwarded-For": "203.0.113.9", "User-Agent": "curl/8"}
    measured = service.api(
        "POST", f"/api/incidents/{inc}/measure", json={"kind": "expedite"}, headers=spoofed
    )
    assert measured.status_code == 200, measured.text
    with closing(browser(service)) as console:
        page = console.get(f"/incidents/{inc}")
        assigned = console.post(f"/incidents/{inc}/assign", data={"csrf": csrf(page.text), "owner": "客服 B"})
        assert assigned.status_code == 303
    events = {e["action"]: e for e in _audit(service, inc)}
    assert (events["contact"]["channel"], events["contact"]["address"]) == ("cli", "127.0.0.1")
    assert (events["measure"]["channel"], events["measure"]["address"]) == ("api", "127.0.0.1")  # not spoofed
    assert (events["assign"]["channel"], events["assign"]["who"]) == ("console", "service token")


def test_the_directory_tokens_deputies_rotas_and_inbox_are_audited(service: Service) -> None:
    tag = uuid.uuid4().hex[:6]
    name = f"审计 {tag}"
    service.cli_json("people", "add", name, "--role", "duty_manager", "--role", "leadership")
    boss = service.person(f"总经理 {tag}", "leadership")
    now = datetime.now(UTC)
    starts, ends = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=8)).isoformat()
    shift = service.cli_json("rota", "add", "duty_manager", name, "--from", starts, "--until", ends)
    until = (now + timedelta(days=1)).isoformat()
    named = service.cli_json("deputy", "add", name, "--role", "leadership", "--until", until, token=boss)
    service.cli_json("deputy", "end", str(named["id"]), token=boss)
    service.cli_json("deputy", "add", name, "--role", "leadership", "--until", until, token=boss)
    service.cli_json("people", "update", name, "--role", "duty_manager", "--role", "cs_manager")
    renewed = service.cli_json("people", "update", name, "--new-token")
    assert renewed["token"].startswith("inc_")
    removed = service.cli_json("people", "remove", name)
    assert (removed["shifts_removed"], removed["delegations_ended"]) == (1, 1)  # their shift, the open one
    assert shift["id"] not in [s["id"] for s in service.cli_json("rota", "list")["shifts"]]
    service.cli_json("tokens", "add", f"sys-{tag}", "--scope", "intake")
    service.cli_json("tokens", "remove", f"sys-{tag}")
    suggestion = {"kind": "suggestion", "category": "product_quality", "summary": f"夜间模式 {tag}"}
    feedback_id = service.api("POST", "/api/feedback", json=suggestion).json()["feedback_id"]
    service.cli_json("inbox", "close", feedback_id)

    mine = [e for e in _audit(service) if tag in (e["detail"] or "") or tag in e["who"]]
    acts = [(e["who"], e["action"], e["outcome"], e["channel"]) for e in mine]
    for action in ("add_person", "add_shift", "update_person", "remove_person", "add_token", "remove_token"):
        assert ("service token", action, "ok", "cli") in acts, action
    assert (f"总经理 {tag}", "add_deputy", "ok", "cli") in acts and (
        f"总经理 {tag}",
        "end_deputy",
        "ok",
        "cli",
    ) in acts
    details = " ".join(e["detail"] or "" for e in mine)
    assert f"{name}: 1 shifts removed, 1 delegations ended" in details and f"{name}: new token" in details
    assert renewed["token"] not in details  # never a token in the audit
    closed = [
        e for e in _audit(service) if e["action"] == "inbox_close" and feedback_id in (e["detail"] or "")
    ]
    assert [(e["who"], e["outcome"], e["channel"]) for e in closed] == [("service token", "ok", "cli")]


def test_refusals_and_wrong_tokens_are_audited(service: Service) -> None:
    tag = uuid.uuid4().hex[:6]
    person = service.person(f"客服 {tag}", "customer_service")
    as_person = service.cli("people", "add", f"x {tag}", "--role", "pr", check=False, token=person)
    assert as_person.returncode == 2 and "只有服务令牌" in as_person.stderr  # zh by default
    intake = service.cli_json("tokens", "add", f"intake-{tag}", "--scope", "intake")["token"]
    assert service.api("GET", "/api/incidents", token=intake).status_code == 403
    before = [e for e in _audit(service) if e["action"] == "authenticate"]
    url = service.url + "/api/incidents"
    wrong = [httpx.get(url, headers={"Authorization": f"Bearer wrong-{i}"}, timeout=30) for i in range(25)]
    assert {r.status_code for r in wrong} == {401}
    after = [e for e in _audit(service) if e["action"] == "authenticate"]
    assert 1 <= len(after) <= len(before) + 1  # a storm is one row per address and minute, not 25
    assert all((e["who"], e["outcome"], e["address"]) == ("unknown", "refused", "127.0.0.1") for e in after)

    refused = {(e["who"], e["action"]): e for e in _audit(service) if e["outcome"] == "refused"}
    assert "only the service token" in refused[(f"客服 {tag}", "add_person")]["detail"]  # kept as raised
    assert refused[(f"客服 {tag}", "add_person")]["channel"] == "cli"
    assert "scope is intake" in refused[(f"intake-{tag} (intake token)", "list_incidents")]["detail"]


def test_the_service_token_may_not_confirm_or_survey_and_is_recorded(service: Service) -> None:
    inc = _incident(service, f"SVC-{uuid.uuid4().hex[:6]}")
    api = service.api(
        "POST", f"/api/incidents/{inc}/confirm", token=service.token, json={"result": "satisfied"}
    )
    assert api.status_code == 403 and "not a person" in api.json()["error"]
    body = {"speed": 5, "result": 5, "attitude": 5}
    survey = service.api("POST", f"/api/incidents/{inc}/survey", token=service.token, json=body)
    assert survey.status_code == 403 and "not a person" in survey.json()["error"]
    for args in (("confirm", inc, "--result", "satisfied"), ("survey", inc, "--speed", "5", "--result", "5",
                                                                 "--attitude", "5")):  # fmt: skip
        cli = service.cli(*args, check=False, token=service.token)
        assert cli.returncode == 2 and cli.stderr.count("\n") == 1 and "服务令牌不代表具体人员" in cli.stderr
    refused = [r for r in _rows(_audit(service, inc)) if r[2] == "refused"]
    assert refused == [
        ("service token", "confirm", "refused", "api"),
        ("service token", "survey", "refused", "api"),
        ("service token", "confirm", "refused", "cli"),
        ("service token", "survey", "refused", "cli"),
    ]


def test_only_the_leads_the_duty_manager_and_the_service_token_read_the_audit(service: Service) -> None:
    tag = uuid.uuid4().hex[:6]
    agent = service.person(f"客服 读 {tag}", "customer_service")
    api = service.api("GET", "/api/audit", token=agent)
    assert api.status_code == 403 and "may not read the audit" in api.json()["error"]
    cli = service.cli("audit", check=False, token=agent)
    assert cli.returncode == 2 and "无权查看审计" in cli.stderr  # zh by default
    for role in ("cs_manager", "duty_manager", "leadership"):
        assert (
            service.api("GET", "/api/audit", token=service.person(f"{role} {tag}", role)).status_code == 200
        )
    refused = [r for r in _rows(_audit(service)) if r[0] == f"客服 读 {tag}"]
    assert refused == [(f"客服 读 {tag}", "audit_all", "refused", "api"),
                       (f"客服 读 {tag}", "audit_all", "refused", "cli")]  # fmt: skip


def test_the_audit_pages_with_since_and_limit(service: Service) -> None:
    start = (datetime.now(UTC) - timedelta(days=365)).isoformat()
    first = service.cli_json("audit", "--since", start, "--limit", "2")
    assert len(first["events"]) == 2 and first["next"]
    second = service.cli_json("audit", "--since", first["next"], "--limit", "2")
    assert (
        second["events"][0] != first["events"][-1] and second["events"][0]["at"] >= first["events"][-1]["at"]
    )
    for args, field in ((("--since", "yesterday"), "since"), (("--limit", "0"), "limit")):
        bad = service.cli("audit", *args, check=False)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and field in bad.stderr

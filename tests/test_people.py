"""People, not just roles: the directory, personal tokens, authority from identity, the audit.

In-process tests use a fresh migrated database (``db``); the end-to-end ones share one real
``incident serve`` of their own (module-scoped ``svc``: its database is scanned for tokens in clear).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from incident.errors import BadInput, Conflict, Forbidden, NotFound
from incident.feedback import service as intake
from incident.people import contacts, tokens
from incident.people import service as people
from incident.people.service import SERVICE, PersonIn
from incident.response import authority
from incident.response.steps import BY_ACTION
from models import Person, TimelineEvent, session_scope
from tests.conftest import Inbox, Service, start_service, stop_service


def refused_resume(shown: dict[str, Any]) -> bool:
    return any(e["event"] == "resume_refused" for e in shown["timeline"])


def _incident(summary: str = "phone battery swelling", **signals: Any) -> str:
    body = intake.FeedbackIn(
        category="product_quality", summary=summary, customer="张伟", product_model="P30", **signals
    )
    incident_id = intake.record(body).incident_id
    assert incident_id
    return incident_id


def _events(incident_id: str, event: str) -> list[TimelineEvent]:
    with session_scope() as s:
        return list(s.query(TimelineEvent).filter_by(incident_id=incident_id, event=event))


# --- the directory, in process -------------------------------------------------------------------


def test_add_list_remove_and_the_token_is_only_hashed(db: str) -> None:
    added = people.add(PersonIn(name="王芳", roles=["customer_service"], notify=["json://localhost/x"]))
    assert set(added) == {"name", "roles", "token"} and added["token"].startswith("inc_")
    assert people.list_people() == [{"name": "王芳", "roles": ["customer_service"]}]
    with session_scope() as s:
        row = s.query(Person).one()
        assert added["token"] not in (row.token_hash, row.token_id) and row.token_hash.startswith(
            "$argon2id$"
        )
    actor = people.identify(added["token"])
    assert actor is not None and actor.name == "王芳" and actor.roles == ("customer_service",)
    assert people.cached(added["token"]) == actor  # verified once, then from memory
    assert people.identify(added["token"][:-1] + "x") is None
    with pytest.raises(Conflict, match="already in the directory: 王芳"):
        people.add(PersonIn(name="王芳", roles=["pr"]))
    gone = {"name": "王芳", "removed": True, "shifts_removed": 0, "delegations_ended": 0}
    assert people.remove("王芳") == gone
    assert people.cached(added["token"]) is None and people.identify(added["token"]) is None
    with pytest.raises(NotFound):
        people.remove("王芳")


def test_bad_people_are_refused_naming_the_field(db: str) -> None:
    from pydantic import ValidationError

    for fields, word in (
        ({"name": "A", "roles": ["boss"]}, "unknown role 'boss'"),
        ({"name": "A", "roles": []}, "roles"),
        ({"name": "A", "roles": ["pr"], "notify": ["not a url"]}, "not an apprise URL"),
        ({"name": "", "roles": ["pr"]}, "name"),
    ):
        with pytest.raises(ValidationError, match=word):
            PersonIn(**fields)


def test_cache_expires_and_digests_only() -> None:
    cache: tokens.Cache[str] = tokens.Cache(ttl=0.05)
    cache.put("inc_secret", "who", "A")
    assert cache.get("inc_secret") == "who" and "inc_secret" not in repr(cache._entries)
    time.sleep(0.06)
    assert cache.get("inc_secret") is None


def test_import_a_contact_list_all_or_nobody(db: str, tmp_path: Path) -> None:
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "姓名,角色,电话,邮箱,通知\n陈总,leadership,13800000000,chen@example.com,\n周,dept_head;cs_director,,,json://h/zhou\n"
    )
    rows = contacts.read(csv_file)
    assert rows[1] == {"name": "周", "roles": ["dept_head", "cs_director"], "notify": ["json://h/zhou"]}
    added = people.add_many([PersonIn(**r) for r in rows])
    assert [p["name"] for p in added] == ["陈总", "周"]
    yaml_file = tmp_path / "contacts.yaml"
    yaml_file.write_text("people:\n  - {name: 新人, roles: [pr]}\n  - {name: 周, roles: [legal]}\n")
    with pytest.raises(Conflict, match="周"):
        people.add_many([PersonIn(**r) for r in contacts.read(yaml_file)])
    assert [p["name"] for p in people.list_people()] == ["周", "陈总"]  # 新人 was not added either
    (tmp_path / "bad.csv").write_text("name,rank\nA,1\n")
    with pytest.raises(BadInput, match="line 2: unknown column 'rank'"):
        contacts.read(tmp_path / "bad.csv")


# --- authority, in process ------------------------------------------------------------------------


def test_authority_from_identity_in_process(db: str) -> None:
    inc = _incident(injury=True)  # level 1: leadership approves
    tech = people.identify(people.add(PersonIn(name="刘工", roles=["technical_support"]))["token"])
    boss = people.identify(
        people.add(PersonIn(name="陈总", roles=["leadership", "technical_support"]))["token"]
    )
    clerk = people.identify(people.add(PersonIn(name="小李", roles=["pr"]))["token"])
    assert tech and boss and clerk
    step = BY_ACTION
    authority.perform(step["contact"], inc, step["contact"].model(by="typed"), SERVICE)  # lenient
    with pytest.raises(Forbidden, match="小李 may not cause"):
        authority.perform(
            step["cause"], inc, step["cause"].model(root="r", direct="d", stage="production"), clerk
        )
    authority.perform(step["cause"], inc, step["cause"].model(root="r", direct="d", stage="production"), tech)
    authority.perform(step["propose"], inc, step["propose"].model(solution="replace", by="someone"), boss)
    with pytest.raises(Forbidden, match="service token is not a person"):
        authority.perform(step["approve"], inc, step["approve"].model(by="x", role="leadership"), SERVICE)
    with pytest.raises(Forbidden, match="proposed this solution"):
        authority.perform(step["approve"], inc, step["approve"].model(), boss)
    with pytest.raises(Forbidden, match="刘工 does not hold role 'leadership'"):
        authority.perform(step["approve"], inc, step["approve"].model(by="陈总", role="leadership"), tech)
    refused = _events(inc, "approval_refused")
    assert [e.by for e in refused] == ["service token", "陈总", "刘工"]
    assert [e.by for e in _events(inc, "cause_recorded")] == ["刘工"]
    assert [e.by for e in _events(inc, "solution_proposed")] == ["陈总"]  # --by is the person, not the text
    from incident.people import audit

    outcomes = [(e["who"], e["action"], e["outcome"]) for e in audit.events(inc)]
    assert ("小李", "cause", "refused") in outcomes and ("刘工", "cause", "ok") in outcomes
    assert ("service token", "approve", "refused") in outcomes


# --- end to end: one service of this module's own ---------------------------------------------------


@pytest.fixture(scope="module")
def svc(prefect_api: str, inbox: Inbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_service(tmp_path_factory.mktemp("people"), prefect_api, inbox)
    yield service
    stop_service(service)


def _l1_at_approval(svc: Service, batch: str, proposer_token: str | None = None) -> str:
    inc = svc.cli_json(
        "report", "--category", "product_quality", "--summary", "smoke from charger", "--customer", "王伟",
        "--product-model", "C9", "--batch", batch, "--injury",
    )["incident_id"]  # fmt: skip
    svc.cli_json("contact", inc, "--by", "客服 A")
    svc.cli_json("measure", inc, "--kind", "temporary_refund")
    svc.cli_json("cause", inc, "--root", "bad solder", "--direct", "short", "--stage", "production")
    svc.cli_json("propose", inc, "--solution", "replace", token=proposer_token)
    svc.wait_for_point(inc, "approval-1")
    return inc


def test_people_commands_list_and_remove(svc: Service) -> None:
    added = svc.cli_json("people", "add", "赵六", "--role", "pr", "--role", "legal", "--phone", "1380000",
                         "--notify", f"json://127.0.0.1:{svc.inbox.server.port}/person-zhao")  # fmt: skip
    assert added["name"] == "赵六" and added["roles"] == ["pr", "legal"] and added["token"].startswith("inc_")
    listed = svc.cli_json("people", "list")["people"]
    assert {"name": "赵六", "roles": ["pr", "legal"]} in listed and all("token" not in p for p in listed)
    bad = svc.cli("people", "add", "X", "--role", "boss", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown role 'boss'" in bad.stderr
    again = svc.cli("people", "add", "赵六", "--role", "pr", check=False)
    assert again.returncode == 2 and "已在人员名录中：赵六" in again.stderr
    as_person = svc.cli("people", "add", "Y", "--role", "pr", check=False, token=added["token"])
    assert as_person.returncode == 2 and "只有服务令牌" in as_person.stderr
    contact_list = svc.home / "contacts.yaml"
    contact_list.write_text("- {name: 导入 甲, roles: [pr]}\n- {name: 导入 乙, roles: 'legal;pr'}\n")
    imported = svc.cli_json("people", "import", str(contact_list))["people"]
    assert [(p["name"], p["roles"]) for p in imported] == [("导入 甲", ["pr"]), ("导入 乙", ["legal", "pr"])]
    twice = svc.cli("people", "import", str(contact_list), check=False)
    assert twice.returncode == 2 and "已在人员名录中" in twice.stderr
    assert svc.cli_json("people", "remove", "赵六")["removed"] is True
    gone = svc.api("GET", "/api/incidents", token=added["token"])
    assert gone.status_code == 401  # removed: the token stops working at once
    assert "赵六" not in [p["name"] for p in svc.cli_json("people", "list")["people"]]


def test_a_person_without_the_approver_role_is_refused_by_cli_and_api(svc: Service) -> None:
    proposer = svc.person("提案人 孙", "technical_support")
    inc = _l1_at_approval(svc, "PEOPLE-1", proposer)
    pr = svc.person("公关 钱", "pr")
    cli = svc.cli("approve", inc, "--role", "leadership", check=False, token=pr)
    assert cli.returncode == 2 and cli.stderr.count("\n") == 1
    assert "公关 钱 不具有角色“应急领导小组”" in cli.stderr
    api = svc.api(
        "POST", f"/api/incidents/{inc}/approve", token=pr, json={"by": "陈总", "role": "leadership"}
    )
    assert api.status_code == 403 and "公关 钱" in api.json()["error"]
    service_token = svc.api("POST", f"/api/incidents/{inc}/approve", token=svc.token,
                            json={"by": "陈总", "role": "leadership"})  # fmt: skip
    assert service_token.status_code == 403 and "not a person" in service_token.json()["error"]
    cli_service = svc.cli(
        "approve", inc, "--by", "陈总", "--role", "leadership", check=False, token=svc.token
    )
    assert cli_service.returncode == 2 and "服务令牌不代表具体人员" in cli_service.stderr
    shown = svc.show(inc)
    refusals = [e["by"] for e in shown["timeline"] if e["event"] == "approval_refused"]
    assert refusals == ["公关 钱", "公关 钱", "service token", "service token"]
    assert shown["waiting_for"] == "approval-1" and shown["solutions"][0]["status"] == "pending"
    audit = svc.cli_json("audit", inc)["events"]
    assert {"who": "公关 钱", "action": "approve", "outcome": "refused", "incident_id": inc}.items() <= audit[
        -4
    ].items()


def test_the_proposer_may_not_approve_and_a_leader_can(svc: Service) -> None:
    both = svc.person("总经理 陈总", "leadership", "technical_support")
    inc = _l1_at_approval(svc, "PEOPLE-2", both)
    refused = svc.cli("approve", inc, check=False, token=both)
    assert refused.returncode == 2 and "提出了此方案，不能自己审批" in refused.stderr
    other = svc.person("副总 王", "leadership")
    assert svc.cli_json("approve", inc, token=other)["approved"] is True  # no --by/--role: the directory's
    shown = svc.wait_for_point(inc, "confirmation-1")
    by_event = {e["event"]: e["by"] for e in shown["timeline"]}
    assert (
        by_event["solution_approved"] == "副总 王 (leadership)"
        and by_event["approval_refused"] == "总经理 陈总"
    )
    events = svc.cli_json("audit", inc)["events"]
    assert {"at", "who", "action", "incident_id", "outcome"} <= set(events[0])
    assert ("副总 王", "approve", "ok") in [(e["who"], e["action"], e["outcome"]) for e in events]
    everything = svc.cli_json("audit")["events"]  # every incident's
    assert {e["incident_id"] for e in events} <= {e["incident_id"] for e in everything}


def test_a_deputy_approves_within_the_period_and_is_refused_after(svc: Service) -> None:
    """代理审批: recorded as the deputy, for the principal, on the timeline and in the post-mortem."""
    boss = svc.person("总经理 杜总", "leadership")
    stand_in = svc.person("助理 许", "customer_service")
    proposer = svc.person("技术 韩", "technical_support")
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    named = svc.cli_json("deputy", "add", "助理 许", "--role", "leadership", "--until", until, token=boss)
    assert (named["principal"], named["deputy"], named["role"]) == ("总经理 杜总", "助理 许", "leadership")
    assert named["id"] in [d["id"] for d in svc.cli_json("deputy", "list")["deputies"]]

    inc = _l1_at_approval(svc, "PEOPLE-DEP-1", proposer)
    assert svc.cli_json("approve", inc, token=stand_in)["approved"] is True
    shown = svc.wait_for_point(inc, "confirmation-1")
    approved = next(e for e in shown["timeline"] if e["event"] == "solution_approved")
    assert approved["by"] == "助理 许 (leadership)" and "代理 总经理 杜总" in approved["detail"]
    postmortem = svc.api("GET", f"/api/incidents/{inc}/postmortem", params={"lang": "zh"})
    assert postmortem.status_code == 200 and "代理 总经理 杜总" in postmortem.text

    svc.cli_json("deputy", "end", str(named["id"]), token=boss)
    later = _l1_at_approval(svc, "PEOPLE-DEP-2", proposer)
    after = svc.cli("approve", later, check=False, token=stand_in)
    assert after.returncode == 2 and "没有可审批的角色" in after.stderr
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    svc.cli_json("deputy", "add", "助理 许", "--role", "leadership", "--from", future, "--until", until,
                 token=boss)  # fmt: skip
    before = svc.cli("approve", later, check=False, token=stand_in)
    assert before.returncode == 2  # the period has not begun
    audit = svc.cli_json("audit", later)["events"]
    outcomes = [(e["who"], e["outcome"]) for e in audit if e["action"] == "approve"]
    assert outcomes.count(("助理 许", "refused")) == 2


def test_a_deputy_is_refused_for_what_the_principal_proposed_and_bad_delegations(svc: Service) -> None:
    boss = svc.person("总经理 郭总", "leadership", "technical_support")
    stand_in = svc.person("助理 冯", "customer_service")
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    svc.cli_json("deputy", "add", "助理 冯", "--role", "leadership", "--until", until, token=boss)
    inc = _l1_at_approval(svc, "PEOPLE-DEP-3", boss)
    refused = svc.cli("approve", inc, check=False, token=stand_in)
    assert refused.returncode == 2 and "此方案正是" in refused.stderr
    cases = [
        (("deputy", "add", "无此人", "--role", "leadership", "--until", until), boss, "名录中没有“无此人”"),
        (("deputy", "add", "助理 冯", "--role", "legal", "--until", until), boss, "不具有角色“法务组”"),
        (("deputy", "add", "助理 冯", "--role", "leadership", "--until", until), svc.token, "principal"),
        (("deputy", "add", "助理 冯", "--role", "leadership", "--until", "2020-01-01T00:00:00+00:00"), boss,
         "ends_at"),
        (("deputy", "add", "助理 冯", "--role", "leadership", "--until", "soon"), boss, "ends_at"),
    ]  # fmt: skip
    for args, token, message in cases:
        bad = svc.cli(*args, check=False, token=token)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, (args, bad.stderr)
        assert message in bad.stderr, (args, bad.stderr)


def test_a_customers_contact_is_revealed_to_customer_service_and_each_reveal_audited(svc: Service) -> None:
    inc = svc.cli_json(
        "report", "--category", "service_failure", "--summary", "师傅没来", "--service", "repair",
        "--region", "REVEAL-1", "--customer", "秦女士", "--contact", "13987654321",
    )["incident_id"]  # fmt: skip
    assert "13987654321" not in json.dumps(svc.show(inc))  # masked everywhere else, as before
    agent = svc.person("客服 甄", "customer_service")
    shown = svc.cli_json("reveal", inc, token=agent)
    assert [(c["customer"], c["contact"]) for c in shown["customers"]] == [("秦女士", "13987654321")]
    table = svc.cli("reveal", inc, token=agent).stdout
    assert "13987654321" in table and "秦女士" in table
    outsider = svc.person("公关 贾", "pr")
    refused = svc.cli("reveal", inc, check=False, token=outsider)
    assert refused.returncode == 2 and "无权查看客户完整联系方式" in refused.stderr
    assert svc.api("POST", f"/api/incidents/{inc}/reveal").status_code == 403  # the service token
    events = svc.cli_json("audit", inc)["events"]
    seen = [(e["who"], e["action"], e["outcome"], e.get("channel")) for e in events]
    assert seen.count(("客服 甄", "reveal", "ok", "api")) == 2
    assert ("公关 贾", "reveal", "refused", "api") in seen
    assert ("service token", "reveal", "refused", "api") in seen


def test_scoped_tokens_do_one_thing_each(svc: Service) -> None:
    intake_token = svc.cli_json("tokens", "add", "呼叫中心", "--scope", "intake", token=svc.token)["token"]
    metrics_token = svc.cli_json("tokens", "add", "prom", "--scope", "metrics", token=svc.token)["token"]
    body = {"category": "service_failure", "summary": "安装师傅迟到", "service": "install", "region": "TOK-1"}
    reported = svc.api("POST", "/api/feedback", token=intake_token, json=body)
    assert reported.status_code == 202 and reported.json()["feedback_id"].startswith("FB")
    for method, path in (("GET", "/api/incidents"), ("GET", "/metrics"), ("GET", "/api/people")):
        denied = svc.api(method, path, token=intake_token)
        assert denied.status_code == 403 and "scope is intake" in denied.json()["error"], path
    contact = svc.api("POST", f"/api/incidents/{reported.json()['incident_id']}/contact", token=intake_token,
                      json={"by": "脚本"})  # fmt: skip
    assert contact.status_code == 403
    assert svc.api("GET", "/metrics", token=metrics_token).status_code == 200
    assert svc.api("GET", "/api/metrics", token=metrics_token).status_code == 200
    assert svc.api("POST", "/api/feedback", token=metrics_token, json=body).status_code == 403
    forged = svc.api("POST", "/api/tokens", token=metrics_token, json={"name": "x", "scope": "intake"})
    assert forged.status_code == 403
    listed = svc.cli_json("tokens", "list", token=svc.token)["tokens"]
    assert {("呼叫中心", "intake"), ("prom", "metrics")} <= {(t["name"], t["scope"]) for t in listed}
    assert all("token" not in t for t in listed)
    person = svc.person("系统 管理员", "duty_manager")
    assert svc.cli("tokens", "add", "y", "--scope", "intake", check=False, token=person).returncode == 2
    bad = svc.cli("tokens", "add", "z", "--scope", "everything", check=False, token=svc.token)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    svc.cli_json("tokens", "remove", "呼叫中心", token=svc.token)
    assert svc.api("POST", "/api/feedback", token=intake_token, json=body).status_code == 401
    with sqlite3.connect(svc.home / "incident.db") as conn:
        hashes = [r[0] for r in conn.execute("SELECT token_hash FROM scoped_tokens")]
    assert hashes and all(h.startswith("$argon2id$") and metrics_token not in h for h in hashes)


def test_a_forged_resume_through_prefect_changes_nothing(svc: Service, prefect_api: str) -> None:
    reported = svc.cli_json(
        "report", "--category", "service_failure", "--summary", "师傅没来",
        "--service", "install", "--region", "forged-1", "--customer", "韩梅梅",
    )  # fmt: skip
    inc = reported["incident_id"]
    run_id = svc.wait_for_point(inc, "contact")["flow_run_id"]
    before = svc.show(inc)
    for _ in range(5):  # a busy Prefect on SQLite answers 503 (database locked); its own client retries too
        forged = httpx.post(f"{prefect_api}/flow_runs/{run_id}/resume", json={"run_input": {"by": "Mallory"}})
        if forged.status_code != 503:
            break
        time.sleep(1)
    assert forged.status_code < 300, forged.text
    shown = svc.wait_until(
        inc,
        lambda s: s.get("waiting_for") == "contact" and refused_resume(s),
        "the run waiting again at contact after the refused resume",
    )
    assert shown["status"] == before["status"] and shown["first_contact_at"] is None
    events = [e["event"] for e in shown["timeline"]]
    assert "contacted" not in events and events.count("resume_refused") == 1
    assert "Mallory" not in json.dumps(shown, ensure_ascii=False)
    svc.cli_json("contact", inc, "--by", "王芳")  # the real answer still moves the run on
    moved = svc.wait_for_point(inc, "measure")
    assert [e["by"] for e in moved["timeline"] if e["event"] == "contacted"] == ["王芳"]
    assert [e["event"] for e in moved["timeline"]].count("resume_refused") == 1  # replays record it once


def test_a_notice_to_a_role_reaches_its_peoples_own_url(svc: Service) -> None:
    svc.person("法务 冯", "legal", notify=(f"json://127.0.0.1:{svc.inbox.server.port}/person-feng",))
    reported = svc.cli_json(
        "report", "--category", "product_quality", "--summary", "battery fire",
        "--customer", "李雷", "--product-model", "Z1", "--batch", "NOTE-1", "--injury",
    )  # fmt: skip
    inc = reported["incident_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mine = [m for m in svc.inbox.for_incident(inc) if m["role"] == "person-feng"]
        if mine:
            break
        time.sleep(0.5)
    assert mine, "the legal person's own URL was not told"
    assert any(m["role"] == "legal" for m in svc.inbox.for_incident(inc))  # the roster's URL too


def test_no_token_in_clear_anywhere_in_the_database(svc: Service) -> None:
    made = [svc.person(f"扫描 {i}", "customer_service") for i in range(2)]
    tokens_seen = [*made, *svc.people.values()]
    # the secret part after "inc_<hex id>_" (it may itself contain "_": split once, from the left)
    secrets_only = [t.removeprefix("inc_").partition("_")[2] for t in tokens_seen]
    secrets_only.append(svc.token)  # the service token too
    with sqlite3.connect(svc.home / "incident.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                for (value,) in conn.execute(f'SELECT "{column}" FROM "{table}"'):
                    text = value if isinstance(value, str) else str(value)
                    for secret in secrets_only:
                        assert secret not in text, f"{table}.{column} holds a token"
    kept = svc.home / "api-token"
    assert not kept.exists() or kept.stat().st_mode & 0o077 == 0


def test_the_service_token_is_generated_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from incident.server import resolve_token, token_file

    monkeypatch.setenv("INCIDENT_HOME", str(tmp_path))
    monkeypatch.delenv("INCIDENT_API_TOKEN", raising=False)
    first, generated = resolve_token("127.0.0.1")
    assert generated and resolve_token("127.0.0.1")[0] == first  # a restart finds the same token
    assert token_file().read_text().strip() == first and token_file().stat().st_mode & 0o077 == 0
    monkeypatch.setenv("INCIDENT_API_TOKEN", "set-by-the-operator")
    assert resolve_token("127.0.0.1") == ("set-by-the-operator", False)


def test_a_rota_sends_a_roles_notices_to_who_is_on_duty_and_a_gap_to_everyone(db: str) -> None:
    """In process, through the roster every notice uses (notifiers/roster.py): rota, then a gap."""
    from incident.people import rotas
    from notifiers.roster import Roster, with_people

    for name, path in (("值班 甲", "jia"), ("值班 乙", "yi")):
        people.add(PersonIn(name=name, roles=["duty_manager"], notify=[f"json://127.0.0.1:9/{path}"]))
    manager = people.identify(people.add(PersonIn(name="排班 丙", roles=["duty_manager"]))["token"])
    assert manager is not None
    now = datetime.now(UTC)
    shift = rotas.ShiftIn(role="duty_manager", person="值班 甲", starts_at=now - timedelta(hours=1),
                          ends_at=now + timedelta(hours=7))  # fmt: skip
    later = shift.model_copy(update={"person": "值班 乙", "starts_at": shift.ends_at,
                                     "ends_at": shift.ends_at + timedelta(hours=8)})  # fmt: skip
    added = rotas.add_many(manager, [shift, later])

    def told() -> set[str]:
        channels = with_people(Roster(source=None)).for_role("duty_manager")
        return {c.redacted.split("?")[0].rsplit("/", 1)[-1] for c in channels}

    assert told() == {"jia"}  # 乙 holds the role but is not on duty
    assert rotas.who_is_on_duty("duty_manager") == [
        {"role": "duty_manager", "person": "值班 甲", "until": shift.ends_at.isoformat()}
    ]
    rotas.remove(manager, added[0]["id"])
    assert told() == {"jia", "yi"}  # a gap in the rota silences nobody
    with pytest.raises(BadInput, match="not in the directory with role"):
        rotas.add_many(manager, [shift.model_copy(update={"person": "排班 无"})])
    outsider = people.identify(people.add(PersonIn(name="客服 丁", roles=["customer_service"]))["token"])
    assert outsider is not None
    with pytest.raises(Forbidden, match="duty_manager manages duty rotas"):
        rotas.add_many(outsider, [shift])


def test_rota_commands_import_now_and_bad_files(svc: Service, tmp_path: Path) -> None:
    svc.person("夜班 钟", "cs_manager")
    svc.person("白班 林", "cs_manager")
    now = datetime.now(UTC).replace(microsecond=0)
    rota_csv = tmp_path / "rota.csv"
    at = [(now + timedelta(hours=h)).isoformat() for h in (-2, 6, 18)]
    rota_csv.write_text(
        f"角色,姓名,开始,结束\ncs_manager,夜班 钟,{at[0]},{at[1]}\ncs_manager,白班 林,{at[1]},{at[2]}\n",
        encoding="utf-8",
    )
    imported = svc.cli_json("rota", "import", str(rota_csv), token=svc.token)["shifts"]
    assert [s["person"] for s in imported] == ["夜班 钟", "白班 林"]
    assert [r["person"] for r in svc.cli_json("rota", "now", "cs_manager")["on_duty"]] == ["夜班 钟"]
    assert "夜班 钟" in svc.cli("rota", "now").stdout
    broken = tmp_path / "broken.csv"
    broken.write_text("role,person,starts_at,ends_at\ncs_manager,夜班 钟,yesterday,x\n", encoding="utf-8")
    bad = svc.cli("rota", "import", str(broken), check=False, token=svc.token)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "第 2 行：starts_at" in bad.stderr
    for shift in imported:
        svc.cli_json("rota", "remove", str(shift["id"]), token=svc.token)
    assert svc.cli_json("rota", "now", "cs_manager")["on_duty"] == []

"""Console sessions against a real ``incident serve`` of this module's own: logout revokes on the server,
a removed person's session ends, the cookie never carries a token, a system's token opens none, and login
is rate-limited per address and token tried.

A service of its own because it trusts a proxy (``INCIDENT_TRUSTED_PROXIES=127.0.0.1``): the tests speak
as clients behind it with ``X-Forwarded-For``, each from an address of its own, so the limit they reach
locks out no other test.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest

from tests.conftest import Inbox, Service, start_service, stop_service
from tests.test_console import browser, csrf


@pytest.fixture(scope="module")
def own(prefect_api: str, inbox: Inbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    proxied = {"INCIDENT_TRUSTED_PROXIES": "127.0.0.1"}
    service = start_service(tmp_path_factory.mktemp("sessions"), prefect_api, inbox, extra_env=proxied)
    yield service
    stop_service(service)


def _audit(service: Service) -> list[tuple[str, str, str, str | None]]:
    events = service.cli_json("audit")["events"]
    return [(e["who"], e["action"], e["outcome"], e.get("channel")) for e in events]


def test_logout_revokes_the_session_on_the_server(own: Service) -> None:
    token = own.person("值班 周", "duty_manager")
    with closing(browser(own, token=token)) as first:
        cookie = first.cookies.get("incident_session")
        assert cookie and cookie.startswith("ses_") and token not in cookie  # a session, not the token
        copy = httpx.Client(base_url=own.url, cookies={"incident_session": cookie}, timeout=30)
        assert copy.get("/").status_code == 200 and copy.get("/api/incidents").status_code == 200
        board = first.get("/")
        out = first.post("/logout", data={"csrf": csrf(board.text)})
        assert out.status_code == 303 and 'incident_session=""' in out.headers["set-cookie"]
        assert copy.get("/").status_code == 303  # the copied cookie died with the logout
        assert copy.get("/api/incidents").status_code == 401
        copy.close()
    seen = _audit(own)
    assert ("值班 周", "login", "ok", "console") in seen and ("值班 周", "logout", "ok", "console") in seen
    with sqlite3.connect(own.home / "incident.db") as conn:
        stored = [r[0] for r in conn.execute("SELECT secret_hash FROM console_sessions")]
    assert stored and cookie not in stored and all(len(h) == 64 for h in stored)  # only hashes kept


def test_a_removed_person_loses_their_open_session(own: Service) -> None:
    token = own.person("临时 吴", "customer_service")
    with closing(browser(own, token=token)) as client:
        assert client.get("/").status_code == 200
        own.cli_json("people", "remove", "临时 吴", token=own.token)
        assert client.get("/").status_code == 303


def test_the_console_reveals_contacts_to_customer_service_only_and_audits_it(own: Service) -> None:
    inc = own.cli_json(
        "report", "--category", "service_failure", "--summary", "快递没到", "--service", "delivery",
        "--region", "REVEAL-C", "--customer", "白先生", "--contact", "bai@example.com",
    )["incident_id"]  # fmt: skip
    agent, outsider = own.person("客服 邹", "customer_service"), own.person("法务 喻", "legal")
    with closing(browser(own, token=agent)) as client:
        page = client.get(f"/incidents/{inc}")
        assert "bai@example.com" not in page.text and 'action="/incidents/' in page.text
        shown = client.post(f"/incidents/{inc}/reveal", data={"csrf": csrf(page.text)})
        assert shown.status_code == 200 and "bai@example.com" in shown.text
        assert shown.headers["cache-control"] == "no-store"
        forged = client.post(f"/incidents/{inc}/reveal", data={"csrf": "0" * 64})
        assert forged.status_code == 403 and "bai@example.com" not in forged.text
    with closing(browser(own, token=outsider)) as client:
        page = client.get(f"/incidents/{inc}")
        refused = client.post(f"/incidents/{inc}/reveal", data={"csrf": csrf(page.text)})
        assert refused.status_code == 403 and "bai@example.com" not in refused.text
    reveals = [e for e in _audit_of(own, inc) if e[1] == "reveal"]
    assert reveals == [("客服 邹", "reveal", "ok", "console"), ("法务 喻", "reveal", "refused", "console")]


def test_the_audit_page_lists_logins_and_reveals_for_the_leads_only(own: Service) -> None:
    lead = own.person("主管 戚", "cs_manager")
    with closing(browser(own, token=lead)) as client:
        page = client.get("/audit")
        assert page.status_code == 200 and "主管 戚" in page.text and "login" in page.text
        assert "reveal" in page.text  # the reveals of the test above, with their channel
        hostile = client.get("/audit", params={"incident": "<script>x</script>"})
        assert hostile.status_code == 200 and "<script>x</script>" not in hostile.text
    with closing(browser(own, token=own.person("客服 卫", "customer_service"))) as client:
        assert client.get("/audit").status_code == 403


def test_the_people_page_adds_and_removes_for_the_service_token_only(own: Service) -> None:
    with closing(browser(own)) as admin:  # the service token's session
        page = admin.get("/people")
        assert page.status_code == 200 and 'id="people-form"' in page.text
        form = {"csrf": csrf(page.text), "name": "网页 新人", "roles": "customer_service pr"}
        added = admin.post("/people", data=form)
        token = re.search(r"<code>(inc_[^<]+)</code>", added.text)
        assert added.status_code == 201 and token, added.text[-500:]
        assert own.api("GET", "/api/incidents", token=token[1]).status_code == 200  # a working token
        bad = admin.post("/people", data={**form, "name": "网页 错", "roles": "boss"})
        assert bad.status_code == 422 and "boss" in bad.text
        gone = admin.post("/people", data={"csrf": form["csrf"], "remove": "网页 新人"})
        assert gone.status_code == 303
        assert own.api("GET", "/api/incidents", token=token[1]).status_code == 401
    person = own.person("只读 秦", "customer_service")
    with closing(browser(own, token=person)) as reader:
        page = reader.get("/people")
        assert page.status_code == 200 and 'id="people-form"' not in page.text
        refused = reader.post("/people", data={"csrf": csrf(page.text), "name": "x", "roles": "pr"})
        assert refused.status_code == 403
    names = [p["name"] for p in own.cli_json("people", "list")["people"]]
    assert "网页 错" not in names and "x" not in names and "网页 新人" not in names


def _audit_of(service: Service, incident_id: str) -> list[tuple[str, str, str, str | None]]:
    events = service.cli_json("audit", incident_id)["events"]
    return [(e["who"], e["action"], e["outcome"], e.get("channel")) for e in events]


def test_the_console_language_switch_is_remembered_and_follows_the_browser(own: Service) -> None:
    """?lang= is remembered in a cookie; else Accept-Language;
    else INCIDENT_LANG (zh by default)."""
    with closing(browser(own)) as client:
        board = client.get("/")
        assert '<html lang="zh-CN">' in board.text and "未结事件" in board.text
        switched = client.get("/", params={"lang": "en"})
        assert "incident_lang=en" in switched.headers["set-cookie"] and '<html lang="en">' in switched.text
        assert "Open incidents" in client.get("/").text  # remembered on the next page
        assert "未结事件" in client.get("/", params={"lang": "zh"}).text
    with closing(browser(own)) as english:
        english.headers["accept-language"] = "en-GB,en;q=0.9,zh-CN;q=0.5"
        assert "Open incidents" in english.get("/").text
        english.headers["accept-language"] = "zh-CN,zh;q=0.9,en;q=0.8"
        assert "未结事件" in english.get("/").text


def test_accept_language_is_read_by_q_order() -> None:
    from incident.console.language import from_accept

    assert from_accept("en-US;q=0.4, zh-CN;q=0.9") == "zh"
    assert from_accept("fr, en;q=0.5") == "en" and from_accept("fr, de") is None
    assert from_accept("zh;q=0, en;q=0.1") == "en" and from_accept("en;q=abc, zh") == "zh"


def _login(client: httpx.Client, token: str, address: str) -> int:
    form = {"token": token, "next": "/"}
    return client.post("/login", data=form, headers={"X-Forwarded-For": address}).status_code


def test_login_is_limited_per_address_and_token_tried_and_refusals_are_audited(own: Service) -> None:
    colleague = own.person("值班 何", "duty_manager")
    with httpx.Client(base_url=own.url, timeout=30) as anon:
        codes = [_login(anon, f"guess-{i}", "198.51.100.7") for i in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
        locked = anon.post("/login", data={"token": own.token}, headers={"X-Forwarded-For": "198.51.100.7"})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0  # the same key
        assert "incident_session" not in locked.headers.get("set-cookie", "")
        assert _login(anon, colleague, "198.51.100.7") == 303  # behind the same proxy, their own token
        assert _login(anon, own.token, "198.51.100.8") == 303  # another client address
    refused = [
        e for e in own.cli_json("audit")["events"] if e["action"] == "login" and e["outcome"] == "refused"
    ]
    mine = [e for e in refused if e["address"] == "198.51.100.7"]
    assert len(mine) == 13 and all(e["channel"] == "console" for e in mine)


def test_a_right_login_clears_the_count_of_its_token(own: Service) -> None:
    token = own.person("值班 柏", "duty_manager")
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # the same id, a wrong secret
    with httpx.Client(base_url=own.url, timeout=30) as anon:
        assert [_login(anon, wrong, "198.51.100.20") for _ in range(9)] == [401] * 9
        assert _login(anon, token, "198.51.100.20") == 303
        assert [_login(anon, wrong, "198.51.100.20") for _ in range(9)] == [401] * 9  # not 429: reset


def test_a_systems_token_opens_no_console_session(own: Service) -> None:
    metrics = own.cli_json("tokens", "add", "prom-console", "--scope", "metrics", token=own.token)["token"]
    with httpx.Client(base_url=own.url, timeout=30) as anon:
        refused = anon.post(
            "/login", data={"token": metrics, "next": "/"}, headers={"X-Forwarded-For": "198.51.100.30"}
        )
        assert refused.status_code == 401 and "incident_session" not in refused.headers.get("set-cookie", "")
        assert anon.get("/people").status_code == 303  # still not logged in: back to the login form
    events = [e for e in own.cli_json("audit")["events"] if e["who"] == "prom-console (metrics token)"]
    assert [(e["action"], e["outcome"]) for e in events] == [("login", "refused")]
    assert "cannot open a console session" in events[0]["detail"]

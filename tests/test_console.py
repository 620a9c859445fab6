"""The web console over plain HTTP against the real ``incident serve``: login, escaping, forms, records.

The service, its Prefect runs and the console are the real ones; the console's forms must behave exactly
like the CLI (same checks, same timeline events) and resume the same Prefect run.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Service

HOSTILE = "{{ 7*7 }} <script>alert(1)</script> 请回电 13812345678"
EN = {"Accept-Language": "en"}  # a browser that prefers English (no ?lang: nothing is remembered)


def browser(service: Service, login: bool = True, token: str | None = None) -> httpx.Client:
    """A cookie-keeping client, logged in through the form like a person would (``token``: a person's;
    else the service token)."""
    client = httpx.Client(base_url=service.url, follow_redirects=False, timeout=30)
    if login:
        response = client.post("/login", data={"token": token or service.token, "next": "/"})
        assert response.status_code == 303, response.text
    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, "the page has no CSRF field"
    return found[1]


def events(service: Service, incident_id: str) -> list[dict[str, Any]]:
    return service.show(incident_id)["timeline"]


def board_row(client: httpx.Client, incident_id: str) -> str:
    found = re.search(rf'<tr [^>]*data-incident="{incident_id}">.*?</tr>', client.get("/").text, re.S)
    return found[0] if found else ""


def report(service: Service, *args: str) -> str:
    tag = uuid.uuid4().hex[:8]
    return service.cli_json("report", "--region", f"r-{tag}", "--service", f"s-{tag}", *args)["incident_id"]


@pytest.fixture(scope="module")
def hostile(service: Service) -> str:
    """A level-3 incident whose summary tries template injection, markup and a raw phone number."""
    return report(service, "--category", "service_failure", "--summary", HOSTILE, "--customer", "李四")


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    logged_in = browser(service)
    yield logged_in
    logged_in.close()


def test_login_sets_an_http_only_cookie_that_the_api_accepts(service: Service) -> None:
    with browser(service, login=False) as anon:
        assert anon.get("/").headers["location"] == "/login"
        form = anon.get("/login")
        assert form.status_code == 200 and 'name="token"' in form.text and 'type="password"' in form.text

        wrong = anon.post("/login", data={"token": "guess", "next": "/"})
        assert wrong.status_code == 401 and "令牌错误。" in wrong.text and '<html lang="zh-CN">' in wrong.text
        assert "incident_session" not in wrong.headers.get("set-cookie", "")
        english = anon.post("/login", data={"token": "guess", "next": "/"}, headers=EN)
        assert "Wrong token." in english.text and '<html lang="en">' in english.text  # an English browser

        right = anon.post("/login", data={"token": service.token, "next": "/closed"})
        assert right.status_code == 303 and right.headers["location"] == "/closed"
        cookie = right.headers["set-cookie"]
        assert cookie.startswith("incident_session=ses_") and service.token not in cookie
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie

        board = anon.get("/")
        assert board.status_code == 200 and "<h1>未结事件 " in board.text and 'lang="zh-CN"' in board.text
        assert "default-src 'self'" in board.headers["content-security-policy"]
        assert anon.get("/api/incidents").status_code == 200  # the API takes the console's cookie

        out = anon.post("/logout", data={"csrf": csrf(board.text)})
        assert out.status_code == 303 and 'incident_session=""' in out.headers["set-cookie"]
        assert anon.get("/").status_code == 303  # the browser dropped the cookie

    with browser(service, login=False) as anon:
        evil = anon.post("/login", data={"token": service.token, "next": "//evil.example/x"})
        assert evil.headers["location"] == "/"  # no open redirect


def test_console_pages_and_forms_need_the_login(service: Service, hostile: str) -> None:
    with browser(service, login=False) as anon:
        for path in (
            f"/incidents/{hostile}",
            f"/incidents/{hostile}/postmortem?lang=en",
            f"/incidents/{hostile}/records/level_determination",
            f"/incidents/{hostile}/records/level_determination/download",
            "/closed",
            "/charts/monthly",
        ):
            response = anon.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=%2F"), path
        login_page = anon.get("/login")
        assert 'name="csrf" value="' not in login_page.text  # the CSRF value is never shown to strangers
        posted = anon.post(f"/incidents/{hostile}/contact", data={"by": "intruder"})
        assert posted.status_code == 303 and posted.headers["location"].startswith("/login")
        for guess in ("guess", "ses_guess", service.token):  # a cookie must hold a session, not a token
            assert anon.get("/", cookies={"incident_session": guess}).status_code == 303
    assert not any(e["by"] == "intruder" for e in events(service, hostile))


def test_customer_text_is_shown_literally_and_escaped(
    service: Service, hostile: str, client: httpx.Client
) -> None:
    escaped = html.escape("<script>alert(1)</script>", quote=False)
    row = board_row(client, hostile)
    assert "{{ 7*7 }}" in row and escaped in row and "138****5678" in row
    board = client.get("/").text
    assert "<script>" not in board and "13812345678" not in board

    page = client.get(f"/incidents/{hostile}")
    summary = re.search(r'<p class="summary-text" id="summary">(.*?)</p>', page.text, re.S)
    assert summary and summary[1] == html.escape(HOSTILE.replace("13812345678", "138****5678"), quote=True)
    assert "<script>" not in page.text and ">49<" not in page.text

    reader = client.get(f"/incidents/{hostile}/postmortem?lang=en")
    assert reader.status_code == 200 and "{{ 7*7 }}" in reader.text
    assert "<script>" not in reader.text and "13812345678" not in reader.text


def test_board_shows_level_time_left_customers_and_waiting_point(
    service: Service, hostile: str, client: httpx.Client
) -> None:
    service.wait_for_point(hostile, "contact")
    deadline = time.monotonic() + 30
    while 'data-waiting="contact"' not in (row := board_row(client, hostile)):
        assert time.monotonic() < deadline, f"the board never showed the waiting point: {row}"
        time.sleep(0.5)  # the board reuses Prefect's answer for up to 5 s
    assert row.startswith('<tr class="level3" ')
    cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[0] == "三级" and cells[2] == "服务失误类" and cells[4] == "1"  # zh by default
    assert cells[5].startswith("首次联系客户")
    assert re.fullmatch(r"剩余 (1 小时 )?\d+ 分钟|剩余 [12] 小时", cells[6]), cells[6]
    assert cells[7] == "首次联系客户（道歉、说明、询问需求、承诺时间）"
    assert '<a href="/closed">已结事件</a>' in client.get("/").text


def test_form_actions_record_who_did_it_and_redirect_with_a_flash(
    service: Service, hostile: str, client: httpx.Client
) -> None:
    token = csrf(client.get(f"/incidents/{hostile}").text)
    forged = client.post(f"/incidents/{hostile}/contact", data={"by": "forger"})
    assert forged.status_code == 403 and "表单已过期" in forged.text
    blank = client.post(f"/incidents/{hostile}/contact", data={"by": " ", "csrf": token})
    assert blank.status_code == 422 and "（by）：必填" in blank.text
    assert not any(e["event"] == "contacted" for e in events(service, hostile))

    done = client.post(f"/incidents/{hostile}/contact", data={"by": "李雷", "note": "道歉", "csrf": token})
    assert done.status_code == 303 and done.headers["location"] == f"/incidents/{hostile}"
    page = client.get(done.headers["location"])
    assert 'id="flash">已记录首次联系（李雷，按时）。流程已继续。' in page.text or (
        'id="flash">已记录首次联系（李雷，按时）。</div>' in page.text
    )
    contact_row = re.search(r'<tr class="event-contacted".*?</tr>', page.text, re.S)
    assert contact_row and "首次联系" in contact_row[0] and "first contact" not in contact_row[0]
    assert 'name="by" value="李雷"' in page.text  # the console remembers who is at the keyboard
    assert 'id="flash"' not in client.get(f"/incidents/{hostile}").text  # shown once
    contacted = [e for e in events(service, hostile) if e["event"] == "contacted"]
    assert [(e["by"], e["detail"]) for e in contacted] == [("李雷", "first contact")]  # as scripts read it
    assert contacted[0]["data"]["first"] is True and contacted[0]["data"]["on_time"] is True  # the codes
    service.wait_for_point(hostile, "measure")  # the Prefect run moved on from "contact"

    wrong_kind = client.post(
        f"/incidents/{hostile}/measure", data={"by": "李雷", "kind": "recall", "csrf": token}
    )
    assert wrong_kind.status_code == 422 and "临时措施“recall”不适用于服务失误类" in wrong_kind.text
    wrong_kind = client.post(
        f"/incidents/{hostile}/measure", data={"by": "李雷", "kind": "recall", "csrf": token}, headers=EN
    )
    assert (
        wrong_kind.status_code == 422
        and "measure &#39;recall&#39; is not for service_failure" in wrong_kind.text
    )
    measured = client.post(
        f"/incidents/{hostile}/measure", data={"by": "韩梅梅", "kind": "coupon", "csrf": token}
    )
    assert measured.status_code == 303
    assert [e["by"] for e in events(service, hostile) if e["event"] == "measure_taken"] == ["韩梅梅"]


def test_approval_with_a_wrong_role_is_refused_then_the_right_role_resumes_the_run(
    service: Service,
) -> None:
    """Logged in as a department head: a role they do not hold is refused and recorded, theirs approves."""
    inc = report(
        service, "--category", "service_failure", "--summary", "technician missed", "--customers", "20"
    )
    for point, command in (
        ("contact", ("contact", "--by", "王芳")),
        ("measure", ("measure", "--kind", "expedite")),
        ("cause", ("cause", "--root", "no roster", "--direct", "double booking", "--stage", "service")),
        ("proposal-1", ("propose", "--solution", "train_staff")),
    ):
        service.wait_for_point(inc, point)
        service.cli_json(command[0], inc, *command[1:])
    service.wait_for_point(inc, "approval-1")
    client = browser(service, token=service.person("刘部长", "dept_head"))
    try:
        _approve_in_the_console(service, client, inc)
    finally:
        client.close()


def _approve_in_the_console(service: Service, client: httpx.Client, inc: str) -> None:
    page = client.get(f"/incidents/{inc}")
    assert '<details class="action" id="form-approve" open>' in page.text
    token = csrf(page.text)

    refused = client.post(
        f"/incidents/{inc}/approve",
        data={"by": "周", "role": "leadership", "decision": "approve", "csrf": token},
    )
    assert refused.status_code == 403
    said = "刘部长 不具有角色“应急领导小组”（二级事件的方案需要：部门负责人）"
    assert f'id="error">{said}</div>' in refused.text  # the refusal, in the page's language
    row = re.search(r'<tr class="event-approval_refused".*?</tr>', refused.text, re.S)
    assert row and said in row[0] and "leadership" not in row[0]  # and on the timeline, from its codes
    again = client.post(
        f"/incidents/{inc}/approve",
        data={"by": "周", "role": "leadership", "decision": "approve", "csrf": token},
        headers=EN,
    )
    assert again.status_code == 403
    assert "刘部长 does not hold role &#39;leadership&#39; (a level-2 solution needs dept_head)" in again.text
    assert 'data-event="approval_refused"' in refused.text
    refusal = [e for e in events(service, inc) if e["event"] == "approval_refused"]
    assert [e["by"] for e in refusal] == ["刘部长", "刘部长"]  # who is logged in, whatever the form said
    assert service.show(inc)["solutions"][0]["status"] == "pending"

    approved = client.post(
        f"/incidents/{inc}/approve",
        data={"by": "刘部长", "role": "dept_head", "decision": "approve", "csrf": token},
    )
    assert approved.status_code == 303
    flash = client.get(f"/incidents/{inc}").text
    assert "第 1 轮方案已由 刘部长（部门负责人）批准。" in flash
    shown = service.wait_for_point(inc, "confirmation-1")  # the same Prefect run moved on
    assert shown["solutions"][0]["decided_by"] == "刘部长"
    assert any(
        e["event"] == "solution_approved" and e["by"] == "刘部长 (dept_head)" for e in shown["timeline"]
    )
    deadline = time.monotonic() + 30
    while "<code>confirmation-1</code>" not in client.get(f"/incidents/{inc}").text:
        assert time.monotonic() < deadline, "the incident page never showed the next waiting point"
        time.sleep(0.3)


def test_incident_page_links_records_downloads_and_the_prefect_run(
    service: Service, hostile: str, client: httpx.Client, prefect_api: str
) -> None:
    shown = service.show(hostile)
    page = client.get(f"/incidents/{hostile}").text
    run_url = f"{prefect_api.removesuffix('/api')}/runs/flow-run/{shown['flow_run_id']}"
    assert f'href="{run_url}" id="prefect-link"' in page
    assert 'data-record="level_determination"' in page and 'data-record="customer_issue"' in page
    assert 'data-record="postmortem"' not in page  # not resolved yet: no post-mortem record to list
    pdfs = re.findall(r'<a href="([^"]+format=pdf)" class="pdf" download', page)
    assert pdfs, "the incident page links no PDF"
    pdf = client.get(html.unescape(pdfs[0]))  # with the console's session cookie, as the browser sends it
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")

    view = client.get(f"/incidents/{hostile}/records/level_determination?lang=en")
    assert view.status_code == 200 and "Level determination form" in view.text and 'lang="en"' in view.text
    zh = client.get(f"/incidents/{hostile}/records/level_determination?lang=zh")
    assert "事件等级判定表" in zh.text and 'lang="zh-CN"' in zh.text

    md = client.get(f"/incidents/{hostile}/records/customer_issue/download?lang=zh")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.headers["content-disposition"] == f'attachment; filename="{hostile}-customer_issue.zh.md"'
    assert md.text.startswith("# ") and "客户问题信息表" in md.text and "13812345678" not in md.text

    reader = client.get(f"/incidents/{hostile}/postmortem?lang=zh")
    assert '<a href="/incidents/' + hostile + '/postmortem?lang=en"' in reader.text
    assert "复盘报告" in reader.text and 'aria-current="page" id="lang-zh"' in reader.text

    assert client.get("/incidents/INC19990101999").status_code == 404
    assert client.get(f"/incidents/{hostile}/records/nonsense").status_code == 404


def test_monthly_chart_page(client: httpx.Client) -> None:
    page = client.get("/charts/monthly")
    assert page.status_code == 200 and "<h1>月度复盘</h1>" in page.text and '<html lang="zh-CN">' in page.text
    english = client.get("/charts/monthly", headers=EN)
    assert "<h1>Monthly review</h1>" in english.text and '<html lang="en">' in english.text
    png = client.get("/charts/monthly.png?months=6")
    if 'id="chart-placeholder"' in page.text:
        assert png.status_code == 404
    else:
        assert 'src="/charts/monthly.png?months=12&amp;lang=zh"' in page.text and "识别的事件" in page.text
        assert "Incidents identified" in english.text and "lang=en" in english.text
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
        zh, en = (
            client.get("/charts/monthly.png?months=6&lang=zh"),
            client.get("/charts/monthly.png?months=6&lang=en"),
        )
        assert zh.content != en.content  # the words of the chart follow the language


def test_time_left_words(monkeypatch: pytest.MonkeyPatch) -> None:
    from incident.console.board import time_left

    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert time_left(now - timedelta(hours=1, minutes=5), now) == ("已超时 1 小时 5 分钟", True)  # zh default
    assert time_left(now + timedelta(days=2, hours=4), now) == ("剩余 2 天 4 小时", False)
    monkeypatch.setenv("INCIDENT_LANG", "en")
    assert time_left(now + timedelta(minutes=12, seconds=30), now) == ("12 min left", False)
    assert time_left(now - timedelta(minutes=5, seconds=10), now) == ("overdue by 5 min", True)
    assert time_left(now + timedelta(hours=3, minutes=5), now) == ("3 h 5 min left", False)
    assert time_left(now - timedelta(days=2, hours=4), now) == ("overdue by 2 d 4 h", True)
    assert time_left(now + timedelta(seconds=20), now) == ("0 min left", False)


def test_board_order_is_next_deadline_first_overdue_first(db: str) -> None:
    from incident.console.board import open_rows
    from incident.feedback import service as intake
    from incident.feedback.inputs import FeedbackIn

    start = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

    def opened(minutes: int, **fields: Any) -> str:
        body = FeedbackIn(summary=f"case {minutes}", region=f"r{minutes}", **fields)
        return str(intake.record(body, now=start + timedelta(minutes=minutes)).incident_id)

    l3_early = opened(0, category="special_scenario", cause="storm")  # contact due 10:00
    l1_late = opened(60, category="product_quality", batch="b", customers=150)  # due 09:30
    l2 = opened(30, category="service_failure", service="delivery", customers=20)  # due 09:30
    rows = open_rows(now=start + timedelta(minutes=95))
    assert [r["incident_id"] for r in rows] == [l1_late, l2, l3_early]  # ties: the graver level first
    assert [r["left"] for r in rows] == ["已超时 5 分钟", "已超时 5 分钟", "剩余 25 分钟"]
    assert [r["is_overdue"] for r in rows] == [True, True, False]

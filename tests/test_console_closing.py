"""The console's post-mortem meeting, sign-off and improvement actions, over HTTP against the real
``incident serve``: the same services and authority as ``incident meeting|signoff|actions``, CSRF and
the session's actor, Chinese by default and English with the console's language, customer text escaped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Service
from tests.test_console import browser, csrf, events, report
from tests.test_console_browser import CHROMEDRIVER, CHROMIUM, driver, follow, text  # noqa: F401 (driver: a fixture)

TAG = uuid.uuid4().hex[:6]
QC, LEAD, OUTSIDER, OWNER = f"质检王芳{TAG}", f"刘经理{TAG}", f"路人{TAG}", f"小李{TAG}"


@pytest.fixture(scope="module")
def resolved(service: Service) -> str:
    """A level-3 service failure handled to the customer's satisfaction (resolved, the survey pending)."""
    inc = report(service, "--category", "service_failure", "--summary", "安装师傅爽约 <b>两次</b>")
    shown = service.show(inc)
    assert shown["level"] == 3 and shown["lead"] == "cs_manager"
    for step, body in (
        ("contact", {"by": "王芳"}),
        ("measure", {"kind": "expedite"}),
        ("cause", {"root": "排班冲突", "direct": "重复派单", "stage": "service"}),
        ("propose", {"solution": "train_staff"}),
        ("approve", {"by": "部长", "role": shown["approver"]}),
        ("confirm", {"result": "satisfied"}),
    ):
        answer = service.api("POST", f"/api/incidents/{inc}/{step}", json=body)
        assert answer.status_code == 200, (step, answer.text)
    assert service.show(inc)["resolved_at"]
    for name, role in (
        (QC, "quality_control"),
        (LEAD, "cs_manager"),
        (OUTSIDER, "pr"),
        (OWNER, "customer_service"),
    ):
        service.person(name, role)
    return inc


@contextmanager
def logged_in(service: Service, token: str | None = None) -> Iterator[httpx.Client]:
    client = browser(service, token=token)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def as_qc(service: Service) -> Iterator[httpx.Client]:
    with logged_in(service, service.person(QC, "quality_control")) as client:
        yield client


def flash(client: httpx.Client, response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:2000]
    found = re.search(r'id="flash">([^<]*)<', client.get(response.headers["location"]).text)
    assert found, "no flash after the redirect"
    return found[1]


def test_meeting_then_sign_off_by_the_lead_only_then_an_action_added(
    service: Service, resolved: str, as_qc: httpx.Client
) -> None:
    inc = resolved
    page = as_qc.get(f"/incidents/{inc}").text
    assert '<details class="action" id="form-meeting" open>' in page and "记录复盘会议" in page
    assert (
        'id="nav-actions">改进措施</a>' in page
        and 'name="by"' not in page.split('id="form-meeting"')[1][:600]
    )
    token = csrf(page)
    form = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "participants": f"{QC}、<b>供应商 张工</b>",
        "findings": "来料检验缺失\n<script>alert(1)</script>",
        "went_well": "5 分钟内联系客户",
        "decisions": "来料检验纳入每批次",
        "actions": f"process:{OWNER}:14d:排班规则复核\ntraining:{QC}:2026-12-31:培训客服",
    }
    forged = as_qc.post(f"/incidents/{inc}/meeting", data=form)
    assert forged.status_code == 403 and "表单已过期" in forged.text
    bad_at = as_qc.post(f"/incidents/{inc}/meeting", data={**form, "at": "明天", "csrf": token})
    assert bad_at.status_code == 422 and "会议时间应为日期和时间" in bad_at.text
    bad_line = as_qc.post(f"/incidents/{inc}/meeting", data={**form, "actions": "做点什么", "csrf": token})
    assert bad_line.status_code == 422 and "改进措施第 1 行“做点什么”应写作" in bad_line.text
    assert service.show(inc)["postmortem"] == "draft"  # nothing half-stored

    done = as_qc.post(f"/incidents/{inc}/meeting", data={**form, "csrf": token})
    assert flash(as_qc, done) == "复盘会议已记录，复盘报告已定稿（新增改进措施 2 项），待牵头人签发。"
    shown = service.show(inc)
    assert shown["postmortem"] == "final"
    assert [(p["name"], p["in_directory"]) for p in shown["meeting"]["participants"]] == [
        (QC, True),
        ("<b>供应商 张工</b>", False),
    ]
    assert [e["by"] for e in events(service, inc) if e["event"] == "meeting_held"] == [QC]
    page = as_qc.get(f"/incidents/{inc}").text
    assert "&lt;b&gt;供应商 张工&lt;/b&gt;" in page and "<b>供应商 张工</b>" not in page
    assert (
        '<details class="action" id="form-signoff" open>' in page and "仅本级牵头人（客服经理）可签发" in page
    )

    refused = as_qc.post(f"/incidents/{inc}/signoff", data={"csrf": token})
    assert refused.status_code == 403 and f"{QC} 无权签发三级事件的复盘报告（需要：" in refused.text
    assert "may not" not in refused.text  # the console's language, not the raised English
    assert any(e["event"] == "action_refused" and e["by"] == QC for e in events(service, inc))
    with logged_in(service, service.person(LEAD, "cs_manager")) as lead:
        lead_token = csrf(lead.get(f"/incidents/{inc}").text)
        signed = lead.post(f"/incidents/{inc}/signoff", data={"note": "同意", "csrf": lead_token})
        assert flash(lead, signed) == f"复盘报告已由 {LEAD} 签发。"
        bad_due = lead.post(
            f"/incidents/{inc}/actions",
            data={"kind": "resources", "owner": OWNER, "due": "soon", "text": "x", "csrf": lead_token},
        )
        assert bad_due.status_code == 422 and "不是日期（2026-12-31）、ISO 时间或时长（14d）" in bad_due.text
        assert 'id="form-add-action" open' in bad_due.text
        added = lead.post(
            f"/incidents/{inc}/actions",
            data={
                "kind": "resources",
                "owner": OWNER,
                "due": "30d",
                "text": "备件库存加倍",
                "csrf": lead_token,
            },
        )
        assert re.fullmatch(r"已添加改进措施 ACT\d+。", flash(lead, added))
    shown = service.show(inc)
    assert shown["postmortem"] == "signed" and len(shown["actions"]) == 3
    english = as_qc.get(f"/incidents/{inc}?lang=en").text
    assert "Add an improvement action" in english and "Signed off" in english


def test_actions_page_filters_and_closes_with_evidence_by_the_owner(
    service: Service, resolved: str, as_qc: httpx.Client
) -> None:
    inc, text = resolved, f"排班规则复核 {uuid.uuid4().hex[:4]}"
    add = {"actions": [{"kind": "process", "owner": OWNER, "due": "14d", "text": text},
                       {"kind": "training", "owner": QC, "due": "14d", "text": "培训"}]}  # fmt: skip
    assert service.api("POST", f"/api/incidents/{inc}/actions", json=add).status_code == 201
    [mine] = [a for a in service.show(inc)["actions"] if a["text"] == text]
    listed = as_qc.get("/actions", params={"status": "open", "owner": OWNER})
    assert listed.status_code == 200 and "<h1>改进措施跟踪</h1>" in listed.text
    assert f'data-action="{mine["id"]}" data-status="open"' in listed.text and "流程优化" in listed.text
    assert f'<option value="{OWNER}" selected>' in listed.text
    assert mine["id"] not in as_qc.get("/actions", params={"status": "done", "owner": OWNER}).text

    token = csrf(listed.text)
    back = f"status=open&owner={quote(OWNER)}"
    empty = as_qc.post(f"/actions/{mine['id']}/close", data={"evidence": " ", "csrf": token, "back": back})
    assert empty.status_code == 422 and "evidence" in empty.text
    with logged_in(service, service.person(OUTSIDER, "pr")) as outsider:
        page = outsider.get("/actions").text
        refused = outsider.post(f"/actions/{mine['id']}/close", data={"evidence": "done", "csrf": csrf(page)})
        assert (
            refused.status_code == 403 and f"{OUTSIDER} 无权关闭 {mine['id']}（可由其负责人" in refused.text
        )
        english = outsider.post(
            f"/actions/{mine['id']}/close?lang=en", data={"evidence": "done", "csrf": csrf(page)}
        )
        assert english.status_code == 403 and f"{OUTSIDER} may not close {mine['id']}" in english.text
    with logged_in(service, service.person(OWNER, "customer_service")) as owner:
        page = owner.get("/actions", params={"status": "open", "owner": OWNER}).text
        closed = owner.post(
            f"/actions/{mine['id']}/close",
            data={"evidence": "排班规则 V2 <已发布>", "csrf": csrf(page), "back": back},
        )
        assert closed.headers["location"] == f"/actions?status=open&owner={quote(OWNER)}"
        assert flash(owner, closed) == f"改进措施 {mine['id']} 已关闭。"
        done = owner.get("/actions", params={"status": "done", "owner": OWNER}).text
        assert f'data-action="{mine["id"]}" data-status="done"' in done
        assert "排班规则 V2 &lt;已发布&gt;" in done and f"{OWNER} 于 " in done
    with logged_in(service) as token_session:  # the service token is nobody who can vouch it is done
        page = token_session.get("/actions", params={"status": "open"}).text
        assert "关闭需以个人身份登录" in page and f'action="/actions/{mine["id"]}/close"' not in page
    english = as_qc.get("/actions?lang=en").text
    assert "<h1>Improvement actions</h1>" in english and 'id="nav-actions">Actions</a>' in english


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium and chromium-driver"
)
def test_an_owner_closes_an_action_in_chromium(service: Service, resolved: str, driver: Any) -> None:  # noqa: F811
    """One browser check: a zh-CN Chromium logs in as the owner and closes an action with evidence."""
    from selenium.webdriver.common.by import By

    add = {"actions": [{"kind": "product", "owner": OWNER, "due": "7d", "text": "更换连接器供应商"}]}
    made = service.api("POST", f"/api/incidents/{resolved}/actions", json=add).json()["actions"][0]["id"]
    driver.get(f"{service.url}/login?next=/actions%3Fstatus%3Dopen")
    driver.find_element(By.NAME, "token").send_keys(service.person(OWNER, "customer_service"))
    follow(driver, driver.find_element(By.CSS_SELECTOR, "#login-form button"))
    assert text(driver, "h1") == "改进措施跟踪"
    box = driver.find_element(By.ID, f"close-{made}")
    box.find_element(By.TAG_NAME, "summary").click()
    box.find_element(By.NAME, "evidence").send_keys("供应商切换单 SC-2026-118")
    follow(driver, box.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert text(driver, "#flash") == f"改进措施 {made} 已关闭。"
    assert [a["status"] for a in service.show(resolved)["actions"] if a["id"] == made] == ["done"]

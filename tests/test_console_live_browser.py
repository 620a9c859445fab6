"""The board, inbox and report form in real headless Chromium (issue 12, items 3–6).

A service of its own (so the board holds exactly this test's incidents): an L1 incident whose contact
deadline passed with nobody contacting it must lead the board, red, saying how long, and count in the
header; the filters and search narrow the board; a report made while the board is open arrives without
a reload (server-sent events); at 390 px the key columns fit without sideways scrolling; a report typed
in the form is refused in Chinese when it lacks a category, then lands in the inbox and is answered.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Inbox, Service, start_service, stop_service
from tests.test_console_browser import CHROMEDRIVER, CHROMIUM, follow, reload_until, screenshot, text
from tests.test_console_browser import driver as driver  # the fixture: headless Chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
    ),
]


@pytest.fixture(scope="module")
def live_service(
    prefect_api: str, inbox: Inbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("live-home"), prefect_api, inbox)
    yield svc
    stop_service(svc)


def report(svc: Service, **body: Any) -> str:
    response = svc.api("POST", "/api/feedback", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["incident_id"])


def contact_was_due(service: Service, incident_id: str, ago: timedelta) -> None:
    """Move the contact deadline into the past, as if the incident had been left alone that long."""
    due = (datetime.now(UTC) - ago).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(service.home / "incident.db", timeout=30) as db:
        changed = db.execute(
            "UPDATE deadlines SET due_at = ? WHERE incident_id = ? AND kind = 'contact'", (due, incident_id)
        ).rowcount
    assert changed == 1


def rows(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, "#board tbody tr[data-incident]"))


def board_ids(driver: Any) -> list[str]:
    """Read in one script: the live board may re-render its rows between a lookup and a read of each
    (a stale element)."""
    found = "document.querySelectorAll('#board tbody tr[data-incident]')"
    script = f"return [...{found}].map(r => r.dataset.incident)"
    return list(driver.execute_script(script))


def choose(driver: Any, **fields: str) -> None:
    """Fill the board's filter form (selects by value, the search box, the overdue box) and send it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    form = driver.find_element(By.ID, "filters")
    for name, value in fields.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        elif element.get_attribute("type") == "checkbox":
            if element.is_selected() != bool(value):
                element.click()
        else:
            element.clear()
            element.send_keys(value)
    follow(driver, driver.find_element(By.ID, "filter-button"))


def test_board_inbox_and_report_in_chromium(driver: Any, live_service: Service, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    service = live_service
    tag = uuid.uuid4().hex[:6]
    phone = {"customer": "张伟", "contact": "13812345678", "product_model": "P30", "batch": f"B-{tag}"}
    l1 = report(
        service, category="product_quality", summary="手机电池鼓包", customers=150, media=True, **phone
    )
    fridge = report(service, category="product_quality", summary="冰箱不制冷", product_model="F200",
                    batch=f"F-{tag}", customer="李娜", order=f"ORD-{tag}")  # fmt: skip
    late = report(service, category="service_failure", summary="20 单延迟未告知", service="delivery",
                  region=f"east-{tag}", customers=20, compensation_demand=True)  # fmt: skip
    assert [service.show(i)["level"] for i in (l1, fridge, late)] == [1, 3, 2]
    contact_was_due(service, l1, timedelta(hours=2, minutes=10))  # nobody called: 2 h 10 min overdue

    driver.get(service.url + "/login")
    driver.find_element(By.NAME, "token").send_keys(service.token)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "#login-form button"))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"  # zh by default

    # Overdue first, red, saying how long; the header counts it.
    reload_until(driver, lambda: board_ids(driver)[:1] == [l1] and len(rows(driver)) == 3, "the L1 on top")
    top = rows(driver)[0]
    assert "overdue" in top.get_attribute("class").split()
    left = top.find_element(By.CSS_SELECTOR, "td.left")
    assert left.text.startswith("已超时 2 小时"), left.text
    assert left.value_of_css_property("color") == "rgba(179, 38, 30, 1)"  # --bad
    assert text(driver, "#overdue-count") == "1 超时"
    assert board_ids(driver) == [l1, late, fridge]  # then the soonest deadline (L2 1 h, L3 2 h)
    screenshot(driver, tmp_path / "board-overdue.png")

    # Filters and search: a GET form, so the URL says what is shown.
    choose(driver, level="3")
    assert board_ids(driver) == [fridge] and "level=3" in driver.current_url
    follow(driver, driver.find_element(By.ID, "reset"))
    choose(driver, q=f"ORD-{tag}")
    assert board_ids(driver) == [fridge]
    choose(driver, q=f"B-{tag}")  # product/batch
    assert board_ids(driver) == [l1]
    choose(driver, q="", overdue="1")
    assert board_ids(driver) == [l1] and text(driver, "#shown-count") == "1"
    choose(driver, overdue="", category="service_failure")
    assert board_ids(driver) == [late]

    # The incident page: reports with contacts masked, PDF links, an owner assigned in the form.
    driver.get(f"{service.url}/incidents/{l1}")
    affected = text(driver, "#affected")
    assert "张伟" in affected and "138****5678" in affected and "13812345678" not in driver.page_source
    assert f"P30 / B-{tag}" in text(driver, "#products")
    pdf = driver.find_elements(By.CSS_SELECTOR, "#records a.pdf")
    assert pdf and "format=pdf" in pdf[0].get_attribute("href")
    owner = driver.find_element(By.CSS_SELECTOR, "#form-assign input[name=owner]")
    owner.send_keys("王芳")
    follow(driver, driver.find_element(By.ID, "assign-button"))
    assert text(driver, "#flash") == "负责人已设为 王芳" and text(driver, "#owner").startswith("王芳")
    driver.get(service.url + "/")
    choose(driver, owner="王芳")
    assert board_ids(driver) == [l1]

    # Live: a new report appears on the open board without a reload.
    driver.get(service.url + "/")
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.ID, "live-state").get_attribute("data-live") == "on"
    )
    driver.execute_script("window.__same_page = 42")
    started = time.monotonic()
    rain = report(service, category="special_scenario", summary="暴雨导致安装改期", cause="rainstorm",
                  region=f"north-{tag}")  # fmt: skip
    WebDriverWait(driver, 30).until(lambda d: rain in board_ids(d))
    arrived = time.monotonic() - started
    print(f"live update arrived {arrived:.2f} s after the report was accepted")
    assert driver.execute_script("return window.__same_page") == 42  # the same page, not reloaded
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-updated")
    assert arrived < 15, f"the live update took {arrived:.1f} s"

    # 390 px wide: no sideways scrolling; the key columns are on screen.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    driver.get(service.url + "/")
    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] <= 390, widths
    for row in rows(driver):
        for css in ("td:first-child", "td.id a", "td.deadline", "td.left"):
            cell = row.find_element(By.CSS_SELECTOR, css)
            box = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", cell)
            assert cell.is_displayed() and box["left"] >= 0 and box["right"] <= 390, (css, box)
    screenshot(driver, tmp_path / "board-390.png")
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # The report form: the API's checks, said in Chinese on the form; nothing stored on refusal.
    driver.get(service.url + "/report")
    driver.find_element(By.NAME, "summary").send_keys(f"希望 APP 增加夜间模式 {tag}")
    follow(driver, driver.find_element(By.ID, "report-button"))
    assert text(driver, "#report-error") == "请更正：类别（category）：必填"
    assert driver.find_element(By.NAME, "summary").get_attribute("value") == f"希望 APP 增加夜间模式 {tag}"
    Select(driver.find_element(By.NAME, "kind")).select_by_value("suggestion")
    Select(driver.find_element(By.NAME, "category")).select_by_value("product_quality")
    driver.find_element(By.NAME, "customer").send_keys("赵六")
    driver.find_element(By.NAME, "contact").send_keys("13912345678")
    follow(driver, driver.find_element(By.ID, "report-button"))
    assert driver.current_url == service.url + "/inbox" and text(driver, "#flash").startswith("已登记 FB")
    fb = text(driver, "#flash").split()[1]

    # The inbox: routed to the category's group, answered and closed from the page.
    row = driver.find_element(By.CSS_SELECTOR, f'#inbox tr[data-feedback="{fb}"]')
    assert "139****5678" in row.text and "13912345678" not in driver.page_source
    assert "质量" in row.find_elements(By.TAG_NAME, "td")[4].text  # quality_control, the playbook's
    row.find_element(By.TAG_NAME, "summary").click()
    row.find_element(By.NAME, "text").send_keys("已转产品团队评估，谢谢")
    row.find_element(By.CSS_SELECTOR, ".answer-form input[name=close]").click()
    follow(driver, row.find_element(By.CSS_SELECTOR, ".answer-button"))
    assert text(driver, "#flash") == f"{fb}: 已关闭"
    driver.get(service.url + "/inbox?status=closed")
    closed = driver.find_element(By.CSS_SELECTOR, f'#inbox tr[data-feedback="{fb}"]')
    assert "已转产品团队评估，谢谢" in closed.text and closed.get_attribute("data-status") == "closed"
    item = service.api("GET", f"/api/inbox/{fb}").json()
    assert item["status"] == "closed" and item["routed_to"] == "quality_control"
    screenshot(driver, tmp_path / "inbox.png")

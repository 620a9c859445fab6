"""The web console in real headless Chromium (Debian's chromium + chromium-driver, driven by selenium).

One incident of each level is reported through the CLI and the API; the browser logs in, reads the board,
approves the level-1 incident (a wrong role first, refused) and finishes it through the forms while the
real Prefect run moves on, then reads its post-mortem in Chinese and English. Screenshots of the board, the
incident page and the post-mortem (zh, the browser's language) go to the test's folder, and with
INCIDENT_SCREENSHOTS=1 also to docs/screenshots/. A second test switches the console's language.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, RUN_WAIT, Inbox, Service, start_service, stop_service

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
    ),
]
DOCS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def console_service(
    prefect_api: str, inbox: Inbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """A service of its own, so the board shows exactly this test's incidents (for the screenshots)."""
    svc = start_service(tmp_path_factory.mktemp("console-home"), prefect_api, inbox)
    yield svc
    stop_service(svc)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,900",
        "--lang=zh-CN",  # a Chinese team's browser: its Accept-Language picks the console's language
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    browser = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def reload_until(driver: Any, check: Callable[[], bool], what: str, timeout: float = RUN_WAIT) -> None:
    """Reload the page until ``check`` holds: the console is plain server-rendered HTML."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} on {driver.current_url}")
        time.sleep(0.5)
        driver.refresh()


def fill(driver: Any, form: str, **fields: str) -> None:
    """Fill the visible form ``#form-{form}``: text inputs, textareas and selects by name."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    box = driver.find_element(By.ID, f"form-{form}")
    if box.get_attribute("open") is None:
        box.find_element(By.TAG_NAME, "summary").click()
    for name, value in fields.items():
        element = box.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def follow(driver: Any, element: Any) -> None:
    """Click a link or button and wait until the next page has replaced this one."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")

    def replaced(_: Any) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:  # Chromium's answer while it tears the old document down
            return "does not belong to the document" in str(exc.msg)
        return False

    element.click()
    WebDriverWait(driver, 30).until(replaced)


def submit(driver: Any, form: str, button: str = "button[type=submit]") -> None:
    from selenium.webdriver.common.by import By

    follow(driver, driver.find_element(By.CSS_SELECTOR, f"#form-{form} {button}"))


def screenshot(driver: Any, path: Path, max_height: int = 1900) -> None:
    """The whole page (up to ``max_height`` CSS pixels), not only the window."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    if os.environ.get("INCIDENT_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / path.name)


def report_examples(service: Service) -> dict[str, str]:
    """Realistic open incidents of all three levels; the level-1 one is reported with the CLI."""
    tag = uuid.uuid4().hex[:6]
    main = service.cli_json(
        "report",
        "--category",
        "product_quality",
        "--summary",
        "手机电池鼓包，充电时发烫",
        "--customer",
        "张伟",
        "--contact",
        "13812345678",
        "--product-model",
        "P30",
        "--batch",
        f"B2026-11-{tag}",
        "--customers",
        "120",
        "--media",
        "--channel",
        "social",
    )
    bodies = {
        "l2_delivery": {
            "category": "service_failure",
            "summary": "20 单订单延迟发货未告知，客户要求赔偿",
            "service": "配送",
            "region": f"华东-{tag}",
            "customers": 20,
            "compensation_demand": True,
        },
        "l2_outage": {
            "category": "special_scenario",
            "summary": "华南地区官网宕机，客户无法下单",
            "cause": "官网宕机",
            "region": f"华南-{tag}",
            "outage": "regional",
        },
        "l3_fridge": {
            "category": "product_quality",
            "summary": "冰箱不制冷，仍可使用",
            "product_model": "F200",
            "batch": f"F-{tag}",
            "customer": "李娜",
        },
        "l3_rain": {
            "category": "special_scenario",
            "summary": "暴雨导致一单安装改期",
            "cause": "暴雨",
            "region": f"华北-{tag}",
        },
    }
    ids = {"main": main["incident_id"]}
    for name, body in bodies.items():
        response = service.api("POST", "/api/feedback", json=body)
        assert response.status_code == 202, response.text
        ids[name] = response.json()["incident_id"]
    service.wait_for_point(ids["l2_delivery"], "contact")
    service.cli_json("contact", ids["l2_delivery"], "--by", "客服小王")
    return ids


def test_console_in_chromium(driver: Any, console_service: Service, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    service = console_service
    ids = report_examples(service)
    inc = ids["main"]
    assert service.show(inc)["level"] == 1 and service.show(ids["l3_fridge"])["level"] == 3

    # Login: the board redirects to the form; a wrong token is a 401 page with a message.
    driver.get(service.url + "/")
    assert driver.current_url.endswith("/login")
    driver.find_element(By.NAME, "token").send_keys("not-the-token")
    follow(driver, driver.find_element(By.CSS_SELECTOR, "#login-form button"))
    assert text(driver, "#login-error") == "令牌错误。"  # the browser asks for zh-CN
    driver.find_element(By.NAME, "token").send_keys(service.person("陈总", "leadership"))  # a person's
    follow(driver, driver.find_element(By.CSS_SELECTOR, "#login-form button"))
    assert driver.current_url == service.url + "/"
    assert driver.execute_script("return document.cookie") == ""  # HttpOnly: scripts never see the token

    # Board: every incident with its level colour, time left and what its run waits for.
    def board_ready() -> bool:
        rows = driver.find_elements(By.CSS_SELECTOR, "#board tbody tr[data-incident]")
        waits = [r.find_elements(By.TAG_NAME, "td")[7].text for r in rows]
        return len(rows) == 5 and "—" not in waits

    reload_until(driver, board_ready, "five incidents with their waiting points")
    row = driver.find_element(By.CSS_SELECTOR, f'#board tr[data-incident="{inc}"]')
    badge = row.find_element(By.CSS_SELECTOR, ".lv")
    assert badge.text == "一级" and badge.value_of_css_property("background-color") == "rgba(198, 40, 40, 1)"
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[4] == "120" and cells[6].startswith("剩余") and cells[6].endswith("分钟")  # zh by default
    assert cells[7] == "首次联系客户（道歉、说明、询问需求、承诺时间）"
    levels = [r.get_attribute("class") for r in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")]
    assert {"level1", "level2", "level3"} <= {c.split()[0] for c in levels}
    screenshot(driver, tmp_path / "board.png")

    # The incident page; the CLI takes it to the approval point.
    follow(driver, row.find_element(By.LINK_TEXT, inc))
    assert text(driver, "#summary").startswith("手机电池鼓包")
    for point, command in (
        ("contact", ("contact", "--by", "王芳", "--note", "已致歉，今天送备用机")),
        ("measure", ("measure", "--kind", "spare_product")),
        (
            "cause",
            ("cause", "--root", "电池隔膜缺陷", "--direct", "电芯充电过热", "--stage", "production"),
        ),
        ("proposal-1", ("propose", "--solution", "replace")),
    ):
        service.wait_for_point(inc, point)
        service.cli_json(command[0], inc, *command[1:])
    reload_until(driver, lambda: "approval-1" in text(driver, "#waiting"), "the approval waiting point")

    # A role the person does not hold is refused (403 page) and recorded as them; theirs resumes the run.
    fill(driver, "approve", by="周经理", role="dept_head")
    submit(driver, "approve", "#approve-button")
    said = "陈总 不具有角色“部门负责人”（一级事件的方案需要：应急领导小组）"
    assert text(driver, "#error") == said
    refused = driver.find_elements(By.CSS_SELECTOR, '#timeline tr[data-event="approval_refused"]')
    assert [[td.text for td in r.find_elements(By.TAG_NAME, "td")[1:]] for r in refused] == [
        ["越权审批被拒", "陈总", said]
    ]
    assert service.show(inc)["waiting_for"] == "approval-1"

    fill(driver, "approve", by="陈总", role="leadership")
    submit(driver, "approve", "#approve-button")
    assert text(driver, "#flash").startswith("第 1 轮方案已由 陈总（应急领导小组）批准。")
    assert driver.current_url == f"{service.url}/incidents/{inc}"
    reload_until(driver, lambda: "confirmation-1" in text(driver, "#waiting"), "the confirmation point")
    assert service.show(inc)["waiting_for"] == "confirmation-1"
    decided = driver.find_element(By.CSS_SELECTOR, '#timeline tr[data-event="solution_approved"]')
    assert decided.text.endswith("陈总（应急领导小组） 第 1 轮：更换")  # codes said in words, no (leadership)
    screenshot(driver, tmp_path / "incident.png")

    # Finish it in the browser as the customer service agent: the confirmation, then the survey.
    driver.delete_all_cookies()
    driver.get(f"{service.url}/login?next=/incidents/{inc}")
    driver.find_element(By.NAME, "token").send_keys(service.person("王芳", "customer_service"))
    follow(driver, driver.find_element(By.CSS_SELECTOR, "#login-form button"))
    fill(driver, "confirm", by="王芳", result="satisfied")
    submit(driver, "confirm")
    reload_until(driver, lambda: "survey-1" in text(driver, "#waiting"), "the survey point")
    fill(driver, "survey", speed="5", result="5", attitude="4", suggestion="希望更早回电")
    submit(driver, "survey")
    assert "达标" in text(driver, "#flash")
    reload_until(driver, lambda: text(driver, "#status") == "已结案", "the incident to close")
    final = service.show(inc)
    assert final["status"] == "closed" and final["waiting_for"] is None
    by_event = {e["event"]: e["by"] for e in final["timeline"]}
    assert by_event["confirmed"] == "王芳" and by_event["solution_approved"] == "陈总 (leadership)"
    assert "复盘报告" in text(driver, "#records")

    # The post-mortem reader, in Chinese (the screenshot) then English; the console around it stays zh.
    follow(driver, driver.find_element(By.ID, "postmortem-link"))
    assert text(driver, "#document h1").startswith("复盘报告")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert driver.find_element(By.ID, "document").get_attribute("lang") == "zh-CN"
    assert "陈总" in text(driver, "#document") and "13812345678" not in driver.page_source
    driver.set_window_size(1100, 900)  # the report is a print-width page
    screenshot(driver, tmp_path / "postmortem.png")
    follow(driver, driver.find_element(By.ID, "lang-en"))
    assert text(driver, "#document h1").startswith("Post-mortem report")
    assert driver.find_element(By.ID, "document").get_attribute("lang") == "en"
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"  # the console's
    follow(driver, driver.find_element(By.ID, "lang-zh"))
    assert text(driver, "#document h1").startswith("复盘报告")

    assert (tmp_path / "board.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "postmortem.png").stat().st_size > 20_000
    assert (tmp_path / "incident.png").stat().st_size > 20_000


def test_language_switch_in_chromium(driver: Any, console_service: Service) -> None:
    """The header's switch: zh (the browser's) → English, remembered on the next page, <html lang> follows,
    the board's filters kept; and back."""
    from selenium.webdriver.common.by import By

    service = console_service
    driver.get(f"{service.url}/login?next=/%3Flevel%3D1")
    driver.find_element(By.NAME, "token").send_keys(service.token)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "#login-form button"))
    html = lambda: driver.find_element(By.TAG_NAME, "html").get_attribute("lang")  # noqa: E731
    assert driver.current_url.endswith("/?level=1") and html() == "zh-CN"
    assert text(driver, "h1").startswith("未结事件")

    follow(driver, driver.find_element(By.ID, "switch-en"))
    assert html() == "en" and text(driver, "h1").startswith("Open incidents")
    assert "level=1" in driver.current_url  # the filter survived the switch
    selected = driver.find_element(By.CSS_SELECTOR, "select[name=level] option:checked")
    assert selected.get_attribute("value") == "1"

    follow(driver, driver.find_element(By.LINK_TEXT, "Closed incidents"))  # the next page remembers
    assert driver.current_url == f"{service.url}/closed" and html() == "en"
    assert text(driver, "h1") == "Closed incidents"
    driver.get(f"{service.url}/charts/monthly")
    assert html() == "en" and text(driver, "h1") == "Monthly review"

    follow(driver, driver.find_element(By.ID, "switch-zh"))
    assert html() == "zh-CN" and text(driver, "h1") == "月度复盘"
    driver.get(f"{service.url}/closed")
    assert html() == "zh-CN" and text(driver, "h1") == "已结事件"

"""The knowledge-base push (issue 13 item 5) against local servers that implement Confluence Cloud's and
Notion's documented endpoints (tests/confluence_fake.py, tests/notion_fake.py name the pages followed).

Incidents are real: reported through intake, moved through the steps' service functions, closed, and
archived by ``keep_records`` (the flow's archive task); the push is ``incident.knowledge.service.push``
with an injected clock, as the worker's sweep calls it (tests/test_sweep_housekeeping.py runs the sweep).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from flows.notices import keep_records
from incident.feedback import service as intake
from incident.knowledge import notion as notion_api
from incident.knowledge import service
from incident.knowledge.pages import Body
from incident.knowledge.remote import Caller
from incident.meetings import service as meetings
from incident.people.service import Actor
from incident.response import service as steps
from models import Delivery, Incident, KnowledgePage, KnowledgeTarget, session_scope
from tests import confluence_fake, notion_fake
from tests.confluence_fake import FakeConfluence, fake_confluence, parse_storage
from tests.notion_fake import FakeNotion, fake_notion

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # November is over: its review is pushed, the quarter's not
HOSTILE = "客户原话 <script>alert(1)</script> & {{ 7*7 }}"
QC = Actor("王芳", ("quality_control",))


@pytest.fixture
def confluence(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeConfluence]:
    with fake_confluence() as fake:
        monkeypatch.setenv("INCIDENT_CONFLUENCE_URL", fake.url)
        monkeypatch.setenv("INCIDENT_CONFLUENCE_EMAIL", confluence_fake.EMAIL)
        monkeypatch.setenv("INCIDENT_CONFLUENCE_TOKEN", confluence_fake.TOKEN)
        monkeypatch.setenv("INCIDENT_CONFLUENCE_SPACE_ID", confluence_fake.SPACE)
        monkeypatch.setenv("INCIDENT_CONFLUENCE_PARENT_ID", confluence_fake.PARENT)
        monkeypatch.setenv("INCIDENT_NOTIFY_BACKOFF", "0.01")
        yield fake


@pytest.fixture
def notion(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNotion]:
    with fake_notion() as fake:
        monkeypatch.setenv("INCIDENT_NOTION_URL", fake.url)
        monkeypatch.setenv("INCIDENT_NOTION_TOKEN", notion_fake.TOKEN)
        monkeypatch.setenv("INCIDENT_NOTION_PARENT_PAGE_ID", notion_fake.PARENT)
        monkeypatch.setenv("INCIDENT_NOTIFY_BACKOFF", "0.01")
        yield fake


def closed_incident(batch: str, summary: str = HOSTILE) -> str:
    """A level-3 complaint handled to the customer's satisfaction, closed and archived."""
    body = intake.FeedbackIn(
        category="product_quality", summary=summary, customer="张伟", product_model="P30", batch=batch
    )  # type: ignore[call-arg]
    inc = intake.record(body, now=T0).incident_id
    assert inc
    at = T0 + timedelta(hours=1)
    steps.contact(inc, steps.ContactIn(by="王芳"), now=T0 + timedelta(minutes=5))
    steps.cause(inc, steps.CauseIn(root="隔膜缺陷", direct="电芯过热", stage="production"), now=at)
    steps.propose(inc, steps.ProposeIn(solution="repair"), now=at)
    steps.approve(inc, steps.ApproveIn(by="陈总", role="dept_head"), now=at)
    steps.confirm(inc, steps.ConfirmIn(result="satisfied"), now=at)
    with session_scope() as s:
        row = s.get_one(Incident, inc)
        row.status, row.closed_at, row.open_key = "closed", T0 + timedelta(hours=2), None
    keep_records(inc)
    return inc


def meet(incident_id: str, finding: str) -> None:
    """The post-mortem meeting: the final report is archived again (its page changes)."""
    held = T0 + timedelta(hours=20)
    body = meetings.MeetingIn(at=held, participants=["王芳"], findings=[finding])
    meetings.record(incident_id, body, QC, now=held)
    keep_records(incident_id)


def push(target: str, now: datetime, on_demand: bool = False) -> service.Report:
    return asyncio.run(service.push(target, now, on_demand=on_demand))


def pushes(incident_id: str | None = None) -> list[Delivery]:
    with session_scope() as s:
        stmt = select(Delivery).where(Delivery.notice == "kb_page").order_by(Delivery.id)
        return [r for r in s.scalars(stmt) if incident_id is None or r.incident_id == incident_id]


def test_confluence_creates_then_makes_version_2_and_leaves_unchanged_pages_alone(
    confluence: FakeConfluence,
) -> None:
    inc = closed_incident("B-K1")
    first = push("confluence", NOW)
    assert (first.pushed, first.failed, first.unchanged) == (2, 0, 0)
    page = confluence.by_title(f"{inc} · 产品质量类 · 三级 · 2026-11-24")
    assert page["version"] == 1 and page["parentId"] == confluence_fake.PARENT
    shown = "".join(parse_storage(page["value"]).itertext())  # well-formed XHTML, or this raises
    assert "客户原话 <script>alert(1)</script> & {{ 7*7 }}" in shown  # the reader sees the customer's words
    assert "<script>" not in page["value"] and "&lt;script&gt;alert(1)&lt;/script&gt;" in page["value"]
    assert (
        f"复盘报告（5W1H）· {inc}" in shown and f"客户问题信息表 · {inc}" in shown
    )  # the records, in the guide's order
    review = confluence.by_title("2026-11 月度复盘报告")
    assert set(confluence.attachments[review["id"]]) == {"trend.png", "times.png", "satisfaction.png"}
    assert all(v[0].startswith(b"\x89PNG") for v in confluence.attachments[review["id"]].values())
    assert (
        '<ri:attachment ri:filename="trend.png" />' in review["value"] and "data:image" not in review["value"]
    )
    sent = pushes()
    assert [(r.role, r.status, r.incident_id) for r in sent] == [
        ("confluence", "sent", None),
        ("confluence", "sent", inc),
    ]
    assert (
        sent[1].url == f"{confluence.url}/wiki/spaces/KB/pages/{page['id']}"
    )  # reviews first, then incidents

    writes = len(confluence.writes())
    again = push("confluence", NOW + timedelta(hours=1))  # the review is checked again after an hour
    assert (again.pushed, again.unchanged) == (0, 1) and len(confluence.writes()) == writes
    assert push("confluence", NOW + timedelta(hours=1, minutes=1)).unchanged == 0  # nothing even looked at

    meet(inc, "来料检验缺失 <b>批次 B-K1</b>")
    third = push("confluence", NOW + timedelta(hours=1, minutes=30))  # the review: not due a check yet
    assert third.pushed == 1 and [p["path"] for p in third.pages] == [f"incidents/{inc}"]
    assert page["version"] == 2 and confluence.writes()[-1] == ("PUT", f"/wiki/api/v2/pages/{page['id']}")
    assert "来料检验缺失 <b>批次 B-K1</b>" in "".join(parse_storage(page["value"]).itertext())

    with session_scope() as s:  # the table lost (a restored backup): found by title, updated, not doubled
        s.execute(delete(KnowledgePage))
    fourth = push("confluence", NOW + timedelta(hours=3))
    assert fourth.pushed == 2 and len(confluence.pages) == 2
    assert (page["version"], review["version"]) == (3, 2)


def test_confluence_429_waits_retry_after_and_a_refused_credential_is_not_retried(
    confluence: FakeConfluence, monkeypatch: pytest.MonkeyPatch
) -> None:
    inc = closed_incident("B-K2")
    confluence.rate_limit_next = 1  # Retry-After: 1
    first = push("confluence", NOW)
    assert (first.pushed, first.failed) == (2, 0)
    (_, path, limited_at, status), (_, again, retried_at, _) = confluence.requests[:2]
    assert status == 429 and again == path and retried_at - limited_at >= 1.0
    assert sum(r.attempts for r in pushes()) == len(confluence.requests)  # the log counts every request
    assert pushes(inc)[0].attempts == 2  # find by title, create

    monkeypatch.setenv("INCIDENT_CONFLUENCE_TOKEN", "a-revoked-token")
    meet(inc, "供应商回复慢")
    before = len(confluence.requests)
    refused = push("confluence", NOW + timedelta(hours=1))
    assert refused.pushed == 0 and refused.failed == 1 and "HTTP 401" in (refused.refused or "")
    assert len(confluence.requests) == before + 1  # a 401 is not retried: one request
    assert pushes()[-1].status == "failed" and "401" in (pushes()[-1].error or "")  # the review's, first
    logged = len(pushes())
    later = push("confluence", NOW + timedelta(days=2))  # the sweep does not try that credential again
    assert later.refused and later.failed == 0 and len(confluence.requests) == before + 1
    assert len(pushes()) == logged
    by_hand = push("confluence", NOW + timedelta(days=2), on_demand=True)  # a person asks: tried at once
    assert by_hand.failed == 1 and len(confluence.requests) == before + 2

    monkeypatch.setenv("INCIDENT_CONFLUENCE_TOKEN", confluence_fake.TOKEN)  # fixed: the sweep goes on
    fixed = push("confluence", NOW + timedelta(days=2, minutes=1))  # the page and the review it changed
    assert (fixed.pushed, fixed.refused) == (2, None)
    assert confluence.by_title(f"{inc} · 产品质量类 · 三级 · 2026-11-24")["version"] == 2
    with session_scope() as s:
        assert s.scalars(select(KnowledgeTarget)).all() == []

    third = closed_incident("B-K3")  # pages that keep failing back off instead of hammering
    confluence.rate_limit_next, confluence.retry_after = 100, "0"
    failing = push("confluence", NOW + timedelta(days=3))  # its page, and the review it changed
    assert failing.failed == 2 and len(pushes(third)) == 1 and pushes(third)[0].attempts == 4
    asked = len(confluence.requests)
    assert push("confluence", NOW + timedelta(days=3, minutes=1)).failed == 0  # within the 2 minutes
    assert len(confluence.requests) == asked
    confluence.rate_limit_next = 0
    assert push("confluence", NOW + timedelta(days=3, minutes=3)).pushed == 2


def test_a_pass_pushes_at_most_per_pass_pages_and_the_next_pass_goes_on(
    confluence: FakeConfluence, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = closed_incident("B-P1"), closed_incident("B-P2")
    monkeypatch.setattr(service, "PER_PASS", 1)
    one = push("confluence", NOW)
    assert (one.pushed, one.remaining, [p["path"] for p in one.pages]) == (1, 2, ["reviews/2026-11"])
    two = push("confluence", NOW + timedelta(seconds=10))
    assert (two.pushed, two.remaining, [p["path"] for p in two.pages]) == (1, 1, [f"incidents/{first}"])
    three = push("confluence", NOW + timedelta(seconds=20))
    assert (three.pushed, three.remaining, [p["path"] for p in three.pages]) == (
        1,
        0,
        [f"incidents/{second}"],
    )
    assert len(confluence.pages) == 3 and push("confluence", NOW + timedelta(seconds=30)).pushed == 0


def test_notion_creates_pages_of_blocks_replaces_them_on_change_and_retries_429(notion: FakeNotion) -> None:
    long_summary = HOSTILE + " " + "电池鼓包" * 1200  # 4,800+ characters: a cell of three rich texts
    inc = closed_incident("B-N1", long_summary)
    first = push("notion", NOW)
    assert (first.pushed, first.failed) == (2, 0)
    pages = {p["title"][0]["text"]["content"]: pid for pid, p in notion.pages.items()}
    page_id = pages[f"{inc} · 产品质量类 · 三级 · 2026-11-24"]
    assert notion.pages[page_id]["parent"] == notion_fake.PARENT
    text = notion.text(page_id)
    assert (
        "客户原话 <script>alert(1)</script> & {{ 7*7 }}" in text and "&lt;" not in text
    )  # JSON text, literal
    cells = [
        cell
        for b in notion.content(page_id)
        if b["type"] == "table"
        for row in b["table"]["children"]
        for cell in row["table_row"]["cells"]
    ]
    longest = max(cells, key=lambda c: sum(len(r["text"]["content"]) for r in c))
    assert len(longest) >= 3 and all(len(r["text"]["content"]) <= 2000 for r in longest)
    review = pages["2026-11 月度复盘报告"]
    images = [b for b in notion.content(review) if b["type"] == "image"]
    assert len(images) == 3
    assert all(notion.uploads[b["image"]["file_upload"]["id"]]["data"].startswith(b"\x89PNG") for b in images)

    blocks_before = len(notion.content(page_id))
    assert push("notion", NOW + timedelta(hours=1)).pushed == 0  # unchanged: not sent again
    meet(inc, "来料检验缺失")
    notion.rate_limit_next = 1  # Retry-After: 0
    second = push("notion", NOW + timedelta(hours=1, minutes=30))
    assert second.pushed == 1 and any(r[3] == 429 for r in notion.requests)
    assert len(notion.pages) == 2  # replaced, not duplicated
    trashed = [b for b in notion.blocks.values() if b["parent"] == page_id and b["in_trash"]]
    assert len(trashed) == blocks_before and "来料检验缺失" in notion.text(page_id)
    with session_scope() as s:
        row = s.scalars(select(KnowledgePage).where(KnowledgePage.path == f"incidents/{inc}")).one()
        assert (row.target, row.remote_id, row.version) == ("notion", page_id, 2)


def test_notion_takes_100_blocks_a_request_and_2000_characters_a_rich_text(notion: FakeNotion) -> None:
    text = "\n\n".join(f"第 {n} 段" for n in range(250)) + "\n\n" + "长" * 4500 + "\n"

    async def write() -> str:
        async with notion_api.client() as http:
            return (await notion_api.write(Caller(http), None, 0, "长页面", Body(text))).remote_id

    page_id = asyncio.run(write())
    content = notion.content(page_id)
    assert len(content) == 251 and content[0]["paragraph"]["rich_text"][0]["text"]["content"] == "第 0 段"
    assert [len(r["text"]["content"]) for r in content[-1]["paragraph"]["rich_text"]] == [2000, 2000, 500]
    assert [sent for method, _, _, _, sent in notion.requests if method in ("POST", "PATCH")] == [
        100,
        100,
        51,
    ]


def test_unconfigured_push_on_demand_is_a_409_that_names_the_settings(db: str) -> None:
    from incident.errors import Conflict

    with pytest.raises(Conflict, match="INCIDENT_NOTION_TOKEN"):
        push("notion", NOW, on_demand=True)
    assert push("notion", NOW).pushed == 0  # the sweep: nothing to do


def test_export_to_through_the_service_cli(service) -> None:  # noqa: ANN001
    """`incident export --to` as a user types it: the route is mounted behind the token, its 409 is one
    line and exit 2, and the options are checked before anything is asked."""
    unset = service.cli("export", "--to", "notion", check=False)
    assert unset.returncode == 2 and unset.stderr.strip().splitlines() == [
        "错误：notion 尚未配置：请设置 INCIDENT_NOTION_TOKEN and INCIDENT_NOTION_PARENT_PAGE_ID"
    ]
    both = service.cli("export", "--to", "confluence", "--out", str(service.home / "kb2"), check=False)
    assert both.returncode == 2 and len(both.stderr.strip().splitlines()) == 1
    anonymous = service.api("POST", "/api/knowledge/push", params={"to": "notion"}, token="wrong")
    assert anonymous.status_code == 401
    bad = service.api("POST", "/api/knowledge/push", params={"to": "wiki"})
    assert bad.status_code == 422 and "to" in bad.json()["error"]

"""The board's order, counts and filters on a real database with an injected clock (no sleeping).

Issue 12: an incident whose contact deadline passed and that nobody contacted was shown last, as
"no open deadline", under a header saying "0 overdue". It must lead, red, saying how long.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

START = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def opened(minutes: int, **fields: Any) -> str:
    from incident.feedback import service as intake
    from incident.feedback.inputs import FeedbackIn

    body = FeedbackIn(summary=fields.pop("summary", f"case {minutes}"), **fields)
    return str(intake.record(body, now=START + timedelta(minutes=minutes)).incident_id)


def test_a_missed_never_made_contact_leads_and_counts_as_overdue(any_db: str) -> None:
    from incident.console.board import counts, open_rows
    from models import Deadline, session_scope

    never = opened(0, category="product_quality", batch="B-never", customers=150)  # L1, due 08:30
    soon = opened(100, category="special_scenario", cause="storm", region="north")  # L3, due 10:40
    later = opened(
        60, category="service_failure", service="delivery", region="e", customers=20
    )  # L2, due 10:00
    with session_scope() as s:  # the watcher marked it missed: it is no open deadline any more
        s.execute(update(Deadline).where(Deadline.incident_id == never).values(state="missed"))
    now = START + timedelta(minutes=115)
    rows = open_rows(now=now)
    assert [r["incident_id"] for r in rows] == [never, later, soon]
    assert rows[0]["is_overdue"] and rows[0]["left"] == "已超时 1 小时 25 分钟"
    assert rows[0]["overdue_minutes"] == 85 and rows[0]["shown_deadline"]["kind"] == "contact"
    assert [r["is_overdue"] for r in rows[1:]] == [False, False]
    assert counts(rows)["overdue"] == 1 and counts(rows)["open"] == 3

    # Made late, it is met (late) and no longer overdue.
    with session_scope() as s:
        s.execute(update(Deadline).where(Deadline.incident_id == never).values(met_at=now))
    assert counts(open_rows(now=now))["overdue"] == 0


def test_filters_and_search_reach_the_feedback(any_db: str) -> None:
    from incident.console.board import open_rows
    from incident.incidents.service import Filters, assign, list_incidents

    phone = opened(0, category="product_quality", batch="B-42", product_model="P30", customer="张伟",
                   order="ORD-7781", summary="电池鼓包")  # fmt: skip
    fridge = opened(5, category="product_quality", batch="F-1", product_model="F200", customer="李娜")
    late = opened(10, category="service_failure", service="delivery", region="east", customers=20)
    assign(fridge, "王芳", "duty")

    def levels() -> dict[str, int]:
        return {r["incident_id"]: r["level"] for r in open_rows()}

    def ids(**f: Any) -> set[str]:
        return {r["incident_id"] for r in open_rows(Filters(**f), now=START + timedelta(minutes=20))}

    assert ids(q="ORD-7781") == {phone} and ids(q="张伟") == {phone} and ids(q="f200") == {fridge}
    assert ids(q="B-42") == {phone} and ids(q="鼓包") == {phone} and ids(q=late) == {late}
    assert ids(q="100%") == set()  # a typed % is literal, not a wildcard
    assert ids(owner="王芳") == {fridge}
    assert ids(category="service_failure") == {late} and ids(level=3) == {phone, fridge}, levels()
    assert ids(level=2) == {late} and ids(level=3, q="李娜") == {fridge}  # filters combine
    assert ids(overdue=True) == set()  # 20 min in: no contact deadline (30 min at L1) has passed
    assert {r["incident_id"] for r in list_incidents(Filters(q="ORD-7781"))} == {phone}

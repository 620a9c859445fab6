"""Every other act takes effect once too: the review loop's (the post-mortem meeting, its sign-off,
improvement actions added and closed), taking an incident on (ack), naming its owner (assign) and the
inbox's answer, close and promote; 20 concurrent identical requests each, against the real service on
SQLite and on PostgreSQL; and a console form posted twice (a double click) acts once.
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import playbooks
from tests.conftest import ROLES, Service
from tests.test_idempotency import STEPS, _events, _query, _report, post_together

N = 20


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest) -> Service:
    """The real service on SQLite and on PostgreSQL (the session's two)."""
    return request.getfixturevalue("service" if request.param == "sqlite" else "pg_service")  # type: ignore[no-any-return]


def _once_without_key(responses: list[httpx.Response], ok: int) -> None:
    """One act, and nineteen refusals by the repeat rule (not by the domain: it never saw them)."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == sorted([ok] + [409] * (N - 1)), (statuses, [r.text for r in responses][:3])
    for refused in (r for r in responses if r.status_code == 409):
        assert "identical request" in refused.json()["error"], refused.text


def _once_with_key(responses: list[httpx.Response], ok: int) -> None:
    answers = {(r.status_code, r.content) for r in responses}
    assert len(answers) == 1, answers
    assert responses[0].status_code == ok, responses[0].text


def _resolved(service: Service) -> tuple[str, str]:
    """An incident the customer confirmed (its meeting may be recorded), and a person holding every role."""
    inc = _report(service, f"ACTS-{uuid.uuid4().hex[:6]}")
    for name, body, _ in STEPS[:6]:  # contact … confirm
        assert service.api("POST", f"/api/incidents/{inc}/{name}", json=body).status_code == 200, name
    return inc, service.person(f"复盘人-{uuid.uuid4().hex[:6]}", *ROLES)


def _alarm(service: Service) -> str:
    """An incident opened by an alarm: its assessment is due, so a person may ack it."""
    body = {"source": "quality", "category": "product_quality", "summary": "抽检不合格",
            "product_model": "IDEM", "batch": f"ALARM-{uuid.uuid4().hex[:6]}"}  # fmt: skip
    response = service.api("POST", "/api/alarms", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["incident_id"])


def _inbox_item(service: Service) -> str:
    body = {"kind": "suggestion", "summary": f"希望有夜间客服 {uuid.uuid4().hex[:6]}"}
    response = service.api("POST", "/api/feedback", json=body)
    assert response.status_code == 202 and response.json()["incident_id"] is None, response.text
    return str(response.json()["feedback_id"])


def _acts(service: Service, inc: str) -> list[tuple[str, dict[str, Any], int, str]]:
    """(path, body, its success status, the timeline event that is its effect), in the order they can go."""
    level, category = (service.show(inc)[k] for k in ("level", "category"))
    lead = playbooks.get(category).level(level).lead
    meeting = {"at": datetime.now(UTC).isoformat(), "participants": ["王芳", "李雷"], "findings": ["隔膜"]}
    action = {"kind": "product", "owner": "质量部", "due": "14d", "text": "更换隔膜供应商"}
    return [
        (f"/api/incidents/{inc}/meeting", meeting, 200, "meeting_held"),
        (f"/api/incidents/{inc}/signoff", {"note": f"signed as {lead}"}, 200, "postmortem_signed"),
        (f"/api/incidents/{inc}/actions", {"actions": [action]}, 201, "action_added"),
        (f"/api/incidents/{inc}/assign", {"owner": "王芳"}, 200, "owner_assigned"),
    ]


INBOX_ACTS = (
    ("answer", {"text": "已记录，谢谢"}),
    ("close", {}),
    ("promote", {"category": "service_failure"}),
)


def _walk(served: Service, keyed: bool) -> None:
    """Each act 20 times at once: without a key (one acts, 19 are refused) or with one key (20 answers
    alike); one effect either way, counted on the timeline and in the database."""
    check = _once_with_key if keyed else _once_without_key

    def key() -> str | None:
        return str(uuid.uuid4()) if keyed else None

    inc, person = _resolved(served)
    for path, body, ok, event in _acts(served, inc):
        check(post_together(served, path, body, person, key()), ok)
        assert _events(served, inc, event) == 1, path
    [action_id] = _query(served, "SELECT id FROM improvement_actions WHERE incident_id = :i", i=inc)
    check(
        post_together(served, f"/api/actions/{action_id}/close", {"evidence": "抽检合格"}, person, key()), 200
    )
    assert _events(served, inc, "action_done") == 1

    alarmed = _alarm(served)
    check(post_together(served, f"/api/incidents/{alarmed}/ack", {"note": "我来"}, person, key()), 200)
    assert _events(served, alarmed, "acknowledged") == 1

    for act, body in INBOX_ACTS:
        item = _inbox_item(served)
        check(post_together(served, f"/api/inbox/{item}/{act}", body, served.token, key()), 200)
    made = "SELECT COUNT(*) FROM feedback WHERE id IN (SELECT promoted_to FROM feedback WHERE id = :i)"
    assert _query(served, made, i=item) == [1]  # the promotion made one complaint


def test_twenty_identical_acts_without_a_key_act_once(served: Service) -> None:
    _walk(served, keyed=False)


def test_twenty_identical_acts_with_one_key_get_one_answer(served: Service) -> None:
    _walk(served, keyed=True)


# --- the console's forms ----------------------------------------------------------------------------


def _form(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to ``action`` on a rendered page."""
    found = re.search(rf'<form method="post" action="[^"]*/{action}"[^>]*>(.*?)</form>', page, re.S)
    assert found, f"no {action} form"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', found[1]))


def test_a_console_form_posted_twice_acts_once(served: Service) -> None:
    """A double click on "Record contact": both posts answered alike (the same redirect and message),
    one contact; the next rendering of the page carries a new key, so a second contact is one more act."""
    inc = _report(served, f"FORM-{uuid.uuid4().hex[:6]}")
    with httpx.Client(base_url=served.url, timeout=30) as browser:
        assert browser.post("/login", data={"token": served.token, "next": "/"}).status_code == 303
        page = browser.get(f"/incidents/{inc}").text
        hidden = _form(page, "contact")
        assert len(hidden["idempotency_key"]) == 32 and hidden["idempotency_key"] in page
        form = {**hidden, "by": "客服 C", "note": "已致电"}
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda _: browser.post(f"/incidents/{inc}/contact", data=form), range(2))
        again = browser.post(f"/incidents/{inc}/contact", data={**form, "note": "typed more"})  # a reload
        assert {r.status_code for r in (first, second, again)} == {303}
        assert first.headers["location"] == second.headers["location"] == again.headers["location"]
        flashes = {r.headers["set-cookie"].split(";")[0] for r in (first, second, again)}
        assert len(flashes) == 1 and flashes.pop().startswith("incident_flash=")
        assert _events(served, inc, "contacted") == 1
        fresh = _form(browser.get(f"/incidents/{inc}").text, "contact")
        assert fresh["idempotency_key"] != hidden["idempotency_key"]
        assert browser.post(f"/incidents/{inc}/contact", data={**fresh, "by": "客服 C"}).status_code == 303
        assert _events(served, inc, "contacted") == 2  # a progress contact: a new form, a new act

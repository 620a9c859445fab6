"""Every accepted act takes effect once: 20 concurrent identical requests per action, against the real
``incident serve`` (the session's ``service``), counted on the incident's timeline and in its database.
"""

from __future__ import annotations

import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import Service

N = 20
# (action, body, the timeline event that is its effect), in the order an incident needs them.
STEPS: list[tuple[str, dict[str, Any], str]] = [
    ("contact", {"by": "客服 A", "note": "apologised"}, "contacted"),
    ("measure", {"kind": "spare_product"}, "measure_taken"),
    ("cause", {"root": "separator", "direct": "heat", "stage": "production"}, "cause_recorded"),
    ("propose", {"solution": "replace"}, "solution_proposed"),
    ("approve", {"by": "李经理", "role": "dept_head"}, "solution_approved"),  # an L3 incident
    ("confirm", {"result": "satisfied"}, "confirmed"),
    ("survey", {"speed": 1, "result": 2, "attitude": 1}, "survey_recorded"),  # below target
]


def _report(service: Service, batch: str) -> str:
    body = {"category": "product_quality", "summary": "电池鼓包", "product_model": "IDEM", "batch": batch}
    response = service.api("POST", "/api/feedback", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["incident_id"])


def _at_once(service: Service, path: str, body: dict[str, Any], key: str | None) -> list[httpx.Response]:
    """N identical POSTs released together, each on its own connection (threads)."""
    headers = {"Authorization": f"Bearer {service.token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    clients = [httpx.Client(base_url=service.url, headers=headers, timeout=60) for _ in range(N)]
    try:
        with ThreadPoolExecutor(N) as pool:
            return list(pool.map(lambda c: c.post(path, json=body), clients))
    finally:
        for client in clients:
            client.close()


def _rows(service: Service, table: str, incident_id: str) -> int:
    with sqlite3.connect(service.home / "incident.db") as conn:
        (count,) = conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE incident_id = ?", (incident_id,)
        ).fetchone()
    return int(count)


def _events(service: Service, incident_id: str, event: str) -> int:
    return sum(e["event"] == event for e in service.show(incident_id)["timeline"])


def test_twenty_identical_requests_without_a_key_act_once(service: Service) -> None:
    inc = _report(service, f"NOKEY-{uuid.uuid4().hex[:6]}")
    for name, body, event in STEPS:
        responses = _at_once(service, f"/api/incidents/{inc}/{name}", body, key=None)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [409] * (N - 1), (name, statuses, [r.text for r in responses][:3])
        for refused in (r for r in responses if r.status_code == 409):
            assert refused.json().keys() == {"error"}, refused.text
        assert _events(service, inc, event) == 1, name
    assert _rows(service, "contacts", inc) == 1
    assert _rows(service, "measures", inc) == 1
    assert _rows(service, "surveys", inc) == 1 and _rows(service, "confirmations", inc) == 1
    assert _events(service, inc, "follow_up_round") == 1  # was 20 rounds before


def test_twenty_identical_requests_with_one_key_get_one_answer(service: Service) -> None:
    inc = _report(service, f"KEY-{uuid.uuid4().hex[:6]}")
    for name, body, event in STEPS:
        responses = _at_once(service, f"/api/incidents/{inc}/{name}", body, key=f"{name}-{uuid.uuid4()}")
        answers = {(r.status_code, r.content) for r in responses}
        assert len(answers) == 1, (name, answers)
        assert responses[0].status_code == 200, responses[0].text
        assert _events(service, inc, event) == 1, name
    assert _rows(service, "surveys", inc) == 1
    assert _events(service, inc, "follow_up_round") == 1


def test_feedback_with_one_key_is_one_feedback(service: Service) -> None:
    body = {"category": "product_quality", "summary": "once", "product_model": "IDEM", "batch": "FB-KEY"}
    responses = _at_once(service, "/api/feedback", body, key=str(uuid.uuid4()))
    answers = {(r.status_code, r.content) for r in responses}
    assert len(answers) == 1 and responses[0].status_code == 202, answers
    feedback_id = responses[0].json()["feedback_id"]
    with sqlite3.connect(service.home / "incident.db") as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM feedback WHERE batch = 'FB-KEY'")]
    assert ids == [feedback_id]


def test_a_key_reused_with_another_body_is_refused(service: Service) -> None:
    inc = _report(service, f"REUSE-{uuid.uuid4().hex[:6]}")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = service.api("POST", f"/api/incidents/{inc}/contact", json={"by": "A"}, headers=key)
    again = service.api("POST", f"/api/incidents/{inc}/contact", json={"by": "A"}, headers=key)
    other = service.api("POST", f"/api/incidents/{inc}/contact", json={"by": "B"}, headers=key)
    elsewhere = service.api("POST", f"/api/incidents/{inc}/measure", json={"by": "A"}, headers=key)
    assert first.status_code == 200 and (again.status_code, again.content) == (200, first.content)
    assert again.headers.get("idempotent-replayed") == "true"
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]
    assert elsewhere.status_code == 422
    assert _events(service, inc, "contacted") == 1


def test_a_refusal_is_the_first_answer_too(service: Service) -> None:
    """A 4xx is an answer: replayed as it was, even once the incident could accept the act."""
    inc = _report(service, f"REFUSE-{uuid.uuid4().hex[:6]}")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    early = service.api("POST", f"/api/incidents/{inc}/propose", json={"solution": "replace"}, headers=key)
    assert early.status_code == 409  # no cause yet
    service.api(
        "POST", f"/api/incidents/{inc}/cause", json={"root": "r", "direct": "d", "stage": "production"}
    )
    later = service.api("POST", f"/api/incidents/{inc}/propose", json={"solution": "replace"}, headers=key)
    assert (later.status_code, later.content) == (409, early.content)
    assert _events(service, inc, "solution_proposed") == 0


def test_the_cli_sends_a_key_per_invocation(service: Service) -> None:
    inc = _report(service, f"CLI-{uuid.uuid4().hex[:6]}")
    for _ in range(2):  # two invocations are two acts: a first contact, then a progress update
        service.cli_json("contact", inc, "--by", "客服 B")
    assert _events(service, inc, "contacted") == 2
    with sqlite3.connect(service.home / "incident.db") as conn:
        keys = [
            k for (k,) in conn.execute("SELECT key FROM idempotency_keys WHERE route LIKE ?", (f"%{inc}%",))
        ]
    assert len(keys) == 2 and all(uuid.UUID(k.removeprefix("key:")) for k in keys)


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_a_key_out_of_bounds_is_refused(service: Service, key: str) -> None:
    response = service.api(
        "POST", "/api/incidents/X/contact", json={"by": "A"}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 422 and response.json().keys() == {"error"}

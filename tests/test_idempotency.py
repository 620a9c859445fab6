"""Every accepted act takes effect once: 20 concurrent identical requests per action, against the real
``incident serve`` on SQLite (the session's ``service``) and on PostgreSQL, counted on the incident's
timeline and in its database.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

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


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest) -> Service:
    """The real service on SQLite and on PostgreSQL (the session's two)."""
    return request.getfixturevalue("service" if request.param == "sqlite" else "pg_service")  # type: ignore[no-any-return]


def _query(service: Service, sql: str, **params: Any) -> list[Any]:
    url = service.env.get("INCIDENT_DB_URL") or f"sqlite:///{service.home / 'incident.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _report(service: Service, batch: str) -> str:
    body = {"category": "product_quality", "summary": "电池鼓包", "product_model": "IDEM", "batch": batch}
    response = service.api("POST", "/api/feedback", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["incident_id"])


def _at_once(service: Service, path: str, body: dict[str, Any], key: str | None) -> list[httpx.Response]:
    """N identical POSTs released together, each on its own connection (threads); the steps only people
    record are sent with that person's token (``Service.acting``)."""
    token = service.acting(path.rsplit("/", 1)[-1], body.get("by"), body.get("role")) or service.token
    return post_together(service, path, body, token, key)


def post_together(
    service: Service, path: str, body: dict[str, Any] | None, token: str, key: str | None
) -> list[httpx.Response]:
    """N identical POSTs with ``token`` released together, each on its own connection (threads)."""
    headers = {"Authorization": f"Bearer {token}"}
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
    return int(_query(service, f"SELECT COUNT(*) FROM {table} WHERE incident_id = :i", i=incident_id)[0])


def _events(service: Service, incident_id: str, event: str) -> int:
    return sum(e["event"] == event for e in service.show(incident_id)["timeline"])


def test_twenty_identical_requests_without_a_key_act_once(served: Service) -> None:
    inc = _report(served, f"NOKEY-{uuid.uuid4().hex[:6]}")
    for name, body, event in STEPS:
        responses = _at_once(served, f"/api/incidents/{inc}/{name}", body, key=None)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [409] * (N - 1), (name, statuses, [r.text for r in responses][:3])
        for refused in (r for r in responses if r.status_code == 409):
            assert refused.json().keys() == {"error"}, refused.text
        assert _events(served, inc, event) == 1, name
    assert _rows(served, "contacts", inc) == 1
    assert _rows(served, "measures", inc) == 1
    assert _rows(served, "surveys", inc) == 1 and _rows(served, "confirmations", inc) == 1
    assert _events(served, inc, "follow_up_round") == 1  # was 20 rounds before


def test_twenty_identical_requests_with_one_key_get_one_answer(served: Service) -> None:
    inc = _report(served, f"KEY-{uuid.uuid4().hex[:6]}")
    for name, body, event in STEPS:
        responses = _at_once(served, f"/api/incidents/{inc}/{name}", body, key=f"{name}-{uuid.uuid4()}")
        answers = {(r.status_code, r.content) for r in responses}
        assert len(answers) == 1, (name, answers)
        assert responses[0].status_code == 200, responses[0].text
        assert _events(served, inc, event) == 1, name
    assert _rows(served, "surveys", inc) == 1
    assert _events(served, inc, "follow_up_round") == 1


def test_feedback_with_one_key_is_one_feedback(served: Service) -> None:
    batch = f"FB-KEY-{uuid.uuid4().hex[:6]}"
    body = {"category": "product_quality", "summary": "once", "product_model": "IDEM", "batch": batch}
    responses = _at_once(served, "/api/feedback", body, key=str(uuid.uuid4()))
    answers = {(r.status_code, r.content) for r in responses}
    assert len(answers) == 1 and responses[0].status_code == 202, answers
    feedback_id = responses[0].json()["feedback_id"]
    assert _query(served, "SELECT id FROM feedback WHERE batch = :b", b=batch) == [feedback_id]


def test_a_key_reused_with_another_body_is_refused(served: Service) -> None:
    inc = _report(served, f"REUSE-{uuid.uuid4().hex[:6]}")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = served.api("POST", f"/api/incidents/{inc}/contact", json={"by": "A"}, headers=key)
    respaced = {**key, "content-type": "application/json"}  # the same JSON, spaced otherwise
    again = served.api("POST", f"/api/incidents/{inc}/contact", content=b'{ "by" : "A" }', headers=respaced)
    other = served.api("POST", f"/api/incidents/{inc}/contact", json={"by": "B"}, headers=key)
    elsewhere = served.api("POST", f"/api/incidents/{inc}/measure", json={"by": "A"}, headers=key)
    assert first.status_code == 200 and (again.status_code, again.content) == (200, first.content)
    assert again.headers.get("idempotent-replayed") == "true"
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]
    assert elsewhere.status_code == 422
    assert _events(served, inc, "contacted") == 1


def test_a_refusal_is_the_first_answer_too(served: Service) -> None:
    """A 4xx is an answer: replayed as it was, even once the incident could accept the act."""
    inc = _report(served, f"REFUSE-{uuid.uuid4().hex[:6]}")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    early = served.api("POST", f"/api/incidents/{inc}/propose", json={"solution": "replace"}, headers=key)
    assert early.status_code == 409  # no cause yet
    served.api(
        "POST", f"/api/incidents/{inc}/cause", json={"root": "r", "direct": "d", "stage": "production"}
    )
    later = served.api("POST", f"/api/incidents/{inc}/propose", json={"solution": "replace"}, headers=key)
    assert (later.status_code, later.content) == (409, early.content)
    assert _events(served, inc, "solution_proposed") == 0


def test_the_cli_sends_a_key_per_invocation(served: Service) -> None:
    inc = _report(served, f"CLI-{uuid.uuid4().hex[:6]}")
    for _ in range(2):  # two invocations are two acts: a first contact, then a progress update
        served.cli_json("contact", inc, "--by", "客服 B")
    assert _events(served, inc, "contacted") == 2
    keys = _query(served, "SELECT key FROM idempotency_keys WHERE route LIKE :r", r=f"%{inc}%")
    assert len(keys) == 2 and all(uuid.UUID(k.removeprefix("key:")) for k in keys)


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_a_key_out_of_bounds_is_refused(served: Service, key: str) -> None:
    response = served.api(
        "POST", "/api/incidents/X/contact", json={"by": "A"}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 422 and response.json().keys() == {"error"}


def _execute(service: Service, sql: str, **params: Any) -> None:
    url = service.env.get("INCIDENT_DB_URL") or f"sqlite:///{service.home / 'incident.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def test_a_key_whose_first_request_died_is_refused_at_once(served: Service) -> None:
    """A claim never answered (its process went away) no longer makes every retry wait a minute, and is
    not acted on again: the first may have acted before it died."""
    from incident.api.idempotency import request_hash

    inc = _report(served, f"DEAD-{uuid.uuid4().hex[:6]}")
    key, path, body = uuid.uuid4().hex, f"/api/incidents/{inc}/contact", {"by": "A"}
    _execute(
        served,
        "INSERT INTO idempotency_keys (key, route, request_hash, created_at) VALUES (:k, :r, :h, :at)",
        k=f"key:{key}", r=path, h=request_hash(path, json.dumps(body).encode()), at="2020-01-01 00:00:00",
    )  # fmt: skip
    response = served.api("POST", path, json=body, headers={"Idempotency-Key": key})
    assert response.status_code == 409 and "interrupted" in response.json()["error"], response.text
    assert response.elapsed.total_seconds() < 10  # not INCIDENT_IDEMPOTENCY_WAIT
    assert _events(served, inc, "contacted") == 0  # no second act on a guess


def test_old_answers_are_forgotten_by_the_sweep(served: Service) -> None:
    insert = (
        "INSERT INTO idempotency_keys (key, route, request_hash, status, body, created_at) "
        "VALUES (:k, '/api/feedback', :h, 202, '{}', :at)"
    )
    _execute(served, insert, k="key:ancient", h="0" * 64, at="2020-01-01 00:00:00")
    _execute(served, insert, k="key:recent", h="0" * 64, at=datetime.now(UTC).replace(tzinfo=None))
    count = "SELECT COUNT(*) FROM idempotency_keys WHERE key = :k"
    deadline = time.monotonic() + 60  # the sweep runs every INCIDENT_SWEEP_SECONDS (2 s in the tests)
    while _query(served, count, k="key:ancient")[0]:
        assert time.monotonic() < deadline, "the sweep did not forget a key from 2020"
        time.sleep(0.5)
    assert _query(served, count, k="key:recent")[0] == 1

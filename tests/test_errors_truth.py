"""Every error tells the truth: its status says whose fault it is, its body is ``{"error": …}``.

Against the real ``incident serve`` (the session's ``service``) and, for what only PostgreSQL
enforces (column widths), a real PostgreSQL database (``any_db`` runs SQLite as well).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Service

FEEDBACK = {"category": "product_quality", "summary": "x"}


def _only_error(response: Any) -> str:
    body = response.json()
    assert "detail" not in body and isinstance(body.get("error"), str) and body["error"], body
    return str(body["error"])


@pytest.mark.parametrize(
    ("method", "path", "content", "status"),
    [
        ("POST", "/api/feedback", b'{"summary": "\xff\xfe"}', 400),  # invalid UTF-8
        ("POST", "/api/feedback", b"[" * 50_000 + b"]" * 50_000, 400),  # 50k deep
        ("POST", "/api/feedback", b"{not json", 422),
        ("GET", "/api/no-such-route", None, 404),
        ("DELETE", "/api/incidents", None, 405),
        ("POST", "/api/incidents/INC1/contact", b"{}", 422),  # FastAPI's own validation
        ("GET", "/api/incidents/INC19990101001", None, 404),
    ],
)
def test_every_error_body_is_error(
    service: Service, method: str, path: str, content: bytes | None, status: int
) -> None:
    response = service.api(method, path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    _only_error(response)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/feedback", {**FEEDBACK, "customers": True}, "customers"),
        ("/api/feedback", {**FEEDBACK, "customers": "120"}, "customers"),
        ("/api/feedback", {**FEEDBACK, "customers": 1.5}, "customers"),
        ("/api/feedback", {**FEEDBACK, "media": "yes"}, "media"),
        ("/api/feedback", {**FEEDBACK, "injury": 1}, "injury"),
        ("/api/incidents/INC1/survey", {"speed": "5", "result": 5, "attitude": 5}, "speed"),
        ("/api/incidents/INC1/survey", {"speed": True, "result": 5, "attitude": 5}, "speed"),
        ("/api/incidents/INC1/propose", {"solution": "recall", "legal_reviewed": "true"}, "legal_reviewed"),
        ("/api/incidents/INC1/approve", {"by": "A", "role": "leadership", "reject": 0}, "reject"),
    ],
)
def test_json_types_are_strict(service: Service, path: str, body: dict[str, Any], field: str) -> None:
    response = service.api("POST", path, json=body)
    assert response.status_code == 422, response.text
    assert _only_error(response).startswith(field)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(service: Service, scheme: str) -> None:
    response = service.api("GET", "/api/incidents", headers={"Authorization": f"{scheme} {service.token}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("authorization", ["Basic test-token", "test-token", "Bearer", "Bearertest-token"])
def test_other_schemes_are_refused(service: Service, authorization: str) -> None:
    response = service.api("GET", "/api/incidents", headers={"Authorization": authorization})
    assert response.status_code == 401
    _only_error(response)


# --- column widths agree with the API's limits (PostgreSQL enforces them; SQLite does not) ---------


def _longest_feedback() -> Any:
    """Every text field of ``POST /api/feedback`` at its max_length.

    Fields of up to 200 characters are filled with "İ", which lower-cases to two characters: the
    correlation and customer keys built from them grow to twice their fields.
    """
    from incident.feedback.inputs import FeedbackIn

    text: dict[str, Any] = {}
    for name, field in FeedbackIn.model_fields.items():
        limit = next((m.max_length for m in field.metadata if getattr(m, "max_length", None)), None)
        if field.annotation in (str, str | None) and limit:
            text[name] = ("İ" * limit) if limit <= 200 else "长" * limit
    return FeedbackIn(**{**text, "category": "product_quality"})


def test_every_field_at_its_limit_is_stored(any_db: str) -> None:
    """Every string the API lets through, at its maximum, through every action, on a real database."""
    from incident.feedback import service as intake
    from incident.response import service as actions
    from models import Feedback, Incident, TimelineEvent, session_scope

    result = intake.record(_longest_feedback())
    inc, name = result.incident_id, "名" * 200
    assert inc
    actions.contact(inc, actions.ContactIn(by=name, note="n" * 10_000))
    actions.measure(inc, actions.MeasureIn(kind="spare_product", by=name, note="n" * 10_000))
    actions.cause(inc, actions.CauseIn(root="r" * 10_000, direct="d" * 10_000, stage="production", by=name))
    actions.propose(inc, actions.ProposeIn(solution="replace", by=name, note="n" * 10_000))
    approver = "审" * 200  # the timeline says "审…审 (dept_head)": 212 characters, was over 200
    role = "leadership" if result.level == 1 else "dept_head"
    actions.approve(inc, actions.ApproveIn(by=approver, role=role, reason="r" * 10_000))
    actions.confirm(inc, actions.ConfirmIn(result="satisfied", by=name, note="n" * 10_000))
    actions.survey(inc, actions.SurveyIn(speed=5, result=5, attitude=5, by=name, suggestion="s" * 10_000))
    with session_scope() as s:
        feedback = s.query(Feedback).filter_by(incident_id=inc).one()
        assert feedback.product_model == "İ" * 200 and len(feedback.customer_key) > 240
        assert len(s.get(Incident, inc).correlation_key) > 400
        longest = max(len(e.by) for e in s.query(TimelineEvent).filter_by(incident_id=inc))
        assert longest == len(f"{approver} ({role})")


def test_approvals_by_188_to_200_character_names_are_200_over_http(any_db: str) -> None:
    """Where PostgreSQL answered 503 every time: the real API app and its own routes."""
    from incident.api.app import create_app
    from incident.feedback import service as intake
    from incident.people import service as people
    from incident.response import service as actions

    inc = intake.record(_longest_feedback()).incident_id
    assert inc
    actions.cause(inc, actions.CauseIn(root="r", direct="d", stage="production"))
    auth = {"Authorization": "Bearer t"}
    with TestClient(create_app("t"), raise_server_exceptions=False) as client:
        level = client.get(f"/api/incidents/{inc}", headers=auth).json()["level"]
        role = "leadership" if level == 1 else "dept_head"
        for length in (188, 195, 200):
            proposed = client.post(
                f"/api/incidents/{inc}/propose",
                json={"solution": "repair", "note": f"try {length}"},
                headers=auth,
            )
            assert proposed.status_code == 200, proposed.text
            body = {"by": "驳" * length, "role": role, "reject": length < 200, "reason": "too costly"}
            person = people.add(people.PersonIn(name="驳" * length, roles=[role]))["token"]  # who decides
            as_person = {"Authorization": f"Bearer {person}"}
            decided = client.post(f"/api/incidents/{inc}/approve", json=body, headers=as_person)
            assert decided.status_code == 200, (length, decided.text)


def test_every_review_field_at_its_limit_is_stored(any_db: str) -> None:
    """The acts after the flow and beside it at their maximum lengths (the meeting, improvement actions,
    their closing, the sign-off, assign, ack, the inbox's answer), on a real database."""
    from datetime import UTC, datetime

    import playbooks
    from incident.actions import service as improvements
    from incident.deadlines import service as deadlines
    from incident.feedback import service as intake
    from incident.feedback.inputs import MAX_TEXT, FeedbackIn
    from incident.inbox import service as inbox
    from incident.incidents import service as incidents
    from incident.meetings import service as meetings
    from incident.people import service as people
    from incident.response import service as actions
    from models import ImprovementAction, Meeting, TimelineEvent, session_scope

    result = intake.record(_longest_feedback())
    inc, name = result.incident_id, "名" * 200
    assert inc
    actions.contact(inc, actions.ContactIn(by=name))
    actions.measure(inc, actions.MeasureIn(kind="spare_product"))
    actions.cause(inc, actions.CauseIn(root="r", direct="d", stage="production"))
    actions.propose(inc, actions.ProposeIn(solution="replace"))
    rules = playbooks.get("product_quality").level(result.level)
    lead = rules.lead
    actions.approve(inc, actions.ApproveIn(by=name, role=rules.approver))
    actions.confirm(inc, actions.ConfirmIn(result="satisfied"))
    token = people.add(people.PersonIn(name="审" * 200, roles=[lead, "duty_manager"]))["token"]
    person = people.identify(token)
    assert person is not None
    action = improvements.ActionIn(kind="process", owner="负" * 200, due="14d", text="t" * 2000)
    lines = ["行" * 2000] * 50
    meeting = meetings.MeetingIn(
        at=datetime.now(UTC), participants=["参" * 200] * 100, findings=lines, went_well=lines,
        went_badly=lines, decisions=lines, actions=[action] * 50, by=name,
    )  # fmt: skip
    meetings.record(inc, meeting, people.SERVICE)
    improvements.add(inc, improvements.ActionsIn(actions=[action] * 50, by=name), people.SERVICE)
    with session_scope() as s:
        first = s.query(ImprovementAction).filter_by(incident_id=inc).order_by(ImprovementAction.id).first()
        assert first is not None
        action_id = first.id
    improvements.close(action_id, improvements.CloseIn(evidence="证" * 4000, by=name), person)
    meetings.signoff(inc, meetings.SignoffIn(note="签" * 2000), person)
    incidents.assign(inc, "主" * 200, name)
    alarm = intake.record(FeedbackIn(kind="alarm", channel="internal", category="product_quality",
                                     summary="[quality] 抽检", product_model="ALARM-LIMIT"))  # fmt: skip
    assert alarm.incident_id
    deadlines.acknowledge(alarm.incident_id, person, "注" * MAX_TEXT)
    item = intake.record(FeedbackIn(kind="suggestion", summary="建议"))
    assert inbox.answer(item.feedback_id, "答" * 10_000, name)["status"] == "answered"
    with session_scope() as s:
        assert s.query(ImprovementAction).filter_by(incident_id=inc).count() == 100
        held = s.query(Meeting).filter_by(incident_id=inc).one()
        assert held.signed_by == "审" * 200
        by = {e.event: e.by for e in s.query(TimelineEvent).filter(TimelineEvent.incident_id == inc)}
        assert by["postmortem_signed"] == f"{'审' * 200} ({lead})" and by["owner_assigned"] == name


@pytest.fixture
def refusing_app(any_db: str) -> Iterator[TestClient]:
    """Our error handlers on routes that ask the real database for what it must refuse, for a table
    that is not there, and of a database that cannot be reached."""
    import sqlalchemy as sa

    from incident.api import errors as http_errors
    from models import Counter, session_scope

    app = FastAPI()
    http_errors.install(app)

    @app.post("/counter/{key}")
    def put(key: str) -> dict[str, str]:
        with session_scope() as s:
            s.add(Counter(key=key, value=1))
        return {"key": key}

    @app.get("/missing")
    def missing() -> None:
        with session_scope() as s:  # SQLite: OperationalError "no such table"; PostgreSQL: ProgrammingError
            s.execute(sa.text("SELECT * FROM no_such_table"))

    @app.get("/away")
    def away() -> None:
        url = "postgresql+psycopg://postgres@127.0.0.1:9/x" if any_db.startswith("postgresql") else (
            "sqlite:////proc/no-such-directory/incident.db"
        )  # fmt: skip
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2} if "postgresql" in url else {})
        try:
            engine.connect()
        finally:
            engine.dispose()

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_database_refusals_are_4xx_naming_the_column_and_logged(
    refusing_app: TestClient, any_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="incident.api.app")
    assert refusing_app.post("/counter/once").status_code == 200
    again = refusing_app.post("/counter/once")
    assert again.status_code == 409 and "already recorded" in _only_error(again)
    refused = [r for r in caplog.records if r.getMessage().startswith("refused POST /counter/once")]
    assert len(refused) == 1 and refused[0].levelname == "WARNING"
    if any_db.startswith("postgresql"):  # SQLite stores any length
        too_long = refusing_app.post("/counter/" + "k" * 40)
        assert too_long.status_code == 422
        assert "counters.key (at most 32 characters)" in _only_error(too_long)
        logged = [r.getMessage() for r in caplog.records if "/counter/kkk" in r.getMessage()]
        assert len(logged) == 1 and "counters.key (at most 32 characters)" in logged[0]


def test_only_an_unavailable_database_is_503(
    refusing_app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A table that is not there is our fault (500, logged with its traceback), even where SQLite calls
    it an OperationalError; a database that cannot be opened or reached is a 503 to retry."""
    caplog.set_level("WARNING", logger="incident.api.app")
    missing = refusing_app.get("/missing")
    assert missing.status_code == 500 and "internal database error" in _only_error(missing)
    assert "Retry-After" not in missing.headers
    [fault] = [r for r in caplog.records if "/missing" in r.getMessage()]
    assert fault.levelname == "ERROR" and fault.exc_info is not None
    away = refusing_app.get("/away")
    assert away.status_code == 503 and away.headers["Retry-After"], away.text
    assert "retry" in _only_error(away)

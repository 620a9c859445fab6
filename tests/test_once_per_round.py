"""The database holds one survey and one confirmation per round, whoever writes (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from incident.errors import Conflict
from incident.feedback import service as intake
from incident.response import service as actions
from models import Confirmation, Survey, get_engine, session_scope
from models.migrate import config, upgrade


def _resolved(batch: str) -> str:
    body = intake.FeedbackIn(category="product_quality", summary="s", product_model="R", batch=batch)
    result = intake.record(body)
    inc = result.incident_id
    assert inc
    actions.cause(inc, actions.CauseIn(root="r", direct="d", stage="production"))
    actions.propose(inc, actions.ProposeIn(solution="repair"))
    role = "leadership" if result.level == 1 else "dept_head"
    actions.approve(inc, actions.ApproveIn(by="A", role=role))
    actions.confirm(inc, actions.ConfirmIn(result="satisfied"))
    return inc


def test_a_second_survey_of_a_round_is_a_conflict(any_db: str) -> None:
    inc = _resolved("ROUND-1")
    assert actions.survey(inc, actions.SurveyIn(speed=5, result=5, attitude=5))["target_met"]
    with pytest.raises(Conflict, match="round 1 is already recorded"):
        actions.survey(inc, actions.SurveyIn(speed=4, result=4, attitude=4))


@pytest.mark.parametrize("model", [Survey, Confirmation])
def test_the_database_refuses_a_second_row_per_round(any_db: str, model: type) -> None:
    inc = _resolved("ROUND-2")
    now = datetime.now(UTC)
    fields = (
        {"speed": 5, "result": 5, "attitude": 5, "score": 5.0} if model is Survey else {"result": "satisfied"}
    )
    round_ = 7  # a round no action wrote
    with session_scope() as s:
        s.add(model(incident_id=inc, round=round_, at=now, by="A", **fields))
    with pytest.raises(IntegrityError), session_scope() as s:
        s.add(model(incident_id=inc, round=round_, at=now, by="B", **fields))


def test_migration_0002_keeps_the_row_each_round_was_answered_with(any_db: str) -> None:
    """Databases that already hold the duplicates the bug made can still be upgraded."""
    inc = _resolved("ROUND-3")
    command.downgrade(config(any_db), "0001")
    with get_engine(any_db).begin() as conn:
        for by in ("first", "second"):
            conn.execute(
                text(
                    "INSERT INTO surveys (incident_id, round, at, by, speed, result, attitude, score) "
                    "VALUES (:i, 5, :at, :by, 1, 1, 1, 1.0)"
                ),
                {"i": inc, "at": datetime.now(UTC), "by": by},
            )
    upgrade(any_db)
    with session_scope() as s:
        kept = [row.by for row in s.query(Survey).filter_by(incident_id=inc, round=5)]
    assert kept == ["first"]  # the survey the flow used: the first of its round

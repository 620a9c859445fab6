"""SQLAlchemy 2 typed ORM: the product's own durable state (Prefect keeps only run state).

Importing this package registers every table on ``Base.metadata`` (Alembic and tests rely on it).
"""

from models.base import LOCK, Base, get_engine, reset_engine, session_scope, utcnow
from models.feedback import Feedback
from models.idempotency import IdempotencyKey
from models.ids import Counter, next_id, next_ids
from models.incident import Deadline, FlowMark, Incident, TimelineEvent
from models.notification import Delivery
from models.people import Person
from models.record import Record
from models.response import (
    CauseAnalysis,
    Confirmation,
    Contact,
    ImprovementAction,
    Measure,
    Meeting,
    Solution,
    Survey,
)

__all__ = [
    "LOCK",
    "Base",
    "CauseAnalysis",
    "Confirmation",
    "Contact",
    "Counter",
    "Deadline",
    "Delivery",
    "Feedback",
    "FlowMark",
    "IdempotencyKey",
    "ImprovementAction",
    "Incident",
    "Measure",
    "Meeting",
    "Person",
    "Record",
    "Solution",
    "Survey",
    "TimelineEvent",
    "get_engine",
    "next_id",
    "next_ids",
    "reset_engine",
    "session_scope",
    "utcnow",
]

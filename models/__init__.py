"""SQLAlchemy 2 typed ORM: the product's own durable state (Prefect keeps only run state).

Importing this package registers every table on ``Base.metadata`` (Alembic and tests rely on it).
"""

from models.access import AccessEvent, ConsoleSession, LoginFailure
from models.base import LOCK, Base, get_engine, reset_engine, session_scope, utcnow
from models.feedback import Feedback
from models.idempotency import IdempotencyKey
from models.ids import Counter, next_id, next_ids
from models.incident import Deadline, FlowMark, Incident, TimelineEvent
from models.integration import IntegrationLink, OpinionTask, Waybill
from models.knowledge import KnowledgePage, KnowledgeTarget
from models.notification import CustomerUpdate, Delivery
from models.people import Deputy, Person, RotaShift, ScopedToken
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
from models.worker import Worker

__all__ = [
    "LOCK",
    "AccessEvent",
    "Base",
    "CauseAnalysis",
    "Confirmation",
    "ConsoleSession",
    "Contact",
    "Counter",
    "CustomerUpdate",
    "Deadline",
    "Delivery",
    "Deputy",
    "Feedback",
    "FlowMark",
    "IdempotencyKey",
    "ImprovementAction",
    "Incident",
    "IntegrationLink",
    "KnowledgePage",
    "KnowledgeTarget",
    "LoginFailure",
    "Measure",
    "Meeting",
    "OpinionTask",
    "Person",
    "Record",
    "RotaShift",
    "ScopedToken",
    "Solution",
    "Survey",
    "TimelineEvent",
    "Waybill",
    "Worker",
    "get_engine",
    "next_id",
    "next_ids",
    "reset_engine",
    "session_scope",
    "utcnow",
]

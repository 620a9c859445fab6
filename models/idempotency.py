"""The first answer to each idempotent HTTP action, kept so a repeat gets it back with no second effect.

Why a table (not memory): the answer must survive a restart of the service and hold across its
processes, and the primary key is what makes two concurrent requests with one key meet: the second
insert fails, so exactly one of them acts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

KEY_LENGTH = 200  # of the Idempotency-Key header; longer keys are refused (422)


class IdempotencyKey(Base):
    """``status`` and ``body`` are NULL while the first request is still being answered."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH + 8), primary_key=True)
    route: Mapped[str] = mapped_column(String(300))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

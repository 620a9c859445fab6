"""Where the archive's pages are in the knowledge bases (Confluence, Notion), and what they last got.

Why a row per page and target: a push must update the page it made before, never add a second one, so
the remote id is kept with the digest of what was sent (an unchanged page is not sent again), the
remote version (Confluence wants the next number), and the retry state of a page that failed. The
unique ``(target, path)`` is where two replicas pushing at once meet; ``claimed_until`` lets one push.
A target whose credential was refused is remembered with that credential's digest: it is not tried
again until the configuration changes or someone pushes by hand.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class KnowledgePage(Base):
    """One page (an incident's records, a monthly or quarterly review) in one knowledge base."""

    __tablename__ = "knowledge_pages"
    __table_args__ = (UniqueConstraint("target", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(16))  # confluence | notion
    path: Mapped[str] = mapped_column(String(64))  # incidents/<ID> | reviews/<YYYY-MM> | reviews/<YYYY-Qn>
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.id"))
    title: Mapped[str] = mapped_column(String(255))
    remote_id: Mapped[str | None] = mapped_column(String(64))  # the page's id there; None until created
    version: Mapped[int] = mapped_column(default=0)  # Confluence's version number; Notion: times written
    digest: Mapped[str | None] = mapped_column(String(64))  # sha256 of what was last pushed successfully
    source_at: Mapped[datetime | None]  # records: the newest archived record seen; reviews: last checked
    pushed_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(default=0)  # pushes failed in a row
    retry_at: Mapped[datetime | None]  # no automatic push before this (after a failure)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_until: Mapped[datetime | None]  # one pusher at a time


class KnowledgeTarget(Base):
    """A knowledge base whose credential was refused (401/403): not retried with the same one."""

    __tablename__ = "knowledge_targets"

    target: Mapped[str] = mapped_column(String(16), primary_key=True)
    refused_key: Mapped[str] = mapped_column(String(64))  # sha256 of the refused settings
    refused_at: Mapped[datetime]
    error: Mapped[str | None] = mapped_column(Text)

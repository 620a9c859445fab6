"""A worker process on the roll of the deployment it serves (incident/engine/roll.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Worker(Base):
    """One ``incident worker`` process, from its start: who could have claimed a run of its deployment.

    Kept after the process ends (a run it claimed may still wait to be found); purged once not seen
    for a day."""

    __tablename__ = "workers"
    __table_args__ = (Index("ix_workers_deployment", "deployment_id"),)

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # host:pid:nonce, as its claims name it
    deployment_id: Mapped[str] = mapped_column(String(36))  # Prefect's id of the deployment it serves
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    pgid: Mapped[int]  # its process group: the runs' processes it starts are in it
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]  # its sweep's last pass

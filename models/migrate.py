"""Alembic migrations, run by the service (and tests) on start: ``upgrade()`` to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from incident import settings

HERE = Path(__file__).parent / "migrations"


def config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", (url or settings.db_url()).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None) -> None:
    command.upgrade(config(url), "head")

"""Alembic migrations: ``upgrade()`` runs when the service (and tests) start; ``incident db`` and
stock ``alembic`` (with the top-level ``alembic.ini``) run them by hand.

Why a programmatic config besides ``alembic.ini``: the installed package has no ``alembic.ini``
next to it, so the service builds the same configuration from the migrations folder it ships.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from incident import settings

HERE = Path(__file__).parent / "migrations"


def config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", (url or settings.db_url()).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(config(url), revision)


def downgrade(revision: str, url: str | None = None) -> None:
    """Down to ``revision`` (``base`` drops every table of ours; ``-1`` one step)."""
    command.downgrade(config(url), revision)


def current(url: str | None = None) -> str | None:
    """The database's revision, or None when it has never been migrated (or was downgraded to base)."""
    engine = create_engine(url or settings.db_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision this code ships."""
    head = ScriptDirectory.from_config(config("sqlite://")).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head

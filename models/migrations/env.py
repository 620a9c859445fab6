"""Alembic environment of the product's own tables.

Why it imports so little: ``alembic upgrade`` must keep working on revisions written long ago, so
running migrations needs only SQLAlchemy and the URL, and no module of the application (which may move).
The URL comes from the Alembic config (``models.migrate.config`` sets it) or else from the environment
as the service reads it (``INCIDENT_DB_URL``, default the SQLite file in ``INCIDENT_HOME``, default
``.incident``: ``incident/settings.py``'s rule, read here with ``os.environ``; tests/test_migrations.py
holds the two equal), so stock ``alembic upgrade head`` from the repository root works with
``alembic.ini``. ``models`` (the ORM metadata) is imported only by the commands that compare it with
the database: ``alembic check`` and ``alembic revision --autogenerate``.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import context
from sqlalchemy import create_engine, event, pool, text

config = context.config
MIGRATION_LOCK = 0x494E4344_42  # "INCDB": a PostgreSQL advisory lock key of our own
if config.config_file_name is not None:  # stock `alembic` with alembic.ini: its logging sections
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("INCIDENT_DB_URL")
    if url:
        return url
    home = Path(os.environ.get("INCIDENT_HOME") or ".incident").resolve()
    home.mkdir(parents=True, exist_ok=True)  # as the service makes it
    return f"sqlite:///{home / 'incident.db'}"


def _wants_metadata() -> bool:
    """True for the commands that diff the ORM against the database (check, autogenerate).

    From the ``alembic`` command line this is read from its arguments; a program calling
    ``alembic.command.check`` itself sets ``config.attributes["autogenerate"] = True``.
    """
    if config.attributes.get("autogenerate"):
        return True
    opts = config.cmd_opts
    if opts is None or not getattr(opts, "cmd", None):
        return False
    name = getattr(opts.cmd[0], "__name__", "")
    return name == "check" or (name == "revision" and bool(getattr(opts, "autogenerate", False)))


def _target_metadata() -> Any:
    if not _wants_metadata():
        return None
    import models

    return models.Base.metadata


def run_migrations_online() -> None:
    url = _url()
    sqlite = url.startswith("sqlite")
    # NullPool: a migration is one connection, closed when done (no engine cached in the process).
    engine = create_engine(
        url, poolclass=pool.NullPool, connect_args={"timeout": 30, "isolation_level": None} if sqlite else {}
    )
    if sqlite:
        # One write transaction from the start (the driver's own transaction handling off), so the
        # DDL is transactional and a second migrator waits for the first, then finds head.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=_target_metadata(),
                render_as_batch=sqlite,  # SQLite cannot ALTER most things: batch copies the table
                transactional_ddl=True,  # PostgreSQL's DDL is; SQLite's is, in the transaction above
                compare_type=True,
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Replicas starting together (each `incident serve` upgrades) take turns: the
                    # next one waits here, then finds the schema at head and has nothing to do.
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=_target_metadata(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()

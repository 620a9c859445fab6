"""people and audit: sessions bound to their credential, failed logins shared by replicas, where each
act on the timeline came from (channel, address), indexes for reading the audit by time

Sessions opened before this revision have no credential and end (their people log in again).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 03:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("console_sessions") as batch:
        batch.add_column(sa.Column("credential", sa.String(length=64), nullable=True))
        batch.create_index("ix_console_sessions_expires_at", ["expires_at"])
    with op.batch_alter_table("timeline") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("address", sa.String(length=64), nullable=True))
        batch.create_index("ix_timeline_event_at", ["event", "at"])
    op.create_index("ix_access_at", "access_events", ["at"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_key", "login_failures", ["key"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_at", table_name="login_failures")
    op.drop_index("ix_login_failures_key", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_access_at", table_name="access_events")
    with op.batch_alter_table("timeline") as batch:
        batch.drop_index("ix_timeline_event_at")
        batch.drop_column("address")
        batch.drop_column("channel")
    with op.batch_alter_table("console_sessions") as batch:
        batch.drop_index("ix_console_sessions_expires_at")
        batch.drop_column("credential")

"""console: an incident's owner; the inbox state of feedback that opens no incident

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INBOX = (
    sa.Column("inbox_status", sa.String(length=16), nullable=True),
    sa.Column("routed_to", sa.String(length=32), nullable=True),
    sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("answer", sa.Text(), nullable=True),
    sa.Column("answered_by", sa.String(length=240), nullable=True),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("promoted_to", sa.String(length=32), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        batch.create_index("ix_incidents_owner", ["owner"])
    with op.batch_alter_table("feedback") as batch:
        for column in INBOX:
            batch.add_column(column.copy())
        batch.create_index("ix_feedback_inbox_status", ["inbox_status"])
    # Feedback recorded before the inbox existed: every one without an incident is open in it.
    op.execute(
        "UPDATE feedback SET inbox_status = 'open'"
        " WHERE incident_id IS NULL AND kind IN ('suggestion', 'inquiry', 'praise')"
    )


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_index("ix_feedback_inbox_status")
        for column in reversed(INBOX):
            batch.drop_column(column.name)
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index("ix_incidents_owner")
        batch.drop_column("owner")

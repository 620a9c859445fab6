"""per-customer duties: whose first contact a deadline is, and which customer a contact reached

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The customer a first-contact duty is owed to, named by that customer's first feedback id.
    with op.batch_alter_table("deadlines") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=32), nullable=True))
        batch.create_index("ix_deadlines_incident_subject", ["incident_id", "subject"])
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("feedback_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("feedback_id")
    with op.batch_alter_table("deadlines") as batch:
        batch.drop_index("ix_deadlines_incident_subject")
        batch.drop_column("subject")

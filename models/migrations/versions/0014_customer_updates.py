"""progress updates reach the customer: consent at intake, the update's text, the queue of their copies

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 10:00:00

Reports recorded before this revision have no recorded consent (false): their customers hear updates
from a person, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("consent", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
    op.create_table(
        "customer_updates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("feedback_id", sa.String(length=32), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_customer_updates_state", "customer_updates", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_customer_updates_state", table_name="customer_updates")
    op.drop_table("customer_updates")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("message")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("consent")

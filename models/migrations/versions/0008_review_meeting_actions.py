"""review: the post-mortem meeting and its sign-off, improvement actions, an incident's recurrence_of

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        _when("at"),
        _when("recorded_at"),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("went_well", sa.JSON(), nullable=False),
        sa.Column("went_badly", sa.JSON(), nullable=False),
        sa.Column("decisions", sa.JSON(), nullable=False),
        _when("signed_at", nullable=True),
        sa.Column("signed_by", sa.String(length=200), nullable=True),
        sa.Column("signed_role", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id"),
    )
    op.create_table(
        "improvement_actions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        _when("due_at"),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        _when("created_at"),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _when("closed_at", nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("deadline_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["deadline_id"], ["deadlines.id"]),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_improvement_actions_incident_id", "improvement_actions", ["incident_id"])
    op.add_column("incidents", sa.Column("recurrence_of", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("recurrence_of")
    op.drop_index("ix_improvement_actions_incident_id", table_name="improvement_actions")
    op.drop_table("improvement_actions")
    op.drop_table("meetings")

"""chains: each missed deadline's escalation chain (next step, when, last sent) and its acknowledgement

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_step", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("chain_next_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acked_by", sa.String(length=240), nullable=True))
        batch_op.create_index("ix_deadlines_chain_next", ["chain_next_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_index("ix_deadlines_chain_next")
        for column in ("acked_by", "acked_at", "escalated_at", "chain_next_at", "chain_step"):
            batch_op.drop_column(column)

"""the workers' roll: who could have claimed a run of a deployment

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 11:00:00

Why: Prefect's Runner claims a run before its process starts and names nobody on it; a worker killed
in between left the run Pending for ``STUCK_PENDING`` (incident/engine/roll.py says how the roll
tells such a run).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=120), primary_key=True),
        sa.Column("deployment_id", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pgid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_workers_deployment", "workers", ["deployment_id"])


def downgrade() -> None:
    op.drop_index("ix_workers_deployment", table_name="workers")
    op.drop_table("workers")

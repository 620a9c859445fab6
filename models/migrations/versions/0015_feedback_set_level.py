"""the level a report opened its incident at or raised it to, on the report

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 08:00:00

Why on the report: in a burst the worker starts level-1 events' runs only, and the incident's level
now does not say which report made it level 1 (a storm's L3 opening was taken as one once the incident
was L1). Reports recorded before this revision have none; the worker reads their incident's level, as
before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("set_level", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("set_level")

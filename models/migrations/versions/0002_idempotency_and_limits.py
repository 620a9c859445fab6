"""idempotency keys, one survey and one confirmation per round, column widths that fit the API's limits

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:40:00

Why the widths: an approval by a 200-character name is written to the timeline as "name (role)",
235 characters in a 200-character column, and correlation keys joined two 200-character fields
into a 400-character column; on PostgreSQL both were refused every time. SQLite does not enforce
lengths, and rebuilding its ``incidents`` table under foreign keys would fail, so the widths are
changed on the other databases only.

Why the duplicates are deleted before the unique indexes: the lost-race duplicates they forbid are
what the bug produced. The survey the flow used is the first of its round, the confirmation the
latest; those are kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDENED = (
    ("timeline", "by", 200, 240),
    ("incidents", "correlation_key", 400, 1000),
    ("incidents", "open_key", 400, 1000),
    ("feedback", "customer_key", 240, 1000),
)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=208), nullable=False),
        sa.Column("route", sa.String(length=300), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.execute(
        "DELETE FROM surveys WHERE id NOT IN (SELECT MIN(id) FROM surveys GROUP BY incident_id, round)"
    )
    op.execute(
        "DELETE FROM confirmations WHERE id NOT IN "
        "(SELECT MAX(id) FROM confirmations GROUP BY incident_id, round)"
    )
    op.create_index("uq_surveys_round", "surveys", ["incident_id", "round"], unique=True)
    op.create_index("uq_confirmations_round", "confirmations", ["incident_id", "round"], unique=True)
    _widen(new=True)


def downgrade() -> None:
    _widen(new=False)
    op.drop_index("uq_confirmations_round", table_name="confirmations")
    op.drop_index("uq_surveys_round", table_name="surveys")
    op.drop_table("idempotency_keys")


def _widen(new: bool) -> None:
    """ALTER on PostgreSQL; on SQLite (which does not enforce lengths) batch mode rewrites the tables, so
    the schema says what the models say and ``alembic check`` finds no drift."""
    for table, column, old, wide in WIDENED:
        target, current = (wide, old) if new else (old, wide)
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=sa.String(target), existing_type=sa.String(current))

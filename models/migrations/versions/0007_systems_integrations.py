"""systems integrations: links from outside records (Zendesk tickets) to feedback, and SF waybills

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("feedback_id", sa.String(length=32), nullable=True),
        sa.Column("incident_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("told_status", sa.String(length=16), nullable=True),
        sa.Column("told_level", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("system", "external_id"),
    )
    op.create_index("ix_integration_links_incident_id", "integration_links", ["incident_id"])
    op.create_table(
        "waybills",
        sa.Column("waybill_no", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=16), nullable=False),
        sa.Column("order_no", sa.String(length=100), nullable=True),
        sa.Column("first_scan_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("promised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_op_code", sa.String(length=16), nullable=True),
        sa.Column("last_remark", sa.Text(), nullable=True),
        sa.Column("last_address", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alarm_feedback_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("waybill_no"),
    )


def downgrade() -> None:
    op.drop_table("waybills")
    op.drop_index("ix_integration_links_incident_id", table_name="integration_links")
    op.drop_table("integration_links")

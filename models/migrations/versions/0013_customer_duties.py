"""per-customer duties: whose first contact a deadline is, and which customers a contact reached

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 19:10:00

What the data becomes (README "Per-customer duties"):

- every ``contact`` deadline names its customer (``subject``): the incident's first report that has a
  customer (an alarm naming nobody has none), so that customer can be named in ``incident contact
  --customer``;
- an incident still open gets a ``customer_contact`` duty for every later distinct customer, due their
  first report's time plus the window its ``contact`` deadline had (a revision imports no application
  code, so no business calendar: the contact row's own span stands in for it). Before this revision one
  contact marked every customer contacted; now each is owed one. A duty already past due is ``missed``
  without a chain (no ``chain_next_at``): the upgrade pages nobody, but ``incident show`` and the console
  count it as overdue until the customer is contacted;
- a contact row is one act: ``progress_update`` is true for the rows that were updates before (every
  contact but the first), and ``customers`` (the customers named) is unknown for them (NULL).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

deadlines = sa.table(
    "deadlines",
    sa.column("id", sa.Integer()),
    sa.column("incident_id", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("due_at", sa.DateTime(timezone=True)),
    sa.column("state", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("missed_at", sa.DateTime(timezone=True)),
    sa.column("chain_step", sa.Integer()),
    sa.column("subject", sa.String()),
)
feedback = sa.table(
    "feedback",
    sa.column("id", sa.String()),
    sa.column("incident_id", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("customer_name", sa.String()),
    sa.column("contact", sa.String()),
    sa.column("customer_key", sa.String()),
    sa.column("received_at", sa.DateTime(timezone=True)),
)
incidents = sa.table("incidents", sa.column("id", sa.String()), sa.column("status", sa.String()))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _customers(bind: sa.Connection, incident_id: str) -> list[tuple[str, str, datetime]]:
    """(first report id, customer key, received) of each distinct customer, in the order they joined."""
    nobody = sa.and_(
        feedback.c.kind == "alarm", feedback.c.customer_name.is_(None), feedback.c.contact.is_(None)
    )
    rows = bind.execute(
        sa.select(feedback.c.id, feedback.c.customer_key, feedback.c.received_at)
        .where(feedback.c.incident_id == incident_id, sa.not_(nobody))
        .order_by(feedback.c.received_at, feedback.c.id)
    ).all()
    seen: dict[str, tuple[str, str, datetime]] = {}
    for fid, key, at in rows:
        seen.setdefault(key, (fid, key, _aware(at)))
    return list(seen.values())


def _backfill(bind: sa.Connection) -> None:
    now = datetime.now(UTC)
    contacts = bind.execute(
        sa.select(deadlines.c.id, deadlines.c.incident_id, deadlines.c.due_at, deadlines.c.created_at,
                  incidents.c.status)
        .join(incidents, incidents.c.id == deadlines.c.incident_id)
        .where(deadlines.c.kind == "contact")
        .order_by(deadlines.c.incident_id, deadlines.c.id)
    ).all()  # fmt: skip
    done: set[str] = set()
    for row_id, incident_id, due_at, created_at, status in contacts:
        if incident_id in done:
            continue
        done.add(incident_id)
        customers = _customers(bind, incident_id)
        if not customers:
            continue
        subject = customers[0]
        bind.execute(sa.update(deadlines).where(deadlines.c.id == row_id).values(subject=subject[0]))
        if status == "closed":
            continue
        window = _aware(due_at) - _aware(created_at)
        for fid, _key, joined in customers[1:]:
            due = joined + window
            late = due < now
            bind.execute(
                sa.insert(deadlines).values(
                    incident_id=incident_id, kind="customer_contact", subject=fid, due_at=due,
                    state="missed" if late else "pending", created_at=joined,
                    missed_at=now if late else None, chain_step=0,
                )
            )  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("deadlines") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=32), nullable=True))
        batch.create_index("ix_deadlines_incident_subject", ["incident_id", "subject"])
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("progress_update", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("customers", sa.JSON(), nullable=True))
    op.execute("UPDATE contacts SET progress_update = (NOT first)")
    _backfill(op.get_bind())


def downgrade() -> None:
    op.execute("DELETE FROM deadlines WHERE kind = 'customer_contact'")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("customers")
        batch.drop_column("progress_update")
    with op.batch_alter_table("deadlines") as batch:
        batch.drop_index("ix_deadlines_incident_subject")
        batch.drop_column("subject")

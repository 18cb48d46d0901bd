"""Nightly subscription lists, the outbox and job leases.

Revision ID: 0003
Revises: 0002

Written by hand; ``tests/unit/test_store_schema.py`` checks that the migrations together yield
exactly the schema of ``serviceplatform.store.models``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "subscription_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("authority_cvr", sa.String(8), nullable=False),
        sa.Column("list_date", sa.Date(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fetched_at", UtcDateTime(), nullable=False),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("subscribed_count", sa.Integer(), nullable=False),
        sa.Column("unsubscribed_count", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscription_snapshots"),
        sa.UniqueConstraint(
            "authority_cvr",
            "list_date",
            name="uq_subscription_snapshots_authority_cvr_list_date",
        ),
        sa.CheckConstraint(
            "state IN ('fetching', 'complete')", name="ck_subscription_snapshots_state"
        ),
    )
    op.create_table(
        "subscription_entries",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("number", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "kind", "number", name="pk_subscription_entries"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["subscription_snapshots.id"],
            name="fk_subscription_entries_snapshot_id_subscription_snapshots",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("authority_cvr", sa.String(8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
        sa.CheckConstraint("state IN ('pending', 'delivered')", name="ck_outbox_state"),
    )
    op.create_index("ix_outbox_state_id", "outbox", ["state", "id"])
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
        sa.Column("lease_until", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_job_leases"),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_index("ix_outbox_state_id", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("subscription_entries")
    op.drop_table("subscription_snapshots")

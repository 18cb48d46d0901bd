"""Agreement history: every lifecycle change with who, when and why.

Revision ID: 0004
Revises: 0003

Written by hand; ``tests/unit/test_store_schema.py`` checks that the migrations together yield
exactly the schema of ``serviceplatform.store.models``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "agreement_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agreement_uuid", sa.String(36), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agreement_events"),
    )
    op.create_index(
        "ix_agreement_events_agreement_uuid_id", "agreement_events", ["agreement_uuid", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_agreement_events_agreement_uuid_id", table_name="agreement_events")
    op.drop_table("agreement_events")

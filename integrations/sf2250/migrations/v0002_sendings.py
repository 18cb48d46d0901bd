"""Sendings: the ledger that keeps a repeated SF1600 afsendBrev from sending twice.

Revision ID: 0002
Revises: 0001

Written by hand; ``tests/unit/test_store_schema.py`` checks that the migrations together yield
exactly the schema of the models
(``serviceplatform.store.models`` and the integrations' ``tables`` modules).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sendings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("authority_cvr", sa.String(8), nullable=False),
        sa.Column("sending_key", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(16), nullable=True),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sendings"),
        sa.UniqueConstraint(
            "service",
            "authority_cvr",
            "sending_key",
            name="uq_sendings_service_authority_cvr_sending_key",
        ),
        sa.CheckConstraint("state IN ('sending', 'sent', 'failed')", name="ck_sendings_state"),
    )


def downgrade() -> None:
    op.drop_table("sendings")

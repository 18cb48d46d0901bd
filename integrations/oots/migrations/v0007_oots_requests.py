"""OOTS evidence requests: one row per request of an authority, and where it stands.

Revision ID: 0007
Revises: 0006

The documents themselves stay in ``oots_messages`` (migration 0005). Written by hand;
``tests/unit/test_store_schema.py`` checks that the migrations together yield exactly the
schema of the models (``serviceplatform.store.models`` and the integrations' ``tables``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "oots_requests",
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("authority_cvr", sa.String(8), nullable=False),
        sa.Column("consumer_system", sa.String(36), nullable=True),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("first_message_id", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=False),
        sa.Column("provider_scheme", sa.String(255), nullable=False),
        sa.Column("to_party", sa.String(255), nullable=False),
        sa.Column("edm_version", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("preview_location", sa.Text(), nullable=True),
        sa.Column("preview_method", sa.String(16), nullable=True),
        sa.Column("preview_description", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(16), nullable=True),
        sa.Column("edm_error_code", sa.String(16), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("answer_message_id", sa.String(255), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_oots_requests"),
        sa.UniqueConstraint("message_id", name="uq_oots_requests_message_id"),
        sa.CheckConstraint(
            "state IN ('queued', 'submitted', 'preview_required', 'answered', 'failed')",
            name="ck_oots_requests_state",
        ),
    )
    op.create_index("ix_oots_requests_authority_cvr", "oots_requests", ["authority_cvr"])
    op.create_index("ix_oots_requests_state", "oots_requests", ["state"])


def downgrade() -> None:
    op.drop_index("ix_oots_requests_state", table_name="oots_requests")
    op.drop_index("ix_oots_requests_authority_cvr", table_name="oots_requests")
    op.drop_table("oots_requests")

"""OOTS messages: answers received through Domibus (stored before acknowledging) and requests.

Revision ID: 0005
Revises: 0004

Written by hand; ``tests/unit/test_store_schema.py`` checks that the migrations together yield
exactly the schema of the models
(``serviceplatform.store.models`` and the integrations' ``tables`` modules).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "oots_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("ref_to_message_id", sa.String(255), nullable=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("from_party", sa.String(255), nullable=False),
        sa.Column("to_party", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("attachments", sa.Text(), nullable=False),
        sa.Column("header", sa.Text(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oots_messages"),
        sa.UniqueConstraint(
            "direction", "message_id", name="uq_oots_messages_direction_message_id"
        ),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_oots_messages_direction"),
        sa.CheckConstraint(
            "state IN ('received', 'consumed', 'submitted')", name="ck_oots_messages_state"
        ),
    )
    op.create_index("ix_oots_messages_conversation_id", "oots_messages", ["conversation_id"])
    op.create_index("ix_oots_messages_ref_to_message_id", "oots_messages", ["ref_to_message_id"])


def downgrade() -> None:
    op.drop_index("ix_oots_messages_ref_to_message_id", table_name="oots_messages")
    op.drop_index("ix_oots_messages_conversation_id", table_name="oots_messages")
    op.drop_table("oots_messages")

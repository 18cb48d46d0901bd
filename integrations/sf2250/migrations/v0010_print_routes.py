"""Print routes per agreement (SF1600 or SF1601) and the outward id of a sending.

Revision ID: 0010
Revises: 0009

``print_routes``: how an agreement's EP_SP1/EP_SP4 calls go out (no row: ``sf1600``).
``sendings.outward_id``: the MeMo ``messageUUID`` of an SF1601 sending, kept across attempts.
Written by hand; ``tests/unit/test_store_schema.py`` checks the migrations against the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("sendings") as batch:
        batch.add_column(sa.Column("outward_id", sa.String(36), nullable=True))
    op.create_table(
        "print_routes",
        sa.Column("agreement_uuid", sa.String(36), nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("agreement_uuid", name="pk_print_routes"),
        sa.CheckConstraint("route IN ('sf1600', 'sf1601')", name="ck_print_routes_route"),
    )


def downgrade() -> None:
    op.drop_table("print_routes")
    with op.batch_alter_table("sendings") as batch:
        batch.drop_column("outward_id")

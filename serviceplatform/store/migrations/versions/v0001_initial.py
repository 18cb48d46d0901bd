"""Initial schema: consumer systems, agreements, routes, audit records, replay cache.

Revision ID: 0001
Revises: (none)

Written by hand; ``tests/unit/test_store_schema.py`` checks that it yields exactly the schema
of ``serviceplatform.store.models``. Names follow the models' naming convention.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "consumer_systems",
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("cert_subject", sa.String(1024), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_consumer_systems"),
        sa.UniqueConstraint("cert_subject", name="uq_consumer_systems_cert_subject"),
    )
    op.create_table(
        "agreements",
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("authority_cvr", sa.String(8), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("consumer_system", sa.String(36), nullable=False),
        sa.Column("supplier", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("register_cert_alias", sa.String(255), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_agreements"),
        sa.ForeignKeyConstraint(
            ["consumer_system"],
            ["consumer_systems.uuid"],
            name="fk_agreements_consumer_system_consumer_systems",
        ),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'suspended', 'revoked')",
            name="ck_agreements_status",
        ),
    )
    op.create_index(
        "ix_agreements_authority_cvr_service_consumer_system",
        "agreements",
        ["authority_cvr", "service", "consumer_system"],
    )
    op.create_table(
        "routes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("authority_cvr", sa.String(8), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("sysid", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(10), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_routes"),
        sa.UniqueConstraint(
            "authority_cvr",
            "service",
            "role",
            "subject",
            name="uq_routes_authority_cvr_service_role_subject",
        ),
    )
    op.create_table(
        "audit_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("authority_cvr", sa.String(8), nullable=True),
        sa.Column("consumer_system", sa.String(36), nullable=True),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(128), nullable=True),
        sa.Column("subject", sa.String(10), nullable=True),
        sa.Column("sysid", sa.String(64), nullable=True),
        sa.Column("upstream_status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("error_code", sa.String(16), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_records"),
        sa.CheckConstraint("outcome IN ('ok', 'fault')", name="ck_audit_records_outcome"),
    )
    op.create_index("ix_audit_records_at", "audit_records", ["at"])
    op.create_table(
        "replay_cache",
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_replay_cache"),
    )
    op.create_index("ix_replay_cache_expires_at", "replay_cache", ["expires_at"])


def downgrade() -> None:
    op.drop_table("replay_cache")
    op.drop_table("audit_records")
    op.drop_table("routes")
    op.drop_table("agreements")
    op.drop_table("consumer_systems")

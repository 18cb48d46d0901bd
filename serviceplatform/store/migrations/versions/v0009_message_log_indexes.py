"""Message log indexes: what its filters and its newest-first paging read by.

Revision ID: 0009
Revises: 0008

The message log (``serviceplatform/messagelog``) pages the audit table newest first by
``at`` (indexed since 0001) and filters by authority, service, MessageID and subject; the
nightly outbox is listed by ``created_at``. Outcome, operation and error code are read along
the ``at`` index: faults are few, and an index per column would tax every call's INSERT.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

#: (index name, table, columns); the names follow the models' naming convention.
INDEXES = (
    ("ix_audit_records_authority_cvr_at", "audit_records", ["authority_cvr", "at"]),
    ("ix_audit_records_service_at", "audit_records", ["service", "at"]),
    ("ix_audit_records_message_id", "audit_records", ["message_id"]),
    ("ix_audit_records_subject", "audit_records", ["subject"]),
    ("ix_outbox_created_at", "outbox", ["created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

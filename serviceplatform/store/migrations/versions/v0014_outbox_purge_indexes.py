"""Indexes for purging delivered outbox rows and for counting the outbox without its bodies.

Revision ID: 0014
Revises: 0013

Delivered outbox rows are deleted once ``[distributor] delivered_retention_days`` have passed
(``Outbox.purge_delivered``). ``ix_outbox_state_delivered_at`` holds the delivered state rows
alone by ``delivered_at`` (partial, as the pending index of 0012), so the purge finds the
rows past the retention without reading the others, and a night's insert of pending rows
writes nothing to it. ``ix_outbox_id_topic_authority_cvr`` covers what the joins from
``outbox_state`` read of an outbox row (its topic and authority): SQLite read each row's
page, body and all, to count the outbox (60,000 delivered rows: about 100 ms a count, the
whole table through the page cache).

Only indexes: no table is rebuilt (0012's trigger stays), and old code runs beside them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_state_delivered_at",
        "outbox_state",
        ["delivered_at"],
        postgresql_where=sa.text("state = 'delivered'"),
        sqlite_where=sa.text("state = 'delivered'"),
    )
    op.create_index("ix_outbox_id_topic_authority_cvr", "outbox", ["id", "topic", "authority_cvr"])


def downgrade() -> None:
    op.drop_index("ix_outbox_id_topic_authority_cvr", table_name="outbox")
    op.drop_index("ix_outbox_state_delivered_at", table_name="outbox_state")

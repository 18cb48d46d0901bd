"""Outbox rows with a chosen delivery state, written the way the platform writes them.

The row goes into ``outbox`` (its trigger writes the ``outbox_state`` row, pending), and the
state row is then set to the state a test needs: the only two steps a test may take to make
an outbox row in any state, whatever the database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, update

from serviceplatform.store.models import outbox, outbox_state


def add_outbox_row(
    connection: Connection,
    *,
    authority_cvr: str,
    message_id: str | None = None,
    topic: str = "beskedfordeler",
    body: str = "<Haendelsesbesked/>",
    created_at: datetime | None = None,
    state: str = "pending",
    attempts: int = 0,
    last_error: str | None = None,
    delivered_at: datetime | None = None,
) -> int:
    """Insert one outbox row in ``state``; returns its id."""
    row_id: int = connection.execute(
        insert(outbox)
        .values(
            message_id=message_id or str(uuid.uuid4()),
            topic=topic,
            authority_cvr=authority_cvr,
            body=body,
            created_at=created_at or datetime.now(UTC),
        )
        .returning(outbox.c.id)
    ).scalar_one()
    connection.execute(
        update(outbox_state)
        .where(outbox_state.c.id == row_id)
        .values(state=state, attempts=attempts, last_error=last_error, delivered_at=delivered_at)
    )
    return row_id

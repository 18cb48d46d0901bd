"""The transactional outbox: messages decided in a transaction, delivered after it.

Rows are written by the transaction that decided them (an integration's store), so a decision
and its messages commit together or not at all. A relay (``serviceplatform.relay``) reads
``pending`` rows oldest first and marks each ``delivered`` after the distributor accepted it;
a crash between the two delivers the row again (at least once; receivers dedupe by the
message id, which is deterministic). A failed attempt only counts and keeps the error text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox

_ERROR_TEXT_LIMIT = 1000


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    message_id: str
    topic: str
    authority_cvr: str
    body: str
    attempts: int
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    delivered: int
    #: Pending rows per authority CVR.
    pending_by_authority: dict[str, int]
    #: Pending rows that failed at least once.
    failing: int


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def pending(self, *, limit: int, topic: str | None = None) -> list[OutboxMessage]:
        query = select(outbox).where(outbox.c.state == "pending").order_by(outbox.c.id)
        if topic is not None:
            query = query.where(outbox.c.topic == topic)
        with self._db.transaction() as connection:
            return [_message(row) for row in connection.execute(query.limit(limit))]

    def mark_delivered(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        with self._db.transaction(write_first=True) as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id.in_(list(ids)), outbox.c.state == "pending")
                .values(state="delivered", delivered_at=now, attempts=outbox.c.attempts + 1)
            )

    def mark_failed(self, row_id: int, error: str) -> None:
        with self._db.transaction(write_first=True) as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(attempts=outbox.c.attempts + 1, last_error=error[:_ERROR_TEXT_LIMIT])
            )

    def counts(self, topic: str | None = None, *, authority_cvr: str | None = None) -> OutboxCounts:
        """Pending, delivered and failing messages; of one topic and one authority if given."""
        query = select(
            outbox.c.state, outbox.c.authority_cvr, func.count(), func.max(outbox.c.attempts)
        )
        failing_query = select(func.count()).where(
            outbox.c.state == "pending", outbox.c.attempts > 0
        )
        if topic is not None:
            query = query.where(outbox.c.topic == topic)
            failing_query = failing_query.where(outbox.c.topic == topic)
        if authority_cvr is not None:
            query = query.where(outbox.c.authority_cvr == authority_cvr)
            failing_query = failing_query.where(outbox.c.authority_cvr == authority_cvr)
        query = query.group_by(outbox.c.state, outbox.c.authority_cvr)
        with self._db.transaction() as connection:
            rows = connection.execute(query).all()
            failing = connection.execute(failing_query).scalar_one()
        by_authority: dict[str, int] = {}
        totals = {"pending": 0, "delivered": 0}
        for state, authority, count, _ in rows:
            totals[state] = totals.get(state, 0) + count
            if state == "pending":
                by_authority[authority] = by_authority.get(authority, 0) + count
        return OutboxCounts(totals["pending"], totals["delivered"], by_authority, failing)


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        message_id=row.message_id,
        topic=row.topic,
        authority_cvr=row.authority_cvr,
        body=row.body,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
    )

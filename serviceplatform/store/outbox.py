"""The transactional outbox: messages decided in a transaction, delivered after it.

Rows are written by the transaction that decided them (an integration's store), so a decision
and its messages commit together or not at all. A relay (``serviceplatform.relay``) claims
``pending`` rows oldest first (:meth:`Outbox.claim`) and marks each ``delivered`` after the
distributor accepted it; a crash between the two delivers the row again (at least once;
receivers dedupe by the message id, which is deterministic). A failed attempt only counts and
keeps the error text.

**Claiming.** A claim is a transaction that locks its rows until it ends, and the relay
delivers and marks them inside it, so two relays (a ``subscriptions run`` and a ``deliver``,
or two ``deliver``) never hand the same row over twice. PostgreSQL locks the rows
(``SELECT ... FOR UPDATE SKIP LOCKED``): a second relay skips them and takes the next ones,
and nothing else waits. SQLite can only lock the whole database: the claim takes the writer
lock (``BEGIN IMMEDIATE``, queued at the writer gate), so a second relay, and every other
writer, waits until the batch is marked; the batch size bounds that wait. A crash, or any
error, rolls the claim back: its rows are pending again, never lost.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY

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


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A claimed row: only what a distributor needs (a night claims tens of thousands)."""

    id: int
    message_id: str
    authority_cvr: str
    body: str


class Claim:
    """Rows locked for one relay until the claim's transaction ends; marks them inside it."""

    def __init__(self, connection: Connection, rows: list[ClaimedMessage]) -> None:
        self._connection = connection
        self.rows = rows

    def mark_delivered(self, ids: Sequence[int], now: datetime) -> None:
        _mark_delivered(self._connection, ids, now)

    def mark_failed(self, row_id: int, error: str) -> None:
        _mark_failed(self._connection, row_id, error)


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def claims_overlap(self) -> bool:
        """Whether one relay may hold a second claim while the first is open: PostgreSQL
        locks rows, SQLite's claim holds the one writer lock (a second would wait for it)."""
        return self._db.dialect == "postgresql"

    @contextmanager
    def claim(self, *, limit: int, topic: str | None = None, after: int = 0) -> Iterator[Claim]:
        """Up to ``limit`` pending rows with an id above ``after``, oldest first, locked for
        the caller until the block ends (committed on success, rolled back on an error)."""
        query = (
            select(outbox.c.id, outbox.c.message_id, outbox.c.authority_cvr, outbox.c.body)
            .where(outbox.c.state == "pending", outbox.c.id > after)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if topic is not None:
            query = query.where(outbox.c.topic == topic)
        if self._db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        # write_first: on SQLite the claim holds the writer lock from BEGIN on.
        with self._db.transaction(write_first=True) as connection:
            rows = [ClaimedMessage(*row) for row in connection.execute(query)]
            yield Claim(connection, rows)

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
            _mark_delivered(connection, ids, now)

    def mark_failed(self, row_id: int, error: str) -> None:
        with self._db.transaction(write_first=True) as connection:
            _mark_failed(connection, row_id, error)

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


def _mark_delivered(connection: Connection, ids: Sequence[int], now: datetime) -> None:
    if not ids:
        return
    if connection.dialect.name == "postgresql":
        # One array parameter: an IN list of a batch's 2,000 ids costs psycopg and SQLAlchemy
        # about 20 ms of CPU per batch to expand and bind (measured: 30 against 7-9 ms).
        chosen = outbox.c.id == any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger)))
    else:
        chosen = outbox.c.id.in_(list(ids))
    connection.execute(
        update(outbox)
        .where(chosen, outbox.c.state == "pending")
        .values(state="delivered", delivered_at=now, attempts=outbox.c.attempts + 1)
    )


def _mark_failed(connection: Connection, row_id: int, error: str) -> None:
    connection.execute(
        update(outbox)
        .where(outbox.c.id == row_id)
        .values(attempts=outbox.c.attempts + 1, last_error=error[:_ERROR_TEXT_LIMIT])
    )


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

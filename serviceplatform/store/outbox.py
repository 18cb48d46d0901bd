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

**Two tables.** An ``outbox`` row (the message and its 2.7 kB body) is written once and never
updated; its delivery state (``state``, ``attempts``, ``last_error``, ``delivered_at``) is a
narrow ``outbox_state`` row of the same id, written ``pending`` by a trigger with every
outbox row (migration 0012), whoever inserts it. Marking a row delivered updates only the
narrow row: updating the outbox row rewrote its body (SQLite the whole record, PostgreSQL a
new row version), about 8 kB written per message on SQLite. Pending rows are found through a
partial index that holds them alone, however many delivered rows earlier nights left; the
condition is written as a literal (:data:`PENDING`): a generic PostgreSQL plan (psycopg
prepares a statement run five times) cannot match the index's condition to a bound
parameter. A claim locks the state rows (PostgreSQL ``FOR UPDATE OF outbox_state``).

**Writing.** :func:`add_messages` writes an integration's messages in its own transaction,
skipping a message id the outbox already holds (ids are deterministic, so a repeated run
writes nothing twice). On PostgreSQL a batch with no known id is sent with ``COPY``: at
national scale (60,000 messages a night) the server's per-row work for ``INSERT ... ON
CONFLICT DO NOTHING`` (statement, heap and TOAST, four indexes, the state trigger) was the
larger part of the night's diff phase, and ``COPY`` took about a quarter less time and half
the client's CPU (docs/subscriptions.md). A batch with a known id takes the ``INSERT``.

**Purge.** Delivered rows are deleted, with their state rows, once ``[distributor]
delivered_retention_days`` have passed since their delivery (:meth:`Outbox.purge_delivered`,
run daily by ``serviceplatform.outbox_purge``): their bodies carry CPR numbers, and a national
night adds about 160 MB. Pending rows, failed ones included, stay whatever their age. The rows
are found by a partial index of the delivered state rows by ``delivered_at`` (migration 0014)
and deleted a batch per transaction. Counting (:meth:`Outbox.counts`) never reads a body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    and_,
    any_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError

from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox, outbox_state

#: The condition of the partial index ``ix_outbox_state_pending``, as a literal: with a bound
#: parameter instead, a prepared (generic) PostgreSQL plan cannot use that index.
PENDING: ColumnElement[bool] = outbox_state.c.state == literal_column("'pending'")
#: The condition of the partial index ``ix_outbox_state_delivered_at`` (the purge's), likewise.
DELIVERED: ColumnElement[bool] = outbox_state.c.state == literal_column("'delivered'")

#: Rows deleted per transaction by the purge: SQLite's writer lock is held for one batch.
#: 60,000 rows on SQLite: 2,000 a batch held the lock 47-60 ms a batch (1.45 s in all),
#: 5,000 110-180 ms (1.3-1.7 s), 1,000 29-43 ms (1.8 s).
PURGE_BATCH_SIZE: Final = 2000

#: An outbox row with its delivery state: what every reader of both selects from.
OUTBOX_WITH_STATE = outbox.join(outbox_state, outbox_state.c.id == outbox.c.id)

#: The columns of an outbox row with its state, by the names the outbox had in one table.
OUTBOX_COLUMNS = (
    *outbox.c,
    outbox_state.c.state,
    outbox_state.c.attempts,
    outbox_state.c.last_error,
    outbox_state.c.delivered_at,
)

_ERROR_TEXT_LIMIT = 1000

#: The outbox's columns in the order :func:`add_messages` sends them with ``COPY``.
_COPY_COLUMNS: Final = ("message_id", "body", "topic", "authority_cvr", "created_at")


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
            .select_from(OUTBOX_WITH_STATE)
            .where(PENDING, outbox_state.c.id > after)
            .order_by(outbox_state.c.id)
            .limit(limit)
        )
        if topic is not None:
            query = query.where(outbox.c.topic == topic)
        if self._db.dialect == "postgresql":
            # The state rows are what the claim updates; the outbox rows are never written.
            query = query.with_for_update(skip_locked=True, of=outbox_state)
        # write_first: on SQLite the claim holds the writer lock from BEGIN on.
        with self._db.transaction(write_first=True) as connection:
            if self._db.dialect == "postgresql":
                # The only good plan walks the pending index in id order and stops at the
                # limit. Right after a night's insert (or with statistics from when nearly
                # nothing was pending) PostgreSQL estimates a handful of pending rows and
                # sorts every pending row above ``after`` for each claim instead: measured
                # 35-55 ms a claim at 30,000 pending against 2.4 ms (the file drop's 120
                # claims of a 6 M night: 27.5 s against 10 s). No claim needs a sort.
                connection.exec_driver_sql("SET LOCAL enable_sort = off")
            rows = [ClaimedMessage(*row) for row in connection.execute(query)]
            yield Claim(connection, rows)

    def pending(self, *, limit: int, topic: str | None = None) -> list[OutboxMessage]:
        query = (
            select(*OUTBOX_COLUMNS)
            .select_from(OUTBOX_WITH_STATE)
            .where(PENDING)
            .order_by(outbox_state.c.id)
        )
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
        """Pending, delivered and failing messages; of one topic and one authority if given.

        Reads no body for the totals: without a filter they come from ``outbox_state``
        alone; with one, the join reads the outbox through the index that covers its id,
        topic and authority (migration 0014). The pending rows' authorities are joined through
        the pending index; SQLite looks those rows up by id (their pages, which are few but
        for the hour between a night's insert and its delivery).
        """
        state = outbox_state.c
        filters: list[ColumnElement[bool]] = []
        if topic is not None:
            filters.append(outbox.c.topic == topic)
        if authority_cvr is not None:
            filters.append(outbox.c.authority_cvr == authority_cvr)
        # Without a filter nothing of the outbox row is needed for the totals.
        counted = OUTBOX_WITH_STATE if filters else outbox_state
        totals_query = (
            select(state.state, func.count())
            .select_from(counted)
            .where(*filters)
            .group_by(state.state)
        )
        failing_query = (
            select(func.count()).select_from(counted).where(PENDING, state.attempts > 0, *filters)
        )
        by_authority_query = (
            select(outbox.c.authority_cvr, func.count())
            .select_from(OUTBOX_WITH_STATE)
            .where(PENDING, *filters)
            .group_by(outbox.c.authority_cvr)
        )
        with self._db.transaction() as connection:
            totals = {"pending": 0, "delivered": 0}
            totals.update({name: count for name, count in connection.execute(totals_query)})
            by_authority = {cvr: count for cvr, count in connection.execute(by_authority_query)}
            failing = connection.execute(failing_query).scalar_one()
        return OutboxCounts(totals["pending"], totals["delivered"], by_authority, failing)

    def purgeable(self, before: datetime) -> int:
        """How many rows :meth:`purge_delivered` would delete now (delivered before ``before``)."""
        query = select(func.count()).select_from(outbox_state).where(_purgeable(before))
        with self._db.transaction() as connection:
            return int(connection.execute(query).scalar_one())

    def purge_delivered(
        self,
        before: datetime,
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete the rows delivered before ``before``, a transaction per ``batch_size`` rows.

        Never a pending row (one that failed included), whatever its age. Each batch commits
        on its own, so SQLite's writer lock is held for one batch at a time and a relay
        claims between batches; an error leaves the earlier batches deleted and the current
        one whole. ``on_batch`` gets the running total after each batch. Returns the total.
        ``batch_size`` defaults to :data:`PURGE_BATCH_SIZE`.
        """
        limit = batch_size or PURGE_BATCH_SIZE
        deleted = 0
        while True:
            with self._db.transaction(write_first=True) as connection:
                ids = list(
                    connection.execute(
                        select(outbox_state.c.id)
                        .where(_purgeable(before))
                        # Oldest first along the purge's index: ordered by id, SQLite walks
                        # the table instead and reads every kept row after the last batch.
                        .order_by(outbox_state.c.delivered_at)
                        .limit(limit)
                    ).scalars()
                )
                if not ids:
                    return deleted
                # Checked again in the DELETE: only delivered state rows go, and only the
                # outbox rows of those. A delivered row never turns pending again, so every
                # selected row is gone after this batch (deleted here or by a purge beside
                # this one) and the loop ends.
                removed = list(
                    connection.execute(
                        delete(outbox_state)
                        .where(_ids(connection, outbox_state.c.id, ids), DELIVERED)
                        .returning(outbox_state.c.id)
                    ).scalars()
                )
                if removed:
                    connection.execute(delete(outbox).where(_ids(connection, outbox.c.id, removed)))
            deleted += len(removed)
            if on_batch is not None:
                on_batch(deleted)


def add_messages(
    connection: Connection,
    messages: Sequence[tuple[str, str]],
    *,
    topic: str,
    authority_cvr: str,
    created_at: datetime,
) -> int:
    """Write ``(message id, body)`` pairs the outbox does not hold yet; returns how many.

    In the caller's transaction, so the messages commit with the decision that made them.
    Every row shares ``topic``, ``authority_cvr`` and ``created_at`` (tz-aware). Two
    transactions writing the same new ids at once (a job's lease prevents it) do not both
    succeed: on PostgreSQL the second's ``COPY`` meets the first's rows and is refused
    (unique violation, a StorageError for the caller), and its transaction writes nothing.
    """
    if not messages:
        return 0
    if created_at.tzinfo is None:
        raise ValueError("naive datetime given for the outbox's created_at")
    ids = [message_id for message_id, _ in messages]
    known: int = connection.execute(
        select(func.count()).where(outbox.c.message_id.in_(ids))
    ).scalar_one()
    postgres = connection.dialect.name == "postgresql"
    if postgres and known == 0:
        _copy_messages(connection, messages, (topic, authority_cvr, created_at.astimezone(UTC)))
        return len(messages)
    # Counted before: SQLAlchemy batches the rows into multi-row INSERTs on psycopg, whose
    # rowcount is then unknown (-1). The shared columns are bound once, in the statement:
    # bound per row, SQLAlchemy converted the same time for each of tens of thousands.
    statement = (
        (postgresql.insert if postgres else sqlite.insert)(outbox)
        .values(topic=topic, authority_cvr=authority_cvr, created_at=created_at)
        .on_conflict_do_nothing(index_elements=[outbox.c.message_id])
    )
    connection.execute(statement, [{"message_id": m, "body": b} for m, b in messages])
    return len(messages) - known


def _copy_messages(
    connection: Connection, messages: Sequence[tuple[str, str]], shared: tuple[str, str, datetime]
) -> None:
    """``COPY`` the rows into the outbox (PostgreSQL; none of their ids may be known).

    The statement-level trigger writes their state rows, as for an ``INSERT``. A driver error
    is raised as SQLAlchemy's, which the transaction translates like any other.
    """
    copy = f"COPY {outbox.name} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    driver_connection: Any = connection.connection.driver_connection
    driver_error: type[Exception] = connection.dialect.loaded_dbapi.Error
    try:
        with driver_connection.cursor() as cursor, cursor.copy(copy) as rows:
            for message_id, body in messages:
                rows.write_row((message_id, body, *shared))
    except driver_error as exc:
        raise DBAPIError.instance(copy, None, exc, driver_error) from exc


def _purgeable(before: datetime) -> ColumnElement[bool]:
    return and_(DELIVERED, outbox_state.c.delivered_at < before)


def _ids(connection: Connection, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """``column`` is one of ``ids``: one array parameter on PostgreSQL, an IN list elsewhere."""
    if connection.dialect.name == "postgresql":
        # An IN list of a batch's 2,000 ids costs psycopg and SQLAlchemy about 20 ms of CPU
        # per batch to expand and bind (measured: 30 against 7-9 ms with the array).
        return column == any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger)))  # type: ignore[no-any-return]
    return column.in_(list(ids))  # type: ignore[no-any-return]


def _mark_delivered(connection: Connection, ids: Sequence[int], now: datetime) -> None:
    if not ids:
        return
    connection.execute(
        update(outbox_state)
        .where(_ids(connection, outbox_state.c.id, ids), PENDING)
        .values(state="delivered", delivered_at=now, attempts=outbox_state.c.attempts + 1)
    )


def _mark_failed(connection: Connection, row_id: int, error: str) -> None:
    connection.execute(
        update(outbox_state)
        .where(outbox_state.c.id == row_id)
        .values(attempts=outbox_state.c.attempts + 1, last_error=error[:_ERROR_TEXT_LIMIT])
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

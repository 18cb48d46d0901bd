"""Per-authority list snapshots and their diff, computed in the database.

A list (an authority's NemSMS subscribers on one date) is stored in three steps:

1. :meth:`SnapshotStore.begin` creates the snapshot in state ``fetching`` (replacing a
   ``fetching`` leftover of a crashed run for the same authority and date);
2. :meth:`SnapshotStore.add` stores the entries in chunks of ``_ADD_CHUNK``, each its own
   short transaction, so a long list never holds the database's write lock for long; given
   in key order (the nightly sorts a fetched list first) every index page is written about
   once, where random order rewrites pages all over the index with every chunk. Rows go
   through the driver directly (``executemany`` on SQLite, ``COPY`` on PostgreSQL): national
   lists have millions of them;
3. :meth:`SnapshotStore.complete` compares the snapshot with the latest *complete* snapshot
   of an earlier date and writes one outbox row per change, and marks the snapshot
   ``complete``, all in one transaction: the new list and its messages commit together.

The comparison is two ``NOT EXISTS`` queries over the primary key, read as a stream in
batches; neither list is ever held in Python (Copenhagen alone has 600,000 citizens). On
PostgreSQL the entries are analysed first: planned with the statistics of before the load,
the diff of a million new rows sorts on disk. A
failed fetch is :meth:`SnapshotStore.discard`-ed: no snapshot, no message.

The first snapshot of an authority has nothing to compare with; it is stored as the baseline
and produces no messages (rather than announcing every subscriber as new).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from typing import Any, Literal

from sqlalchemy import (
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from integrations.sf2250.tables import subscription_entries, subscription_snapshots
from serviceplatform.errors import StorageError
from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox

Change = Literal["tilmeldt", "afmeldt"]
#: (kind, number, change) -> (message id, message body) for the outbox.
MessageFactory = Callable[[str, str, Change], tuple[str, str]]

_BATCH = 1000
#: Entries per transaction of :meth:`SnapshotStore.add`.
_ADD_CHUNK = 100_000


@dataclass(frozen=True)
class Snapshot:
    id: int
    authority_cvr: str
    list_date: date
    state: str
    fetched_at: datetime
    completed_at: datetime | None
    entry_count: int
    subscribed_count: int
    unsubscribed_count: int
    previous_id: int | None


@dataclass(frozen=True)
class DiffResult:
    snapshot: Snapshot
    #: Outbox rows written now (fewer than the changes only if they existed already).
    messages: int
    first: bool


class SnapshotStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    def get(self, authority_cvr: str, list_date: date) -> Snapshot | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                select(subscription_snapshots).where(
                    subscription_snapshots.c.authority_cvr == authority_cvr,
                    subscription_snapshots.c.list_date == list_date,
                )
            ).first()
        return _snapshot(row) if row is not None else None

    def begin(self, authority_cvr: str, list_date: date, fetched_at: datetime) -> int:
        """A new ``fetching`` snapshot; a ``complete`` one for the key is a StorageError."""
        key = (
            subscription_snapshots.c.authority_cvr == authority_cvr,
            subscription_snapshots.c.list_date == list_date,
        )
        with self._db.transaction(write_first=True) as connection:
            existing = connection.execute(
                select(subscription_snapshots.c.id, subscription_snapshots.c.state).where(*key)
            ).first()
            if existing is not None:
                if existing.state == "complete":
                    raise StorageError(f"the list of {authority_cvr} for {list_date} is complete")
                _delete_snapshot(connection, existing.id)
            return int(
                connection.execute(
                    insert(subscription_snapshots)
                    .values(
                        authority_cvr=authority_cvr,
                        list_date=list_date,
                        state="fetching",
                        fetched_at=fetched_at,
                        entry_count=0,
                        subscribed_count=0,
                        unsubscribed_count=0,
                    )
                    .returning(subscription_snapshots.c.id)
                ).scalar_one()
            )

    def add(self, snapshot_id: int, entries: Iterable[tuple[str, str]]) -> None:
        """Store ``(kind, number)`` entries; a number listed twice is stored once.

        ``entries`` is read as a stream, one chunk per transaction.
        """
        rows = ((snapshot_id, kind, number) for kind, number in entries)
        while chunk := list(islice(rows, _ADD_CHUNK)):
            with self._db.transaction(write_first=True) as connection:
                cursor = connection.connection.cursor()
                try:
                    if self._db.dialect == "postgresql":
                        _copy_entries(cursor, chunk)
                    else:
                        cursor.executemany(
                            f"INSERT OR IGNORE INTO {subscription_entries.name} "
                            "(snapshot_id, kind, number) VALUES (?, ?, ?)",
                            chunk,
                        )
                finally:
                    cursor.close()

    def discard(self, snapshot_id: int) -> None:
        with self._db.transaction(write_first=True) as connection:
            _delete_snapshot(connection, snapshot_id)

    def complete(
        self,
        snapshot_id: int,
        *,
        topic: str,
        message_for: MessageFactory,
        completed_at: datetime,
    ) -> DiffResult:
        """Diff against the previous complete snapshot, write the outbox rows, mark complete."""
        with self._db.transaction(write_first=True) as connection:
            if self._db.dialect == "postgresql":
                # Without fresh statistics the diff is planned for a few thousand rows.
                connection.execute(text(f"ANALYZE {subscription_entries.name}"))
            current = connection.execute(
                select(subscription_snapshots).where(subscription_snapshots.c.id == snapshot_id)
            ).one()
            previous_id = connection.execute(
                select(subscription_snapshots.c.id)
                .where(
                    subscription_snapshots.c.authority_cvr == current.authority_cvr,
                    subscription_snapshots.c.list_date < current.list_date,
                    subscription_snapshots.c.state == "complete",
                )
                .order_by(subscription_snapshots.c.list_date.desc())
                .limit(1)
            ).scalar()
            entry_count = connection.execute(
                select(func.count()).where(subscription_entries.c.snapshot_id == snapshot_id)
            ).scalar_one()
            counts = {"tilmeldt": 0, "afmeldt": 0}
            written = 0
            if previous_id is not None:
                insert_outbox = self._insert(outbox).on_conflict_do_nothing(
                    index_elements=[outbox.c.message_id]
                )
                for batch in _changes(connection, snapshot_id, previous_id):
                    rows = []
                    for kind, number, change in batch:
                        counts[change] += 1
                        message_id, body = message_for(kind, number, change)
                        rows.append(
                            {
                                "message_id": message_id,
                                "topic": topic,
                                "authority_cvr": current.authority_cvr,
                                "body": body,
                                "state": "pending",
                                "attempts": 0,
                                "created_at": completed_at,
                            }
                        )
                    # Counted before: SQLAlchemy batches the rows into multi-row INSERTs on
                    # psycopg, whose rowcount is then unknown (-1).
                    ids = [row["message_id"] for row in rows]
                    known = connection.execute(
                        select(func.count()).where(outbox.c.message_id.in_(ids))
                    ).scalar_one()
                    connection.execute(insert_outbox, rows)
                    written += len(ids) - known
            connection.execute(
                update(subscription_snapshots)
                .where(subscription_snapshots.c.id == snapshot_id)
                .values(
                    state="complete",
                    completed_at=completed_at,
                    entry_count=entry_count,
                    subscribed_count=counts["tilmeldt"],
                    unsubscribed_count=counts["afmeldt"],
                    previous_id=previous_id,
                )
            )
            final = connection.execute(
                select(subscription_snapshots).where(subscription_snapshots.c.id == snapshot_id)
            ).one()
        return DiffResult(_snapshot(final), written, previous_id is None)

    def latest(self, limit_per_authority: int = 1) -> list[Snapshot]:
        """The newest snapshots of every authority, newest first per authority."""
        with self._db.transaction() as connection:
            rows = connection.execute(
                select(subscription_snapshots).order_by(
                    subscription_snapshots.c.authority_cvr,
                    subscription_snapshots.c.list_date.desc(),
                )
            ).all()
        kept: dict[str, int] = {}
        found: list[Snapshot] = []
        for row in rows:
            if kept.get(row.authority_cvr, 0) < limit_per_authority:
                kept[row.authority_cvr] = kept.get(row.authority_cvr, 0) + 1
                found.append(_snapshot(row))
        return found

    def purge(self, before: date) -> int:
        """Delete snapshots listed before ``before``, keeping each authority's newest complete."""
        with self._db.transaction(write_first=True) as connection:
            newest = (
                select(
                    subscription_snapshots.c.authority_cvr,
                    func.max(subscription_snapshots.c.list_date).label("list_date"),
                )
                .where(subscription_snapshots.c.state == "complete")
                .group_by(subscription_snapshots.c.authority_cvr)
                .subquery()
            )
            doomed = [
                row.id
                for row in connection.execute(
                    select(subscription_snapshots.c.id).where(
                        subscription_snapshots.c.list_date < before,
                        ~exists().where(
                            newest.c.authority_cvr == subscription_snapshots.c.authority_cvr,
                            newest.c.list_date == subscription_snapshots.c.list_date,
                        ),
                    )
                )
            ]
            for snapshot_id in doomed:
                _delete_snapshot(connection, snapshot_id)
        return len(doomed)


def _changes(connection: Any, new_id: int, old_id: int) -> Iterator[list[tuple[str, str, Change]]]:
    """The changes from ``old_id`` to ``new_id`` in batches, streamed from the database."""
    # Anonymous aliases and an unlabelled change column: the rows are read by position.
    new = subscription_entries.alias()
    old = subscription_entries.alias()
    subscribed = select(new.c.kind, new.c.number, literal("tilmeldt")).where(
        new.c.snapshot_id == new_id,
        ~exists().where(
            and_(
                old.c.snapshot_id == old_id, old.c.kind == new.c.kind, old.c.number == new.c.number
            )
        ),
    )
    unsubscribed = select(old.c.kind, old.c.number, literal("afmeldt")).where(
        old.c.snapshot_id == old_id,
        ~exists().where(
            and_(
                new.c.snapshot_id == new_id, new.c.kind == old.c.kind, new.c.number == old.c.number
            )
        ),
    )
    # Options on the statement, not the connection: they would stay on the connection and
    # turn the outbox inserts into server-side-cursor statements too.
    result = connection.execute(
        union_all(subscribed, unsubscribed).execution_options(stream_results=True, yield_per=_BATCH)
    )
    for partition in result.partitions(_BATCH):
        yield [(row[0], row[1], row[2]) for row in partition]


def _copy_entries(cursor: Any, chunk: list[tuple[int, str, str]]) -> None:
    """``COPY`` a chunk into a session's temporary table, then keep the rows not stored yet."""
    cursor.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS sp_entries_in "
        "(snapshot_id integer, kind text, number text) ON COMMIT DELETE ROWS"
    )
    with cursor.copy("COPY sp_entries_in (snapshot_id, kind, number) FROM STDIN") as copy:
        for row in chunk:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO {subscription_entries.name} (snapshot_id, kind, number) "
        "SELECT snapshot_id, kind, number FROM sp_entries_in ON CONFLICT DO NOTHING"
    )


def _delete_snapshot(connection: Any, snapshot_id: int) -> None:
    # The entries go by their foreign key's ON DELETE CASCADE (Database turns SQLite's
    # foreign_keys pragma on for every connection).
    connection.execute(
        delete(subscription_snapshots).where(subscription_snapshots.c.id == snapshot_id)
    )


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        id=row.id,
        authority_cvr=row.authority_cvr,
        list_date=row.list_date,
        state=row.state,
        fetched_at=row.fetched_at,
        completed_at=row.completed_at,
        entry_count=row.entry_count,
        subscribed_count=row.subscribed_count,
        unsubscribed_count=row.unsubscribed_count,
        previous_id=row.previous_id,
    )

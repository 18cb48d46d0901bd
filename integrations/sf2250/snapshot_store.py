"""Per-authority list snapshots and their diff.

A list (an authority's NemSMS subscribers on one date) is stored in three steps:

1. :meth:`SnapshotStore.begin` creates the snapshot in state ``fetching`` (replacing a
   ``fetching`` leftover of a crashed run for the same authority and date);
2. :meth:`SnapshotStore.add_codes` (or :meth:`SnapshotStore.add`) stores the entries as
   compressed blocks of up to ``_ADD_CHUNK`` codes (``integrations.sf2250.entry_codes``), each
   block its own short transaction, so a long list never holds the database's write lock for
   long. A national list of 6 million entries is about 90 blocks and 15 MB; as a row per entry
   with its index it was 430 MB and gigabytes written a night;
3. :meth:`SnapshotStore.complete` compares the snapshot with the latest *complete* snapshot
   of an earlier date and writes one outbox row per change, and marks the snapshot
   ``complete``, all in one transaction: the new list and its messages commit together.

The comparison walks both lists in key order, a block at a time, in windows of ``_STEP``
codes covering the same range on both sides; a window that is equal on both sides (most are:
a night changes about 1% of a list) is passed over with one comparison of two arrays. So
neither list is held whole (Copenhagen alone has 600,000 citizens) when its blocks ascend,
which they do when the entries come in key order, as the nightly gives them (it sorts a
fetched list first: ``integrations.sf2250.entry_buffer``). Entries added in any other order
are correct too, but that list is sorted in memory when read (8 bytes an entry). A failed
fetch is :meth:`SnapshotStore.discard`-ed: no snapshot, no message.

The first snapshot of an authority has nothing to compare with; it is stored as the baseline
and produces no messages (rather than announcing every subscriber as new).
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain, islice, pairwise
from typing import Any, Literal

from sqlalchemy import delete, exists, func, insert, select, update

from integrations.sf2250.entry_codes import (
    BLOCK_CODES,
    block_columns,
    code_of,
    decode_block,
    entry_of,
)
from integrations.sf2250.tables import subscription_blocks, subscription_snapshots
from serviceplatform.errors import StorageError
from serviceplatform.store.db import Database
from serviceplatform.store.outbox import add_messages

Change = Literal["tilmeldt", "afmeldt"]
#: (kind, number, change) -> (message id, message body) for the outbox.
MessageFactory = Callable[[str, str, Change], tuple[str, str]]

#: Outbox rows per insert.
_BATCH = 1000
#: Codes per block, and so per transaction, of :meth:`SnapshotStore.add_codes`.
_ADD_CHUNK = BLOCK_CODES
#: Codes of the new list per comparison window of the diff.
_STEP = 64


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
            # The new row never gets the deleted one's id (on SQLite, AUTOINCREMENT: migration
            # 0013), so a straggler still holding that id cannot write into this fetch.
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
        """Store ``(kind, number)`` entries; a number listed twice is stored once."""
        self.add_codes(snapshot_id, (code_of(kind, number) for kind, number in entries))

    def add_codes(self, snapshot_id: int, codes: Iterable[int]) -> None:
        """Store entry codes (``entry_codes.code_of``); a code given twice is stored once.

        ``codes`` is read as a stream, one block per transaction. Given in ascending order,
        the list is compared block by block; in any other order it is sorted when read.
        """
        stream = iter(codes)
        self.add_runs(snapshot_id, iter(lambda: array("q", islice(stream, _ADD_CHUNK)), array("q")))

    def add_runs(
        self,
        snapshot_id: int,
        runs: Iterable[array[int]],
        *,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        """Store runs of entry codes, each in any order, in blocks of up to ``_ADD_CHUNK``
        codes, one block per transaction; ``on_stored`` hears each block's count.

        The nightly hands over its list as runs that are ascending already, each after the
        other (the buckets of ``entry_buffer``): that is checked, and they are stored as they
        are, without sorting them again, joined into full blocks.
        """
        pending: array[int] = array("q")
        for given in runs:
            run = given
            if not all(map(operator.lt, run, islice(run, 1, None))):
                run = array("q", sorted(set(run)))
            if pending and run and pending[-1] >= run[0]:
                # Joined, the block would not ascend: the part so far goes as a block.
                self._store_block(snapshot_id, pending, on_stored)
                pending = array("q")
            pending.extend(run)
            while len(pending) >= _ADD_CHUNK:
                self._store_block(snapshot_id, pending[:_ADD_CHUNK], on_stored)
                del pending[:_ADD_CHUNK]
        if pending:
            self._store_block(snapshot_id, pending, on_stored)

    def _store_block(
        self,
        snapshot_id: int,
        block: array[int],
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self._insert_block(snapshot_id, block)
        if on_stored is not None:
            on_stored(len(block))

    def _insert_block(self, snapshot_id: int, block: array[int]) -> None:
        with self._db.transaction(write_first=True) as connection:
            state = connection.execute(
                select(subscription_snapshots.c.state).where(
                    subscription_snapshots.c.id == snapshot_id
                )
            ).scalar_one_or_none()
            # The foreign key would refuse a gone snapshot too, but in the database's words;
            # a complete list is the next night's base and takes no more entries.
            if state != "fetching":
                raise StorageError(
                    f"snapshot {snapshot_id} is gone: discarded, or replaced by another run"
                    if state is None
                    else f"snapshot {snapshot_id} is complete and takes no more entries"
                )
            seq = connection.execute(
                select(func.coalesce(func.max(subscription_blocks.c.seq) + 1, 0)).where(
                    subscription_blocks.c.snapshot_id == snapshot_id
                )
            ).scalar_one()
            connection.execute(
                insert(subscription_blocks).values(
                    snapshot_id=snapshot_id, seq=seq, **block_columns(block)
                )
            )

    def entries(self, snapshot_id: int) -> Iterator[tuple[str, str]]:
        """The snapshot's ``(kind, number)`` entries in key order, each once."""
        with self._db.transaction() as connection:
            for block in _codes(connection, snapshot_id):
                yield from map(entry_of, block)

    def discard(self, snapshot_id: int) -> None:
        """Drop a snapshot still being fetched; a complete one is never dropped here (it is
        the base of the next night's diff)."""
        with self._db.transaction(write_first=True) as connection:
            connection.execute(
                delete(subscription_snapshots).where(
                    subscription_snapshots.c.id == snapshot_id,
                    subscription_snapshots.c.state == "fetching",
                )
            )

    def complete(
        self,
        snapshot_id: int,
        *,
        topic: str,
        message_for: MessageFactory,
        completed_at: datetime,
        on_compared: Callable[[int], None] | None = None,
    ) -> DiffResult:
        """Diff against the previous complete snapshot, write the outbox rows, mark complete.

        ``on_compared`` hears the count of the new list's entries compared (or, for a
        baseline, counted) as the work goes on, a window at a time.

        A snapshot that is gone (discarded, or replaced by another run's ``begin``) is a
        StorageError and nothing is written. Completing a complete one again is harmless: the
        same base and counts, and no second message.
        """
        with self._db.transaction(write_first=True) as connection:
            current = connection.execute(
                select(subscription_snapshots).where(subscription_snapshots.c.id == snapshot_id)
            ).first()
            if current is None:
                raise StorageError(
                    f"snapshot {snapshot_id} is gone: discarded, or replaced by another run"
                )
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
            counts = {"tilmeldt": 0, "afmeldt": 0}
            written = 0
            entry_count = 0

            def write(changes: list[tuple[int, Change]]) -> int:
                messages = []
                for code, change in changes:
                    counts[change] += 1
                    kind, number = entry_of(code)
                    messages.append(message_for(kind, number, change))
                return add_messages(
                    connection,
                    messages,
                    topic=topic,
                    authority_cvr=current.authority_cvr,
                    created_at=completed_at,
                )

            new_codes = _codes(connection, snapshot_id)
            if previous_id is None:
                for block in new_codes:
                    entry_count += len(block)
                    if on_compared is not None:
                        on_compared(len(block))
            else:
                changes: list[tuple[int, Change]] = []
                for new, old in _windows(new_codes, _codes(connection, previous_id)):
                    entry_count += len(new)
                    _diff_window(new, old, changes)
                    if on_compared is not None and new:
                        on_compared(len(new))
                    while len(changes) >= _BATCH:
                        written += write(changes[:_BATCH])
                        del changes[:_BATCH]
                if changes:
                    written += write(changes)
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


def _codes(connection: Any, snapshot_id: int) -> Iterator[array[int]]:
    """A snapshot's codes in ascending arrays, each code once, read a block at a time."""
    blocks = subscription_blocks.c
    stored = connection.execute(
        select(blocks.seq, blocks.first_code, blocks.last_code, blocks.entries)
        .where(blocks.snapshot_id == snapshot_id)
        .order_by(blocks.seq)
    ).all()

    def read(seq: int, count: int) -> array[int]:
        data = connection.execute(
            select(blocks.data).where(blocks.snapshot_id == snapshot_id, blocks.seq == seq)
        ).scalar_one()
        return decode_block(data, count)

    if all(a.last_code < b.first_code for a, b in pairwise(stored)):
        for row in stored:
            yield read(row.seq, row.entries)
        return
    # Added out of order: the whole list, sorted here.
    codes = sorted(set(chain.from_iterable(read(row.seq, row.entries) for row in stored)))
    for start in range(0, len(codes), BLOCK_CODES):
        yield array("q", codes[start : start + BLOCK_CODES])


def _windows(
    new: Iterator[array[int]], old: Iterator[array[int]]
) -> Iterator[tuple[array[int], array[int]]]:
    """Slices of two ascending streams of codes, pair by pair covering the same range."""
    empty: array[int] = array("q")
    a, b = next(new, None), next(old, None)
    i = j = 0
    while a is not None or b is not None:
        if a is None:
            assert b is not None
            yield empty, b[j:]
            b, j = next(old, None), 0
        elif b is None:
            yield a[i:], empty
            a, i = next(new, None), 0
        else:
            # Up to the smaller of the two blocks' last codes: one block (or both) ends here.
            bound = min(a[-1], b[-1])
            end_a, end_b = bisect_right(a, bound, i), bisect_right(b, bound, j)
            yield a[i:end_a], b[j:end_b]
            i, j = end_a, end_b
            if i == len(a):
                a, i = next(new, None), 0
            if j == len(b):
                b, j = next(old, None), 0


def _diff_window(new: array[int], old: array[int], changes: list[tuple[int, Change]]) -> None:
    """Append to ``changes`` the codes only in ``new`` (subscribed) and only in ``old``."""
    j = 0
    for i in range(0, len(new), _STEP):
        part = new[i : i + _STEP]
        end = bisect_right(old, part[-1], j)
        if part != old[j:end]:
            before = set(old[j:end])
            now = set(part)
            changes.extend((code, "tilmeldt") for code in part if code not in before)
            changes.extend((code, "afmeldt") for code in old[j:end] if code not in now)
        j = end
    changes.extend((code, "afmeldt") for code in old[j:])


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

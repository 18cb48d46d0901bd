"""The snapshot store's edges: stored fields, which earlier list a diff is against, the count of
messages written, batch and chunk boundaries, purge and ``latest``, and the writer gate.

Written for issue 16's mutation run (``docs/mutation.md``): each test pins a rule of
``integrations/sf2250/snapshot_store.py`` that the broader tests in ``test_store_snapshots.py``
pass through without checking.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from integrations.sf2250 import snapshot_store
from integrations.sf2250.snapshot_store import SnapshotStore
from integrations.sf2250.tables import subscription_blocks
from serviceplatform.store.db import Database
from serviceplatform.store.outbox import Outbox
from tests.unit.test_store_snapshots import NOW, A, message_for, people, store_list
from tests.unit.writer_gate_probe import gated_database

B = "29189854"
LATER = NOW + timedelta(hours=2)


def day(n: int) -> date:
    return date(2026, 11, n)


def complete(store: SnapshotStore, snapshot_id: int) -> snapshot_store.DiffResult:
    return store.complete(snapshot_id, topic="t", message_for=message_for, completed_at=LATER)


def entry_count(database: Database, snapshot_id: int) -> int:
    """The distinct entries stored for ``snapshot_id``, read back from its blocks."""
    return len(list(SnapshotStore(database).entries(snapshot_id)))


def block_count(database: Database, snapshot_id: int) -> int:
    """The block rows stored for ``snapshot_id``, read from the table itself."""
    with database.transaction() as connection:
        return int(
            connection.execute(
                select(func.count()).where(subscription_blocks.c.snapshot_id == snapshot_id)
            ).scalar_one()
        )


def pending_ids(database: Database) -> list[str]:
    return sorted(m.message_id for m in Outbox(database).pending(limit=100))


def test_begin_stores_an_empty_fetching_snapshot(database: Database) -> None:
    store = SnapshotStore(database)
    snapshot_id = store.begin(A, day(1), NOW)
    got = store.get(A, day(1))
    assert got is not None
    assert (got.id, got.authority_cvr, got.list_date, got.state) == (
        snapshot_id,
        A,
        day(1),
        "fetching",
    )
    assert (got.fetched_at, got.completed_at) == (NOW, None)
    assert (got.entry_count, got.subscribed_count, got.unsubscribed_count) == (0, 0, 0)
    assert got.previous_id is None


def test_get_answers_the_named_authoritys_list_only(database: Database) -> None:
    store = SnapshotStore(database)
    first = store.begin(A, day(1), NOW)
    second = store.begin(B, day(1), NOW)
    found_a, found_b = store.get(A, day(1)), store.get(B, day(1))
    assert found_a is not None and (found_a.id, found_a.authority_cvr) == (first, A)
    assert found_b is not None and (found_b.id, found_b.authority_cvr) == (second, B)
    assert store.get(A, day(2)) is None


def test_complete_records_its_time_counts_and_base(database: Database) -> None:
    store = SnapshotStore(database)
    base = store_list(store, day(1), people(1, 2))
    assert complete(store, base).first
    night = store_list(store, day(2), people(2, 3, 4))
    result = complete(store, night)
    assert not result.first
    s = result.snapshot
    assert (s.id, s.authority_cvr, s.list_date, s.state) == (night, A, day(2), "complete")
    assert (s.fetched_at, s.completed_at) == (NOW, LATER)
    assert (s.entry_count, s.subscribed_count, s.unsubscribed_count) == (3, 2, 1)
    assert s.previous_id == base
    assert store.get(A, day(2)) == s


def test_messages_counts_the_outbox_rows_written_by_this_diff(database: Database) -> None:
    """``messages`` is this night's rows, not the outbox's size (earlier nights' rows stay)."""
    store = SnapshotStore(database)
    assert complete(store, store_list(store, day(1), people(1))).messages == 0
    assert complete(store, store_list(store, day(2), people(1, 2, 3))).messages == 2
    assert complete(store, store_list(store, day(3), people(2, 3, 4))).messages == 2
    assert len(pending_ids(database)) == 4


def test_completing_again_writes_nothing_new_and_keeps_the_diff(database: Database) -> None:
    """Nothing stops a caller from completing a complete list again: it gets the same base and
    counts, and no second message (its outbox rows exist already: ``DiffResult.messages``)."""
    store = SnapshotStore(database)
    base = store_list(store, day(1), people(1, 2))
    complete(store, base)
    night = store_list(store, day(2), people(2, 3, 4))
    assert complete(store, night).messages == 3
    again = complete(store, night)
    assert again.messages == 0
    assert again.snapshot.previous_id == base
    assert (again.snapshot.subscribed_count, again.snapshot.unsubscribed_count) == (2, 1)
    assert len(pending_ids(database)) == 3


def test_the_diff_is_against_the_same_authoritys_earlier_list(database: Database) -> None:
    store = SnapshotStore(database)
    base = store_list(store, day(1), people(1))
    complete(store, base)
    # Another authority's list, newer than A's base: never A's base.
    complete(store, store_list(store, day(1), people(7), authority=B))
    complete(store, store_list(store, day(2), people(7, 8), authority=B))
    result = complete(store, store_list(store, day(3), people(1, 2)))
    assert result.snapshot.previous_id == base
    assert (result.snapshot.subscribed_count, result.snapshot.unsubscribed_count) == (1, 0)
    assert f"{A}-cpr-0101900002-tilmeldt" in pending_ids(database)


def test_a_list_completed_late_is_diffed_against_the_list_before_its_date(
    database: Database,
) -> None:
    """2 November completes after 3 November did (a re-run of a failed night): its base is
    1 November, never the newer 3 November."""
    store = SnapshotStore(database)
    base = store_list(store, day(1), people(1))
    complete(store, base)
    complete(store, store_list(store, day(3), people(1, 3)))
    late = complete(store, store_list(store, day(2), people(1, 2)))
    assert late.snapshot.previous_id == base
    assert (late.snapshot.subscribed_count, late.snapshot.unsubscribed_count) == (1, 0)


def test_every_batch_of_changes_is_written_and_counted(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes are read and written in batches of ``_BATCH`` (2 here): 5 subscribed and
    3 unsubscribed cross several batch boundaries, and none is lost or counted twice."""
    monkeypatch.setattr(snapshot_store, "_BATCH", 2)
    store = SnapshotStore(database)
    complete(store, store_list(store, day(1), people(1, 2, 3, 4)))
    result = complete(store, store_list(store, day(2), people(4, 5, 6, 7, 8, 9)))
    s = result.snapshot
    assert (s.entry_count, s.subscribed_count, s.unsubscribed_count) == (6, 5, 3)
    assert result.messages == 8
    assert pending_ids(database) == sorted(
        [f"{A}-cpr-01019{n:05d}-tilmeldt" for n in (5, 6, 7, 8, 9)]
        + [f"{A}-cpr-01019{n:05d}-afmeldt" for n in (1, 2, 3)]
    )


def test_add_commits_each_chunk_before_reading_the_next(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long list is stored in chunks of ``_ADD_CHUNK`` (2 here), each its own transaction:
    when the third entry is read from the stream, the first two are committed already."""
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 2)
    store = SnapshotStore(database)
    snapshot_id = store.begin(A, day(1), NOW)
    seen_before_third: list[int] = []

    def entries() -> Iterator[tuple[str, str]]:
        yield from people(1, 2)
        seen_before_third.append(entry_count(database, snapshot_id))
        # The second entry again, in the next chunk: stored once.
        yield from people(2, 3, 4)

    store.add(snapshot_id, entries())
    assert seen_before_third == [2]
    assert entry_count(database, snapshot_id) == 4


def test_purge_keeps_each_authoritys_newest_complete_list_and_all_from_the_cutoff(
    database: Database,
) -> None:
    store = SnapshotStore(database)
    ids: dict[tuple[str, int], int] = {}
    for authority, n in ((A, 1), (A, 3), (B, 3), (B, 5), (B, 10), (B, 11)):
        ids[authority, n] = store_list(store, day(n), people(n, 20 + n), authority=authority)
        complete(store, ids[authority, n])
    ids[A, 4] = store_list(store, day(4), people(4))  # a fetch that never completed
    # Cutoff 10 November: A keeps 3 November (its newest complete list, though B's 3
    # November goes), B keeps 10 and 11 November (not before the cutoff).
    assert store.purge(day(10)) == 4
    kept = {(s.authority_cvr, s.list_date.day) for s in store.latest(10)}
    assert kept == {(A, 3), (B, 10), (B, 11)}
    for key, snapshot_id in ids.items():
        # The entries go with their snapshot, and only with it.
        assert entry_count(database, snapshot_id) == (2 if key in kept else 0), key
        assert block_count(database, snapshot_id) == (2 if key in kept else 0), key


def test_latest_lists_the_newest_per_authority_newest_first(database: Database) -> None:
    store = SnapshotStore(database)
    for authority, n in ((A, 1), (A, 2), (A, 3), (B, 4), (B, 5)):
        complete(store, store_list(store, day(n), people(n), authority=authority))

    def listed(*limit: int) -> list[tuple[str, int]]:
        return [(s.authority_cvr, s.list_date.day) for s in store.latest(*limit)]

    assert listed() == [(A, 3), (B, 5)]
    assert listed(2) == [(A, 3), (A, 2), (B, 5), (B, 4)]
    assert listed(3) == [(A, 3), (A, 2), (A, 1), (B, 5), (B, 4)]


def test_every_snapshot_write_queues_at_the_sqlite_writer_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 2)
    with gated_database(tmp_path, monkeypatch) as (db, gate):
        store = SnapshotStore(db)
        snapshot_id = store.begin(A, day(1), NOW)
        assert gate.holds == 1
        store.add(snapshot_id, people(1, 2, 3))  # two chunks, two transactions
        assert gate.holds == 3
        complete(store, snapshot_id)
        assert gate.holds == 4
        doomed = store.begin(A, day(2), NOW)
        store.discard(doomed)
        assert gate.holds == 6
        assert store.purge(day(1)) == 0
        assert gate.holds == 7
        store.get(A, day(1))  # reads do not queue
        store.latest()
        assert gate.holds == 7

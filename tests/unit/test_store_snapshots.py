"""Snapshots, the database diff, the outbox and job leases, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import tracemalloc
from datetime import UTC, date, datetime, timedelta

import pytest

from integrations.sf2250.snapshot_store import Change, SnapshotStore
from serviceplatform.errors import StorageError
from serviceplatform.store.db import Database
from serviceplatform.store.leases import LeaseStore
from serviceplatform.store.outbox import Outbox

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
A = "29189846"


def message_for(kind: str, number: str, change: Change) -> tuple[str, str]:
    return f"{A}-{kind}-{number}-{change}", f"<m kind='{kind}' number='{number}' c='{change}'/>"


def store_list(
    store: SnapshotStore, day: date, entries: list[tuple[str, str]], authority: str = A
) -> int:
    snapshot_id = store.begin(authority, day, NOW)
    # Parts, and an entry repeated across parts (stored once).
    store.add(snapshot_id, entries[: len(entries) // 2])
    store.add(snapshot_id, entries[len(entries) // 2 :] + entries[:1])
    return snapshot_id


def diff(store: SnapshotStore, snapshot_id: int) -> tuple[int, int, int, bool]:
    result = store.complete(snapshot_id, topic="t", message_for=message_for, completed_at=NOW)
    s = result.snapshot
    return s.entry_count, s.subscribed_count, s.unsubscribed_count, result.first


def people(*numbers: int) -> list[tuple[str, str]]:
    return [("cpr", f"01019{n:05d}") for n in numbers]


def test_first_night_is_the_baseline_and_sends_nothing(database: Database) -> None:
    store = SnapshotStore(database)
    assert diff(store, store_list(store, date(2026, 11, 1), people(1, 2, 3))) == (3, 0, 0, True)
    assert Outbox(database).pending(limit=10) == []


def test_a_normal_night_gives_one_message_per_change(database: Database) -> None:
    store = SnapshotStore(database)
    diff(store, store_list(store, date(2026, 11, 1), [*people(1, 2, 3), ("cvr", "29189854")]))
    night = store_list(store, date(2026, 11, 2), people(2, 3, 4, 5))
    assert diff(store, night) == (4, 2, 2, False)
    pending = Outbox(database).pending(limit=10)
    assert sorted(m.message_id for m in pending) == sorted(
        [
            f"{A}-cpr-0101900004-tilmeldt",
            f"{A}-cpr-0101900005-tilmeldt",
            f"{A}-cpr-0101900001-afmeldt",
            f"{A}-cvr-29189854-afmeldt",
        ]
    )
    assert all(m.authority_cvr == A and m.topic == "t" for m in pending)


def test_an_empty_list_and_a_list_that_shrinks_to_zero(database: Database) -> None:
    store = SnapshotStore(database)
    diff(store, store_list(store, date(2026, 11, 1), people(1, 2)))
    assert diff(store, store_list(store, date(2026, 11, 2), [])) == (0, 0, 2, False)
    assert diff(store, store_list(store, date(2026, 11, 3), [])) == (0, 0, 0, False)
    assert len(Outbox(database).pending(limit=10)) == 2


def test_the_diff_is_against_the_newest_earlier_complete_snapshot(database: Database) -> None:
    store = SnapshotStore(database)
    diff(store, store_list(store, date(2026, 11, 1), people(1)))
    # A failed fetch leaves nothing: it is discarded, not compared against.
    failed = store_list(store, date(2026, 11, 2), people(9))
    store.discard(failed)
    assert store.get(A, date(2026, 11, 2)) is None
    snapshot_id = store_list(store, date(2026, 11, 3), people(1, 2))
    assert diff(store, snapshot_id)[1:3] == (1, 0)
    assert store.get(A, date(2026, 11, 3)).previous_id is not None  # type: ignore[union-attr]


def test_a_list_that_never_completed_is_not_the_base_of_the_diff(database: Database) -> None:
    """A crash (or a fetch still running) leaves an incomplete list for 2 November, not
    discarded: 3 November is diffed against 1 November, the newest *complete* list."""
    store = SnapshotStore(database)
    base = store_list(store, date(2026, 11, 1), people(1, 2))
    diff(store, base)
    store_list(store, date(2026, 11, 2), people(2, 3, 9))  # never completed
    night = store_list(store, date(2026, 11, 3), people(2, 3))
    assert diff(store, night) == (2, 1, 1, False)
    assert store.get(A, date(2026, 11, 3)).previous_id == base  # type: ignore[union-attr]
    assert sorted(m.message_id for m in Outbox(database).pending(limit=10)) == [
        f"{A}-cpr-0101900001-afmeldt",
        f"{A}-cpr-0101900003-tilmeldt",
    ]


def test_authorities_are_separate(database: Database) -> None:
    store = SnapshotStore(database)
    diff(store, store_list(store, date(2026, 11, 1), people(1)))
    diff(store, store_list(store, date(2026, 11, 1), people(7), authority="29189854"))
    assert diff(store, store_list(store, date(2026, 11, 2), people(1))) == (1, 0, 0, False)


def test_begin_replaces_a_crashed_fetch_but_never_a_complete_list(database: Database) -> None:
    store = SnapshotStore(database)
    leftover = store.begin(A, date(2026, 11, 1), NOW)
    store.add(leftover, people(1, 2))
    store.add(leftover, people(4))
    again = store_list(store, date(2026, 11, 1), people(3))
    # The leftover's three entries are gone with it; only the new fetch counts.
    assert diff(store, again)[0] == 1
    with pytest.raises(StorageError, match="complete"):
        store.begin(A, date(2026, 11, 1), NOW)


def test_a_gone_snapshot_is_not_completed_and_a_complete_one_not_discarded(
    database: Database,
) -> None:
    store = SnapshotStore(database)
    diff(store, store_list(store, date(2026, 11, 1), people(1, 2)))
    night = store_list(store, date(2026, 11, 2), people(2, 3))
    assert diff(store, night) == (2, 1, 1, False)
    # A complete list is the next night's base: discarding it by id leaves it.
    store.discard(night)
    kept = store.get(A, date(2026, 11, 2))
    assert kept is not None and (kept.id, kept.state) == (night, "complete")
    # Nor does it take more entries: it would no longer be the list its diff was made from.
    with pytest.raises(StorageError, match="is complete and takes no more entries"):
        store.add(night, people(9))
    assert list(store.entries(night)) == people(2, 3)
    # A fetch that was dropped (discarded, or replaced by another run's begin) cannot be
    # completed.
    dropped = store_list(store, date(2026, 11, 3), people(2, 3, 4))
    store.discard(dropped)
    with pytest.raises(StorageError, match="is gone"):
        diff(store, dropped)
    assert diff(store, store_list(store, date(2026, 11, 3), people(2, 3))) == (2, 0, 0, False)
    assert len(Outbox(database).pending(limit=10)) == 2


@pytest.mark.parametrize("dropped_by", ["begin", "discard"])
def test_a_dropped_fetchs_id_is_never_given_to_the_next_one(
    database: Database, dropped_by: str
) -> None:
    """A straggler still holding the id of a fetch that was dropped (replaced by another run's
    begin, or discarded) can neither add to nor complete the new fetch: the new one has an id
    of its own, even on SQLite, where the dropped row had the highest id (migration 0013)."""
    store = SnapshotStore(database)
    day = date(2026, 11, 1)
    straggler = store.begin(A, day, NOW)
    store.add(straggler, people(1))
    if dropped_by == "discard":
        store.discard(straggler)
    current = store.begin(A, day, NOW)
    store.add(current, people(2, 3))
    assert current != straggler
    with pytest.raises(StorageError, match=f"snapshot {straggler} is gone"):
        store.add(straggler, people(4))
    with pytest.raises(StorageError, match="is gone"):
        diff(store, straggler)
    kept = store.get(A, day)
    assert kept is not None
    assert (kept.id, kept.state, kept.completed_at) == (current, "fetching", None)
    assert (kept.entry_count, kept.subscribed_count, kept.unsubscribed_count) == (0, 0, 0)
    assert list(store.entries(current)) == people(2, 3)
    assert diff(store, current) == (2, 0, 0, True)


def test_purge_keeps_the_newest_complete_list(database: Database) -> None:
    store = SnapshotStore(database)
    for day in (1, 2, 3):
        diff(store, store_list(store, date(2026, 11, day), people(day)))
    assert store.purge(date(2026, 11, 10)) == 2
    assert [s.list_date for s in store.latest(5)] == [date(2026, 11, 3)]


def test_outbox_delivery_bookkeeping(database: Database) -> None:
    store = SnapshotStore(database)
    diff(store, store_list(store, date(2026, 11, 1), []))
    diff(store, store_list(store, date(2026, 11, 2), people(1, 2, 3)))
    box = Outbox(database)
    first, second, third = box.pending(limit=10)
    box.mark_failed(first.id, "SP-430 down")
    box.mark_delivered([second.id, third.id], NOW)
    counts = box.counts()
    assert (counts.pending, counts.delivered, counts.failing) == (1, 2, 1)
    assert counts.pending_by_authority == {A: 1}
    [left] = box.pending(limit=10)
    assert (left.id, left.attempts, left.last_error) == (first.id, 1, "SP-430 down")


def test_leases(database: Database) -> None:
    leases = LeaseStore(database)
    ttl = timedelta(minutes=5)
    assert leases.acquire("night", "p1", NOW, ttl) == "acquired"
    assert leases.acquire("night", "p2", NOW + timedelta(minutes=1), ttl) == "held"
    assert leases.renew("night", "p1", NOW + timedelta(minutes=4), ttl)
    assert leases.acquire("night", "p2", NOW + timedelta(minutes=8), ttl) == "held"
    # p1 died: after its lease ran out, p2 resumes the run.
    assert leases.acquire("night", "p2", NOW + timedelta(minutes=10), ttl) == "resumed"
    assert not leases.renew("night", "p1", NOW + timedelta(minutes=10), ttl)
    leases.release("night", "p2", NOW + timedelta(minutes=11))
    assert leases.acquire("night", "p3", NOW + timedelta(minutes=11), ttl) == "resumed"
    leases.finish("night", "p3", NOW + timedelta(minutes=12))
    assert leases.acquire("night", "p1", NOW + timedelta(days=1), ttl) == "finished"


def test_racing_schedulers_get_one_lease(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    databases[0].upgrade()
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(databases))

    def race(index: int, db: Database) -> None:
        start.wait()
        outcome = LeaseStore(db).acquire("race", f"p{index}", NOW, timedelta(minutes=5))
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race, args=(i, db)) for i, db in enumerate(databases)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for db in databases:
            db.dispose()
    assert sorted(outcomes) == ["acquired", "held", "held", "held"]


def test_the_diff_streams_instead_of_holding_the_lists(database: Database) -> None:
    # 100,000 entries a night, 2,000 changes: the diff's peak memory must stay far below what
    # the lists themselves would take as Python objects (about 15 MB for one of them).
    store = SnapshotStore(database)
    base = [("cpr", f"{n:010d}") for n in range(100_000)]
    first = store.begin(A, date(2026, 11, 1), NOW)
    for start in range(0, len(base), 10_000):
        store.add(first, base[start : start + 10_000])
    diff(store, first)
    second = store.begin(A, date(2026, 11, 2), NOW)
    changed = base[1_000:] + [("cpr", f"{n:010d}") for n in range(200_000, 201_000)]
    for start in range(0, len(changed), 10_000):
        store.add(second, changed[start : start + 10_000])
    del base, changed
    tracemalloc.start()
    try:
        assert diff(store, second) == (100_000, 1_000, 1_000, False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, f"the diff peaked at {peak / 1e6:.1f} MB"

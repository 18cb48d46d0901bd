"""Subscription lists stored as blocks of entry codes: the codes, the blocks, the block-wise
diff against plain set arithmetic, and migration 0011 carrying stored lists over and back."""

from __future__ import annotations

import random
import zlib
from array import array
from datetime import date

import pytest
from sqlalchemy import func, select, text

from integrations.sf2250 import snapshot_store
from integrations.sf2250.entry_codes import (
    CVR_OFFSET,
    code_of,
    decode_block,
    encode_block,
    entry_of,
)
from integrations.sf2250.snapshot_store import SnapshotStore
from integrations.sf2250.tables import subscription_blocks
from serviceplatform.errors import StorageError
from serviceplatform.store.db import Database
from serviceplatform.store.outbox import Outbox
from tests.schema_downgrade import downgrade
from tests.unit.test_store_snapshots import NOW, A, message_for


def test_codes_sort_as_kind_then_number() -> None:
    entries = [
        ("cvr", "00000001"),
        ("cpr", "3112999999"),
        ("cpr", "0000000001"),
        ("cvr", "99999999"),
    ]
    codes = [code_of(kind, number) for kind, number in entries]
    assert sorted(codes) == [code_of(*e) for e in sorted(entries)]
    assert [entry_of(code) for code in codes] == entries
    assert code_of("cvr", "00000000") == CVR_OFFSET
    assert entry_of(CVR_OFFSET - 1) == ("cpr", "9999999999")
    assert entry_of(CVR_OFFSET) == ("cvr", "00000000")


@pytest.mark.parametrize(
    ("kind", "number"),
    [
        ("cpr", "010190123"),  # 9 digits
        ("cpr", "01019012345"),
        ("cpr", "01019O1234"),
        ("cpr", "٠١٠١٩٠١٢٣٤"),  # Arabic-Indic digits: isdigit, not ASCII
        ("cvr", "2918984"),
        ("cvr", "0101901234"),  # a CPR number given as a CVR
        ("cpr", "29189846"),
        ("ean", "29189846"),
    ],
)
def test_a_number_of_the_wrong_form_is_refused(kind: str, number: str) -> None:
    with pytest.raises(StorageError, match="no CPR or CVR"):
        code_of(kind, number)


def test_a_block_reads_back_as_written_and_is_compressed() -> None:
    codes = array("q", sorted(random.Random(3).sample(range(10**10), 20_000)))
    data = encode_block(codes)
    assert decode_block(data, len(codes)) == codes
    assert len(data) < len(codes) * codes.itemsize
    # Stored little-endian whatever the machine: the bytes are the codes' own.
    assert zlib.decompress(data)[:8] == codes[0].to_bytes(8, "little", signed=True)


def test_a_block_holds_signed_64_bit_integers() -> None:
    """The stored form is signed, as documented: no entry code is negative, but a block read
    as unsigned would turn the format into another one."""
    codes = array("q", [-(2**63), -1, 0, 2**63 - 1])
    assert decode_block(encode_block(codes), 4) == codes


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-4],  # cut short
        lambda data: b"x" + data,  # not zlib
    ],
)
def test_a_damaged_block_is_refused(damage: object) -> None:
    data = encode_block(array("q", [1, 2, 3]))
    with pytest.raises(StorageError, match="damaged"):
        decode_block(damage(data), 3)  # type: ignore[operator]


def test_a_block_holding_another_count_is_refused() -> None:
    data = encode_block(array("q", [1, 2, 3]))
    with pytest.raises(StorageError, match="damaged"):
        decode_block(data, 4)
    with pytest.raises(StorageError, match="damaged"):
        decode_block(data, 2)


def _night(store: SnapshotStore, day: int, codes: list[int]) -> int:
    snapshot_id = store.begin(A, date(2026, 11, day), NOW)
    store.add_codes(snapshot_id, codes)
    return snapshot_id


def _outbox_changes(database: Database) -> set[tuple[str, str, str]]:
    found = set()
    for message in Outbox(database).pending(limit=100_000):
        _, kind, number, change = message.message_id.split("-")
        found.add((kind, number, change))
    return found


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_block_wise_diff_is_set_arithmetic(
    database: Database, monkeypatch: pytest.MonkeyPatch, seed: int, ascending: bool
) -> None:
    """Small blocks and windows, so changes fall at and across every kind of boundary: the
    first and last codes, runs of changes longer than a window, a side that ends first."""
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 7)
    monkeypatch.setattr(snapshot_store, "_STEP", 3)
    rng = random.Random(seed)
    universe = [*range(1_000, 1_400), *range(CVR_OFFSET, CVR_OFFSET + 100)]
    old = set(rng.sample(universe, 300))
    new = {c for c in old if rng.random() > 0.1} | set(rng.sample(universe, 40))
    new |= {min(universe), max(universe)}
    new |= set(range(1_200, 1_220))  # a run longer than a window
    store = SnapshotStore(database)
    order = sorted if ascending else (lambda codes: rng.sample(sorted(codes), len(codes)))
    first = _night(store, 1, order(old))
    store.complete(first, topic="t", message_for=message_for, completed_at=NOW)
    second = _night(store, 2, order(new))
    result = store.complete(second, topic="t", message_for=message_for, completed_at=NOW)
    expected = {(*entry_of(c), "tilmeldt") for c in new - old} | {
        (*entry_of(c), "afmeldt") for c in old - new
    }
    assert _outbox_changes(database) == expected
    s = result.snapshot
    assert (s.entry_count, s.subscribed_count, s.unsubscribed_count) == (
        len(new),
        len(new - old),
        len(old - new),
    )
    assert result.messages == len(expected)
    assert list(store.entries(second)) == [entry_of(c) for c in sorted(new)]


def test_an_ascending_list_is_stored_in_blocks_that_ascend(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 4)
    store = SnapshotStore(database)
    snapshot_id = _night(store, 1, list(range(10, 20)))
    with database.transaction() as connection:
        rows = connection.execute(
            select(
                subscription_blocks.c.seq,
                subscription_blocks.c.first_code,
                subscription_blocks.c.last_code,
                subscription_blocks.c.entries,
            )
            .where(subscription_blocks.c.snapshot_id == snapshot_id)
            .order_by(subscription_blocks.c.seq)
        ).all()
    assert [tuple(r) for r in rows] == [(0, 10, 13, 4), (1, 14, 17, 4), (2, 18, 19, 2)]


def test_a_block_given_out_of_order_is_stored_sorted_and_once(database: Database) -> None:
    store = SnapshotStore(database)
    snapshot_id = _night(store, 1, [5, 3, 9, 3, 1])
    with database.transaction() as connection:
        row = connection.execute(
            select(
                subscription_blocks.c.first_code,
                subscription_blocks.c.last_code,
                subscription_blocks.c.entries,
                subscription_blocks.c.data,
            ).where(subscription_blocks.c.snapshot_id == snapshot_id)
        ).one()
    assert (row.first_code, row.last_code, row.entries) == (1, 9, 4)
    assert list(decode_block(row.data, row.entries)) == [1, 3, 5, 9]


def test_blocks_that_overlap_are_read_sorted_and_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 2)
    store = SnapshotStore(database)
    snapshot_id = store.begin(A, date(2026, 11, 1), NOW)
    store.add_codes(snapshot_id, [8, 9])
    store.add_codes(snapshot_id, [1, 8, 2])  # blocks [1, 8] and [2]: they overlap the first
    assert list(store.entries(snapshot_id)) == [entry_of(c) for c in (1, 2, 8, 9)]
    result = store.complete(snapshot_id, topic="t", message_for=message_for, completed_at=NOW)
    assert result.snapshot.entry_count == 4


def test_migration_0011_carries_every_stored_list_over_and_back(database_url: str) -> None:
    """Lists stored as rows before 0011 are blocks after it, with the same entries, and the
    next night diffs against them; ``downgrade`` writes the rows back."""
    db = Database(database_url)
    try:
        db.upgrade("0010")
        numbers = [f"{n:010d}" for n in range(70_000)]  # more than one block
        with db.transaction(write_first=True) as connection:
            one, two = (
                connection.execute(
                    text(
                        "INSERT INTO subscription_snapshots (authority_cvr, list_date, "
                        "state, fetched_at, entry_count, subscribed_count, unsubscribed_count) "
                        "VALUES (:cvr, :day, 'complete', :now, 0, 0, 0) RETURNING id"
                    ),
                    {"cvr": A, "day": date(2026, 11, day), "now": NOW},
                ).scalar_one()
                for day in (1, 2)
            )
            rows = [{"s": one, "k": "cpr", "n": n} for n in numbers] + [
                {"s": two, "k": "cvr", "n": "29189846"},
                {"s": two, "k": "cpr", "n": "0101901234"},
            ]
            connection.execute(
                text(
                    "INSERT INTO subscription_entries (snapshot_id, kind, number) "
                    "VALUES (:s, :k, :n)"
                ),
                rows,
            )
        db.upgrade()
        store = SnapshotStore(db)
        assert list(store.entries(one)) == [("cpr", n) for n in numbers]
        assert list(store.entries(two)) == [("cpr", "0101901234"), ("cvr", "29189846")]
        with db.transaction() as connection:
            blocks = connection.execute(
                select(func.count()).where(subscription_blocks.c.snapshot_id == one)
            ).scalar_one()
        assert blocks == 2
        night = store.begin(A, date(2026, 11, 3), NOW)
        store.add(night, [("cvr", "29189846")])
        result = store.complete(night, topic="t", message_for=message_for, completed_at=NOW)
        assert (result.snapshot.subscribed_count, result.snapshot.unsubscribed_count) == (0, 1)

        downgrade(db, "0010")
        with db.transaction() as connection:
            back = connection.execute(
                text(
                    "SELECT snapshot_id, kind, number FROM subscription_entries "
                    "ORDER BY snapshot_id, kind, number"
                )
            ).all()
        assert [tuple(r) for r in back] == (
            [(one, "cpr", n) for n in numbers]
            + [(two, "cpr", "0101901234"), (two, "cvr", "29189846"), (night, "cvr", "29189846")]
        )
    finally:
        db.dispose()


def _stored(db: Database) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every snapshot row and every block, in key order."""
    with db.transaction() as connection:
        snapshots = connection.execute(
            text("SELECT * FROM subscription_snapshots ORDER BY id")
        ).all()
        blocks = connection.execute(
            text("SELECT * FROM subscription_blocks ORDER BY snapshot_id, seq")
        ).all()
    return [tuple(r) for r in snapshots], [tuple(r) for r in blocks]


def _table_sql(db: Database) -> str:
    with db.transaction() as connection:
        return str(
            connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'subscription_snapshots'")
            ).scalar_one()
        )


@pytest.mark.parametrize("purged_base", [False, True])
def test_migration_0013_keeps_every_list_and_gives_no_id_twice(
    database_url: str, monkeypatch: pytest.MonkeyPatch, purged_base: bool
) -> None:
    """Complete and fetching lists, several blocks each, survive the rebuild of
    ``subscription_snapshots`` with their ids (foreign keys on: dropping the old table would
    cascade into the blocks); afterwards the highest id ever used is not handed out again,
    nor the id of a purged base a stored row names as ``previous_id``. ``downgrade`` keeps
    every row and block too."""
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 2)
    db = Database(database_url)
    sqlite = db.dialect == "sqlite"
    try:
        db.upgrade("0012")
        store = SnapshotStore(db)
        other = store.begin("29189854", date(2026, 11, 1), NOW)
        store.add_codes(other, [7, 8, 9])
        store.complete(other, topic="t", message_for=message_for, completed_at=NOW)
        if purged_base:
            # The 2nd is completed late against the 1st, fetched after it; the purge then
            # drops the 1st, the highest id, which the 2nd names as its previous_id.
            late = store.begin(A, date(2026, 11, 2), NOW)
            store.add_codes(late, [1, 2, 3, 5])
            base = _night(store, 1, [1, 2, 3, 4])
            store.complete(base, topic="t", message_for=message_for, completed_at=NOW)
            store.complete(late, topic="t", message_for=message_for, completed_at=NOW)
            assert store.purge(date(2026, 11, 2)) == 1
            top = base
        else:
            for day in (1, 2):
                night = _night(store, day, list(range(day, day + 5)))
                store.complete(night, topic="t", message_for=message_for, completed_at=NOW)
            top = _night(store, 3, [1, 2, 3, 6, 7])  # still fetching, the highest id
        before = _stored(db)
        # Every stored list has blocks, more than one.
        ids = [row[0] for row in before[0]]
        assert len(ids) == (2 if purged_base else 4)
        assert all([row[0] for row in before[1]].count(i) >= 2 for i in ids)
        if sqlite:
            assert "AUTOINCREMENT" not in _table_sql(db)

        db.upgrade()
        assert _stored(db) == before
        if sqlite:
            assert "AUTOINCREMENT" in _table_sql(db)
        else:
            with db.transaction() as connection:
                sequence = connection.execute(
                    text("SELECT pg_get_serial_sequence('subscription_snapshots', 'id')")
                ).scalar()
            assert sequence is not None
        store.discard(top)
        again = store.begin(A, date(2026, 11, 3), NOW)
        assert again > top
        store.add_codes(again, [4])
        after = _stored(db)

        downgrade(db, "0012")
        assert _stored(db) == after
        if sqlite:
            assert "AUTOINCREMENT" not in _table_sql(db)
    finally:
        db.dispose()


def test_blocks_that_share_a_boundary_code_hold_it_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks [1, 2] and [2, 3] ascend but for the 2 both hold: read as 1, 2, 3."""
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 2)
    store = SnapshotStore(database)
    base = _night(store, 1, [1, 3])
    store.complete(base, topic="t", message_for=message_for, completed_at=NOW)
    snapshot_id = store.begin(A, date(2026, 11, 2), NOW)
    store.add_codes(snapshot_id, [1, 2])
    store.add_codes(snapshot_id, [2, 3])
    assert list(store.entries(snapshot_id)) == [entry_of(c) for c in (1, 2, 3)]
    result = store.complete(snapshot_id, topic="t", message_for=message_for, completed_at=NOW)
    assert (result.snapshot.entry_count, result.messages) == (3, 1)


def _blocks(database: Database, snapshot_id: int) -> list[list[int]]:
    with database.transaction() as connection:
        rows = connection.execute(
            select(subscription_blocks.c.data, subscription_blocks.c.entries)
            .where(subscription_blocks.c.snapshot_id == snapshot_id)
            .order_by(subscription_blocks.c.seq)
        ).all()
    return [list(decode_block(row.data, row.entries)) for row in rows]


def test_ascending_runs_are_joined_into_full_blocks(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nightly's buckets: small ascending runs, one after the other, make full blocks."""
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 4)
    store = SnapshotStore(database)
    snapshot_id = store.begin(A, date(2026, 11, 1), NOW)
    runs = [array("q", r) for r in ([1, 2], [3], [4, 5, 6], [], [7, 8, 9, 10, 11])]
    store.add_runs(snapshot_id, runs)
    assert _blocks(database, snapshot_id) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]


def test_a_run_that_does_not_follow_on_starts_a_block_of_its_own(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 4)
    store = SnapshotStore(database)
    snapshot_id = store.begin(A, date(2026, 11, 1), NOW)
    # [2, 3] repeats the 2 that ends the first run; [9, 1, 5] is out of order (sorted).
    store.add_runs(snapshot_id, [array("q", [1, 2]), array("q", [2, 3]), array("q", [9, 1, 5])])
    assert _blocks(database, snapshot_id) == [[1, 2], [2, 3], [1, 5, 9]]
    assert list(store.entries(snapshot_id)) == [entry_of(c) for c in (1, 2, 3, 5, 9)]
    result = store.complete(snapshot_id, topic="t", message_for=message_for, completed_at=NOW)
    assert result.snapshot.entry_count == 5


@pytest.mark.parametrize("longer", ["old", "new"])
def test_a_list_that_outlasts_the_other_by_several_blocks_is_read_to_its_end(
    database: Database, monkeypatch: pytest.MonkeyPatch, longer: str
) -> None:
    """When one list has no codes left, the other's remaining blocks are all changes, each
    block read from its first code."""
    monkeypatch.setattr(snapshot_store, "_ADD_CHUNK", 3)
    short, long = [1, 2, 3], list(range(1, 21))
    old, new = (long, short) if longer == "old" else (short, long)
    store = SnapshotStore(database)
    store.complete(_night(store, 1, old), topic="t", message_for=message_for, completed_at=NOW)
    result = store.complete(
        _night(store, 2, new), topic="t", message_for=message_for, completed_at=NOW
    )
    change = "afmeldt" if longer == "old" else "tilmeldt"
    assert _outbox_changes(database) == {(*entry_of(c), change) for c in range(4, 21)}
    assert result.messages == 17


def test_every_change_is_counted_when_the_last_batch_is_not_full(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_store, "_BATCH", 2)
    store = SnapshotStore(database)
    store.complete(_night(store, 1, [1]), topic="t", message_for=message_for, completed_at=NOW)
    result = store.complete(
        _night(store, 2, [2, 3, 4, 5]), topic="t", message_for=message_for, completed_at=NOW
    )
    # Five changes: two full batches and one of one.
    assert result.messages == 5
    assert len(_outbox_changes(database)) == 5


def test_a_run_out_of_order_after_an_ascending_start_is_sorted(database: Database) -> None:
    store = SnapshotStore(database)
    snapshot_id = store.begin(A, date(2026, 11, 1), NOW)
    store.add_runs(snapshot_id, [array("q", [1, 5, 3, 4])])  # its first two ascend
    assert _blocks(database, snapshot_id) == [[1, 3, 4, 5]]


def test_a_run_that_starts_inside_the_pending_block_starts_a_block_of_its_own(
    database: Database,
) -> None:
    """[3, 4] follows [1, 2, 5]'s second code but not its last: joined, the block would not
    ascend."""
    store = SnapshotStore(database)
    snapshot_id = store.begin(A, date(2026, 11, 1), NOW)
    store.add_runs(snapshot_id, [array("q", [1, 2, 5]), array("q", [3, 4])])
    assert _blocks(database, snapshot_id) == [[1, 2, 5], [3, 4]]
    assert list(store.entries(snapshot_id)) == [entry_of(c) for c in (1, 2, 3, 4, 5)]


def test_a_big_endian_machine_stores_the_same_little_endian_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stored form does not depend on the machine: where native order is big-endian,
    the codes are swapped on the way in and out (shown here by claiming this machine is)."""
    from integrations.sf2250 import entry_codes

    codes = array("q", [-5, 1, 2, 3 * 2**40])
    little = encode_block(codes)
    monkeypatch.setattr(entry_codes, "_BIG_ENDIAN", True)
    swapped = encode_block(codes)
    assert list(codes) == [-5, 1, 2, 3 * 2**40]  # the caller's array is left alone
    native_big = array("q", codes)
    native_big.byteswap()
    assert zlib.decompress(swapped) == native_big.tobytes()
    assert zlib.decompress(swapped) != zlib.decompress(little)
    assert decode_block(swapped, 4) == codes

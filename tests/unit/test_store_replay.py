"""The database replay cache: accept once, refuse while live, accept again once expired."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from serviceplatform.store.db import Database
from serviceplatform.store.models import MESSAGE_ID_LEN, replay_cache, routing_version
from serviceplatform.store.replay import DbReplayCache, storage_key
from serviceplatform.store.routing_cache import VersionHandoff
from tests.unit.writer_gate_probe import gated_database

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def _rows(db: Database) -> int:
    with db.transaction() as connection:
        return int(connection.execute(select(func.count()).select_from(replay_cache)).scalar_one())


def test_first_accepted_second_refused(database: Database) -> None:
    cache = DbReplayCache(database)
    assert cache.remember("uuid:m-1", NOW + WINDOW, NOW) is True
    assert cache.remember("uuid:m-1", NOW + WINDOW, NOW + timedelta(seconds=1)) is False
    assert cache.remember("uuid:m-2", NOW + WINDOW, NOW) is True


def test_refused_until_expiry_then_accepted_once(database: Database) -> None:
    cache = DbReplayCache(database)
    assert cache.remember("m", NOW + WINDOW, NOW)
    just_before = NOW + WINDOW - timedelta(microseconds=1)
    assert not cache.remember("m", just_before + WINDOW, just_before)
    later = NOW + WINDOW + timedelta(seconds=1)
    assert cache.remember("m", later + WINDOW, later)
    # The expired row was taken over with the new expiry, so it is live again.
    assert not cache.remember("m", later + 2 * WINDOW, later + timedelta(seconds=1))


def test_times_in_other_zones_compare_as_instants(database: Database) -> None:
    cache = DbReplayCache(database)
    local_now = NOW.astimezone(ZoneInfo("Europe/Copenhagen"))  # 13:00 local time
    assert cache.remember("z", local_now + WINDOW, local_now)
    still_live = NOW + WINDOW - timedelta(minutes=1)
    assert not cache.remember("z", still_live + WINDOW, still_live)
    # Stored as 13:15 local wall-clock time, this would still look live at 12:16 UTC.
    expired = NOW + WINDOW + timedelta(minutes=1)
    assert cache.remember("z", expired + WINDOW, expired)


def test_one_process_sees_what_another_remembered(database_url: str, database: Database) -> None:
    other = Database(database_url)
    try:
        assert DbReplayCache(database).remember("shared", NOW + WINDOW, NOW)
        assert not DbReplayCache(other).remember("shared", NOW + WINDOW, NOW)
    finally:
        other.dispose()


def test_concurrent_callers_accept_each_id_exactly_once(
    database_url: str, database: Database
) -> None:
    # Separate engines, as separate processes would have; every worker offers every id.
    workers, ids = 6, [f"race-{i}" for i in range(25)]
    engines = [Database(database_url) for _ in range(workers)]
    accepted: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers)

    def run(db: Database) -> None:
        cache = DbReplayCache(db)
        barrier.wait()
        for message_id in ids:
            if cache.remember(message_id, NOW + WINDOW, NOW):
                with lock:
                    accepted.append(message_id)

    threads = [threading.Thread(target=run, args=(db,)) for db in engines]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for db in engines:
            db.dispose()
    assert sorted(accepted) == sorted(ids)


def test_purge_deletes_only_expired_rows(database: Database) -> None:
    cache = DbReplayCache(database)
    cache.remember("old", NOW + timedelta(seconds=1), NOW)
    cache.remember("new", NOW + WINDOW, NOW)
    assert cache.purge(NOW + timedelta(seconds=5)) == 1
    assert _rows(database) == 1
    assert not cache.remember("new", NOW + WINDOW, NOW + timedelta(seconds=5))


def test_expired_rows_are_purged_now_and_then(database: Database) -> None:
    cache = DbReplayCache(database, purge_every=3)
    cache.remember("a", NOW + timedelta(seconds=1), NOW)
    cache.remember("b", NOW + timedelta(seconds=1), NOW)
    assert _rows(database) == 2
    later = NOW + timedelta(minutes=1)
    cache.remember("c", later + WINDOW, later)  # third call: purge runs
    assert _rows(database) == 1


def test_overlong_message_ids_are_stored_hashed(database: Database) -> None:
    cache = DbReplayCache(database)
    long_id = "urn:uuid:" + "x" * 1000
    assert storage_key(long_id).startswith("sha256:")
    assert storage_key("short") == "short"
    assert cache.remember(long_id, NOW + WINDOW, NOW)
    assert not cache.remember(long_id, NOW + WINDOW, NOW)
    assert cache.remember(long_id + "y", NOW + WINDOW, NOW)


def test_an_accepted_message_hands_its_routing_version_to_its_own_routing_once(
    database: Database,
) -> None:
    handoff = VersionHandoff()
    cache = DbReplayCache(database, handoff=handoff)
    with database.transaction() as connection:
        connection.execute(routing_version.update().values(version=41))
    assert cache.remember("first", NOW + WINDOW, NOW)
    assert handoff.take("other") is None  # another call's number is never taken
    assert cache.remember("second", NOW + WINDOW, NOW)
    assert handoff.take("second") == 41
    assert handoff.take("second") is None  # once
    # A refused replay offers nothing: the previous offer is gone, and none replaces it.
    assert cache.remember("third", NOW + WINDOW, NOW)
    assert not cache.remember("third", NOW + WINDOW, NOW)
    assert handoff.take("third") == 41
    assert handoff.take("third") is None


def test_the_handoff_is_per_thread(database: Database) -> None:
    handoff = VersionHandoff()
    cache = DbReplayCache(database, handoff=handoff)
    assert cache.remember("main", NOW + WINDOW, NOW)
    seen: list[int | None] = []
    thread = threading.Thread(target=lambda: seen.append(handoff.take("main")))
    thread.start()
    thread.join()
    assert seen == [None]
    assert handoff.take("main") == _version(database)


def _version(db: Database) -> int:
    with db.transaction() as connection:
        return int(connection.execute(select(routing_version.c.version)).scalar_one())


def test_a_message_id_is_expired_at_its_expiry_instant(database: Database) -> None:
    cache = DbReplayCache(database)
    assert cache.remember("m", NOW + WINDOW, NOW)
    # The window is [sent, expires): at the expiry instant the id may be used again.
    assert cache.remember("m", NOW + 2 * WINDOW, NOW + WINDOW)
    assert not cache.remember("m", NOW + 3 * WINDOW, NOW + WINDOW)


def test_purge_deletes_a_row_at_its_expiry_instant(database: Database) -> None:
    cache = DbReplayCache(database)
    cache.remember("edge", NOW + WINDOW, NOW)
    cache.remember("live", NOW + WINDOW + timedelta(microseconds=1), NOW)
    assert cache.purge(NOW + WINDOW) == 1
    assert _rows(database) == 1


def test_a_message_id_that_just_fits_is_stored_as_itself(database: Database) -> None:
    fits = "urn:uuid:" + "f" * (MESSAGE_ID_LEN - len("urn:uuid:"))
    assert storage_key(fits) == fits
    assert storage_key(fits + "x") != fits + "x"
    cache = DbReplayCache(database)
    assert cache.remember(fits, NOW + WINDOW, NOW)
    with database.transaction() as connection:
        assert connection.execute(select(replay_cache.c.message_id)).scalars().all() == [fits]


def test_the_purge_runs_on_every_purge_every_th_call(database: Database) -> None:
    # Rows written by another process, expired by the time this one starts calling.
    DbReplayCache(database).remember("old", NOW + timedelta(seconds=1), NOW)
    later = NOW + timedelta(minutes=1)
    cache = DbReplayCache(database, purge_every=2)
    cache.remember("a", later + WINDOW, later)
    assert _rows(database) == 2  # first call: no purge yet
    cache.remember("b", later + WINDOW, later)
    assert _rows(database) == 2  # second call: "old" purged, "b" added
    every_call = DbReplayCache(database, purge_every=0)  # below 1 means every call
    DbReplayCache(database).remember("old-2", NOW + timedelta(seconds=1), NOW)
    every_call.remember("c", later + WINDOW, later)
    assert _rows(database) == 3


def test_an_accepted_message_offers_no_version_when_the_version_row_is_missing(
    database: Database,
) -> None:
    handoff = VersionHandoff()
    cache = DbReplayCache(database, handoff=handoff)
    with database.transaction() as connection:
        connection.execute(routing_version.delete())
    # The routing then reads the version itself (and reports the unmigrated database).
    assert cache.remember("m", NOW + WINDOW, NOW)
    assert handoff.take("m") is None


def test_every_replay_cache_write_queues_at_the_sqlite_writer_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with gated_database(tmp_path, monkeypatch) as (db, gate):
        cache = DbReplayCache(db)
        assert cache.remember("m", NOW + WINDOW, NOW)
        assert gate.holds == 1
        assert not cache.remember("m", NOW + WINDOW, NOW)
        assert gate.holds == 2
        cache.purge(NOW)
        assert gate.holds == 3

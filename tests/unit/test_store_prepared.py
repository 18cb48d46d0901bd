"""Prepared statements run straight on the DBAPI connection (``Database.run``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, event, func, insert, select, text

from serviceplatform.errors import StorageError
from serviceplatform.store import db as db_module
from serviceplatform.store.db import Database
from serviceplatform.store.models import replay_cache
from serviceplatform.store.prepared import PreparedStatement

WHEN = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _insert(database: Database) -> PreparedStatement:
    return database.prepare(
        insert(replay_cache).values(
            message_id=bindparam("p_id"),
            expires_at=bindparam("p_at", type_=replay_cache.c.expires_at.type),
        )
    )


def test_a_row_written_by_run_reads_back_through_the_orm_types(database: Database) -> None:
    statement = _insert(database)
    # Another zone: the column type converts it exactly as a Core or ORM write would.
    local = WHEN.astimezone(timezone(timedelta(hours=1)))
    assert database.run(statement, {"p_id": "m-1", "p_at": local}, write=True) == []
    with database.transaction() as connection:
        stored = connection.execute(
            select(replay_cache.c.expires_at).where(replay_cache.c.message_id == "m-1")
        ).scalar_one()
    assert stored == WHEN


def test_run_returns_the_rows_of_a_query(database: Database) -> None:
    with database.transaction(write_first=True) as connection:
        connection.execute(insert(replay_cache), [{"message_id": "a", "expires_at": WHEN}])
    query = database.prepare(
        select(replay_cache.c.message_id).where(replay_cache.c.message_id == bindparam("p_id"))
    )
    assert database.run(query, {"p_id": "a"}) == [("a",)]
    assert database.run(query, {"p_id": "missing"}) == []


def test_a_failing_statement_is_a_storage_error_and_the_pool_stays_usable(
    database: Database,
) -> None:
    statement = _insert(database)
    database.run(statement, {"p_id": "dup", "p_at": WHEN}, write=True)
    with pytest.raises(StorageError):
        database.run(statement, {"p_id": "dup", "p_at": WHEN}, write=True)
    # The failed statement left nothing open: the next ones on the same pool work.
    database.run(statement, {"p_id": "next", "p_at": WHEN}, write=True)
    with database.transaction() as connection:
        count = len(connection.execute(select(replay_cache.c.message_id)).all())
    assert count == 2


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"p_id": "x"}, "KeyError"),
        ({"p_id": "x", "p_at": datetime(2025, 3, 1, 12, 0)}, "naive datetime"),
    ],
)
def test_bad_parameters_are_refused_before_the_database(
    database: Database, values: dict[str, object], reason: str
) -> None:
    with pytest.raises(StorageError, match=reason):
        database.run(_insert(database), values, write=True)
    with database.transaction() as connection:
        assert connection.execute(select(replay_cache.c.message_id)).all() == []


def test_statements_that_cannot_be_prepared_are_refused(database: Database) -> None:
    expanding = select(replay_cache.c.message_id).where(
        replay_cache.c.message_id.in_(bindparam("p_ids", expanding=True))
    )
    with pytest.raises(ValueError, match="expanding"):
        database.prepare(expanding)


def test_run_keeps_its_connections_and_a_failure_never_loses_one(database: Database) -> None:
    """``run`` reuses one connection for sequential statements, also after a failed one."""
    made: list[object] = []
    event.listen(database.engine, "connect", lambda dbapi, record: made.append(dbapi))
    statement = _insert(database)
    for number in range(5):
        database.run(statement, {"p_id": f"m-{number}", "p_at": WHEN}, write=True)
    with pytest.raises(StorageError):
        database.run(statement, {"p_id": "m-0", "p_at": WHEN}, write=True)
    database.run(statement, {"p_id": "m-5", "p_at": WHEN}, write=True)
    assert len(made) <= 1  # one made for run (none if the migration's was taken)
    database.dispose()
    database.run(statement, {"p_id": "m-6", "p_at": WHEN}, write=True)  # a new one after dispose
    assert len(made) <= 2
    with database.transaction() as connection:
        assert len(connection.execute(select(replay_cache.c.message_id)).all()) == 7


def test_a_postgresql_connection_dropped_while_idle_is_replaced_before_use(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the pool's pre-ping did: a connection the server dropped is never used."""
    database = Database(postgres_schema_url)
    try:
        database.upgrade()
        monkeypatch.setattr(db_module, "_PING_AFTER_IDLE", 0.0)  # every idle one is pinged
        backend = database.prepare(select(func.pg_backend_pid()))
        [(first,)] = database.run(backend, {})
        with database.transaction() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        [(second,)] = database.run(backend, {})
        assert second != first
        [(third,)] = database.run(backend, {})
        assert third == second  # and the new one is kept
    finally:
        database.dispose()

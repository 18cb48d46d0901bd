"""The outbox's delivery state in its own narrow table (migration 0012), on SQLite and PostgreSQL.

Every outbox row gets its ``pending`` state row from the trigger, whoever inserts it; marking
rows delivered or failed writes only the state rows, never the outbox row with its body; a
claim finds pending rows through the partial index; and a database with pending, failed and
delivered rows keeps every row's state through the upgrade and back.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from psycopg import sql as pg_sql
from sqlalchemy import event, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox, outbox_state
from serviceplatform.store.outbox import Outbox
from tests.schema_downgrade import downgrade

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 7, 2, 5, tzinfo=UTC)
A = "29189846"
#: Enough rows that PostgreSQL, without statistics, sorts them rather than walk the index.
ROWS = 5000


def _row(n: int) -> dict[str, Any]:
    return {
        "message_id": f"00000000-0000-4000-8000-{n:012d}",
        "topic": "beskedfordeler",
        "authority_cvr": A,
        "body": f"<Haendelsesbesked>{n}</Haendelsesbesked>",
        "created_at": NOW,
    }


def _states(database: Database) -> list[tuple[Any, ...]]:
    with database.transaction() as connection:
        rows = connection.execute(
            select(
                outbox_state.c.id,
                outbox_state.c.state,
                outbox_state.c.attempts,
                outbox_state.c.last_error,
                outbox_state.c.delivered_at,
            ).order_by(outbox_state.c.id)
        )
        return [tuple(row) for row in rows]


def test_every_inserted_outbox_row_gets_one_pending_state_row(database: Database) -> None:
    # As the night inserts: several rows in one statement, a known message id skipped.
    dialect_insert = postgresql.insert if database.dialect == "postgresql" else sqlite.insert
    statement = dialect_insert(outbox).on_conflict_do_nothing(index_elements=["message_id"])
    with database.transaction(write_first=True) as connection:
        connection.execute(statement, [_row(1), _row(2)])
    with database.transaction(write_first=True) as connection:
        connection.execute(statement, [_row(2), _row(3)])
    with database.transaction() as connection:
        ids = connection.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().all()
    assert _states(database) == [(i, "pending", 0, None, None) for i in ids]
    assert len(ids) == 3
    assert Outbox(database).counts().pending == 3


def test_marking_writes_the_state_rows_and_never_the_outbox_rows(database: Database) -> None:
    with database.transaction(write_first=True) as connection:
        connection.execute(insert(outbox), [_row(n) for n in range(1, 5)])
    box = Outbox(database)
    first, second, third, fourth = box.pending(limit=10)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    with database.transaction() as connection:
        row_versions = _row_versions(connection, database.dialect)
    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        box.mark_failed(first.id, "SP-430 down")
        box.mark_delivered([second.id, third.id], LATER)
        with box.claim(limit=10) as claim:
            assert [row.id for row in claim.rows] == [first.id, fourth.id]
            claim.mark_delivered([fourth.id], LATER)
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
    writes = [s for s in statements if re.match(r"\s*(UPDATE|DELETE|INSERT)", s, re.I)]
    assert len(writes) == 3
    assert all(re.match(r"\s*UPDATE outbox_state\b", s) for s in writes)
    with database.transaction() as connection:
        # PostgreSQL: an updated row is a new row version with a new xmin.
        assert _row_versions(connection, database.dialect) == row_versions
    assert _states(database) == [
        (first.id, "pending", 1, "SP-430 down", None),
        (second.id, "delivered", 1, None, LATER),
        (third.id, "delivered", 1, None, LATER),
        (fourth.id, "delivered", 1, None, LATER),
    ]
    counts = box.counts()
    assert (counts.pending, counts.delivered, counts.failing) == (1, 3, 1)


def _row_versions(connection: Any, dialect: str) -> list[Any]:
    if dialect != "postgresql":
        return [row.id for row in connection.execute(select(outbox.c.id))]
    return list(connection.execute(text("SELECT id, xmin::text FROM outbox ORDER BY id")).all())


def test_a_claim_walks_the_pending_index_in_order(database: Database) -> None:
    """Delivered rows of earlier nights are not in the index the claim walks, and the claim
    stops at its limit. On PostgreSQL also in a generic plan (psycopg prepares a statement
    run five times; a bound parameter for ``'pending'`` would keep it from the index) and
    with statistics from when nothing was pending, which made it sort every pending row."""
    box = Outbox(database)
    if database.dialect == "postgresql":
        # A night's insert into tables not analysed since (autovacuum kept away meanwhile).
        with database.transaction(write_first=True) as connection:
            for table in ("outbox", "outbox_state"):
                connection.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))
            connection.execute(insert(outbox), [_row(n) for n in range(1, ROWS + 1)])
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith(("SELECT outbox.id, outbox.message_id", "SET")):
            seen.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", keep)
    try:
        with box.claim(limit=10, topic="beskedfordeler", after=5):
            pass
    finally:
        event.remove(database.engine, "before_cursor_execute", keep)
    *settings, (statement, parameters) = seen
    with database.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        if database.dialect == "sqlite":
            rows = raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plan = " | ".join(str(row[-1]) for row in rows)
            assert "SEARCH outbox_state USING INDEX ix_outbox_state_pending" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort
            return
        names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))
        numbered = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", statement)
        cursor = raw.cursor()
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for setting, _ in settings:  # what the claim's transaction set
            cursor.execute(setting)
        types = ["bigint" if isinstance(parameters[n], int) else "text" for n in names]
        cursor.execute(f"PREPARE claim_plan ({', '.join(types)}) AS {numbered}")
        # EXPLAIN takes no bound parameters: the values go in as quoted literals.
        values = pg_sql.SQL(", ").join(pg_sql.Literal(parameters[n]) for n in names)
        cursor.execute(pg_sql.SQL("EXPLAIN EXECUTE claim_plan({})").format(values))
        plan = " | ".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE claim_plan")
        raw.rollback()
    assert "Index Scan using ix_outbox_state_pending on outbox_state" in plan, plan
    assert "Sort" not in plan, plan


def test_upgrade_keeps_every_rows_state_and_downgrade_gives_it_back(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.upgrade("0011")
        old = [
            (1, "pending", 0, None, None),
            (2, "pending", 2, "SP-430 down", None),
            (3, "delivered", 1, None, LATER),
        ]
        with db.transaction(write_first=True) as connection:
            for row_id, state, attempts, error, delivered_at in old:
                connection.execute(
                    text(
                        "INSERT INTO outbox (id, message_id, topic, authority_cvr, body, state, "
                        "attempts, last_error, created_at, delivered_at) VALUES (:id, :m, "
                        ":topic, :cvr, :body, :state, :attempts, :error, :at, :delivered_at)"
                    ),
                    {
                        "id": row_id,
                        "m": _row(row_id)["message_id"],
                        "topic": "beskedfordeler",
                        "cvr": A,
                        "body": _row(row_id)["body"],
                        "state": state,
                        "attempts": attempts,
                        "error": error,
                        "at": NOW if db.dialect == "postgresql" else "2026-12-07 02:00:00.000000",
                        "delivered_at": None
                        if delivered_at is None
                        else delivered_at
                        if db.dialect == "postgresql"
                        else "2026-12-07 02:05:00.000000",
                    },
                )
            if db.dialect == "postgresql":
                connection.execute(text("SELECT setval('outbox_id_seq', 3)"))
        db.upgrade()
        assert _states(db) == old
        box = Outbox(db)
        assert [(m.id, m.body, m.attempts) for m in box.pending(limit=10)] == [
            (1, "<Haendelsesbesked>1</Haendelsesbesked>", 0),
            (2, "<Haendelsesbesked>2</Haendelsesbesked>", 2),
        ]
        # A row written after the upgrade gets its state row from the trigger.
        with db.transaction(write_first=True) as connection:
            connection.execute(insert(outbox), [_row(4)])
        with box.claim(limit=10) as claim:
            assert [row.id for row in claim.rows] == [1, 2, 4]
            claim.mark_delivered([1, 4], LATER)
        counts = box.counts()
        assert (counts.pending, counts.delivered, counts.failing) == (1, 3, 1)

        downgrade(db, "0011")
        with db.transaction() as connection:
            back = connection.execute(
                text("SELECT id, state, attempts, last_error FROM outbox ORDER BY id")
            ).all()
        assert [tuple(row) for row in back] == [
            (1, "delivered", 1, None),
            (2, "pending", 2, "SP-430 down"),
            (3, "delivered", 1, None),
            (4, "delivered", 1, None),
        ]
    finally:
        db.dispose()

"""``add_messages``: an integration's messages into the outbox, a known id skipped.

On PostgreSQL a batch with no known id goes by ``COPY`` (the national night's diff phase);
these tests hold both ways to the same result, and to the transaction's error translation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import event, select

from serviceplatform.errors import StorageError
from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox, outbox_state
from serviceplatform.store.outbox import add_messages

CVR = "29189846"
#: 13:00 in Copenhagen's winter is 12:00 UTC: stored as UTC whatever the zone given.
CREATED = datetime(2026, 12, 7, 13, 0, tzinfo=timezone(timedelta(hours=1)))


def messages(count: int) -> list[tuple[str, str]]:
    return [(str(uuid.uuid4()), f"<Haendelsesbesked n='{n}'/>") for n in range(count)]


def add(database: Database, batch: list[tuple[str, str]], topic: str = "beskedfordeler") -> int:
    with database.transaction(write_first=True) as connection:
        return add_messages(connection, batch, topic=topic, authority_cvr=CVR, created_at=CREATED)


def rows(database: Database) -> dict[str, tuple[Any, ...]]:
    """message id -> (body, topic, authority, created_at, state, attempts)."""
    with database.transaction() as connection:
        found = connection.execute(
            select(
                outbox.c.message_id,
                outbox.c.body,
                outbox.c.topic,
                outbox.c.authority_cvr,
                outbox.c.created_at,
                outbox_state.c.state,
                outbox_state.c.attempts,
            ).join(outbox_state, outbox_state.c.id == outbox.c.id)
        ).all()
    return {row[0]: tuple(row[1:]) for row in found}


@contextmanager
def inserts_seen(database: Database) -> Iterator[list[str]]:
    """The INSERT statements SQLAlchemy sends to the database meanwhile."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        statement = args[2]
        if statement.lstrip().upper().startswith("INSERT"):
            seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def test_new_messages_are_written_pending_with_their_shared_columns(database: Database) -> None:
    batch = messages(3)
    assert add(database, batch) == 3
    written = rows(database)
    assert set(written) == {message_id for message_id, _ in batch}
    for message_id, body in batch:
        assert written[message_id] == (
            body,
            "beskedfordeler",
            CVR,
            datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
            "pending",
            0,
        )


def test_a_body_comes_back_byte_for_byte(database: Database) -> None:
    """What ``COPY``'s text format escapes (tab, newline, backslash, a ``\\N``) and Danish
    letters survive either way of writing."""
    body = "<b>\tæøå ÆØÅ\r\n\\N \\.\n</b>"
    message_id = str(uuid.uuid4())
    assert add(database, [(message_id, body)]) == 1
    assert rows(database)[message_id][0] == body


def test_a_known_id_is_skipped_and_not_counted(database: Database) -> None:
    first = messages(3)
    add(database, first)
    again = [(first[0][0], "<changed/>"), (first[2][0], "<changed/>"), *messages(2)]
    assert add(database, again, topic="other") == 2
    written = rows(database)
    assert len(written) == 5
    assert written[first[0][0]][:2] == (first[0][1], "beskedfordeler")
    assert written[first[2][0]][:2] == (first[2][1], "beskedfordeler")


def test_nothing_to_write_writes_nothing(database: Database) -> None:
    assert add(database, []) == 0
    assert rows(database) == {}


def test_postgresql_copies_a_batch_of_new_ids_and_inserts_one_with_a_known_id(
    database: Database,
) -> None:
    """SQLite always INSERTs; PostgreSQL sends a batch with no known id by COPY, which
    SQLAlchemy does not see, and one with a known id by ``INSERT ... ON CONFLICT``."""
    first = messages(4)
    with inserts_seen(database) as seen:
        add(database, first)
    if database.dialect == "postgresql":
        assert seen == []
    else:
        assert len(seen) == 1 and "ON CONFLICT" in seen[0]
    with inserts_seen(database) as seen:
        assert add(database, [first[0], *messages(1)]) == 1
    assert len(seen) == 1 and "ON CONFLICT" in seen[0]
    assert len(rows(database)) == 5


def test_a_refused_row_is_a_storage_error_and_leaves_nothing(database: Database) -> None:
    """The database refuses a missing body (NOT NULL) on both ways of writing; the driver's
    error reaches the caller translated, and the batch's other rows are rolled back."""
    batch = [*messages(2), (str(uuid.uuid4()), cast(str, None))]
    with pytest.raises(StorageError, match=r"(?i)null"):
        add(database, batch)
    assert rows(database) == {}


def test_a_naive_time_is_refused(database: Database) -> None:
    with database.transaction(write_first=True) as connection, pytest.raises(ValueError):
        add_messages(
            connection,
            messages(1),
            topic="t",
            authority_cvr=CVR,
            created_at=CREATED.replace(tzinfo=None),
        )

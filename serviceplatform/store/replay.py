"""The database-backed replay cache: one MessageID table shared by every process.

``remember`` is a single statement, ``INSERT ... ON CONFLICT (message_id) DO UPDATE ... WHERE
the stored row has expired RETURNING message_id``, on both SQLite and PostgreSQL. The database
decides atomically: a new MessageID is inserted, an expired one is taken over, a live one
makes the statement return no row and the message is refused. Two processes racing with the
same MessageID therefore never both succeed (PostgreSQL re-checks the WHERE clause against the
winner's committed row; SQLite runs writers one at a time).

The statement is its own transaction, run as a prepared statement on the DBAPI connection
(``Database.run``): it is on the path of every call. With a ``VersionHandoff`` its
``RETURNING`` also reads the routing version (a scalar subquery, same statement), which the
call's routing then uses instead of a SELECT of its own (``store/routing_cache.py``).

Expired rows are deleted now and then (every ``purge_every`` calls per process) so the table
stays small; correctness never depends on that purge.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from serviceplatform.store.db import Database
from serviceplatform.store.models import MESSAGE_ID_LEN, replay_cache, routing_version
from serviceplatform.store.repository import VERSION_ROW
from serviceplatform.store.routing_cache import VersionHandoff


def storage_key(message_id: str) -> str:
    """The MessageID itself, or its SHA-256 when it does not fit the column."""
    if len(message_id) <= MESSAGE_ID_LEN:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()


class DbReplayCache:
    """A :class:`~serviceplatform.security.replay.ReplayCache` in the platform's database."""

    def __init__(
        self, db: Database, *, purge_every: int = 1000, handoff: VersionHandoff | None = None
    ) -> None:
        self._db = db
        self._handoff = handoff
        self._purge_every = max(1, purge_every)
        self._calls = 0
        self._lock = threading.Lock()
        insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        statement = insert(replay_cache).values(
            message_id=bindparam("p_message_id"),
            expires_at=bindparam("p_expires_at"),
        )
        returned: list[ColumnElement[Any]] = [replay_cache.c.message_id]
        if handoff is not None:
            version = select(routing_version.c.version).where(
                routing_version.c.id == bindparam("p_id")
            )
            returned.append(version.scalar_subquery())
        self._statement = db.prepare(
            statement.on_conflict_do_update(
                index_elements=[replay_cache.c.message_id],
                set_={"expires_at": statement.excluded.expires_at},
                where=replay_cache.c.expires_at <= bindparam("p_now"),
            ).returning(*returned)
        )

    def remember(self, message_id: str, expires_at: datetime, now: datetime) -> bool:
        """Record ``message_id`` until ``expires_at``; False if it is recorded and not expired.

        Raises :class:`~serviceplatform.errors.StorageError` when the database fails.
        """
        values = {"p_message_id": storage_key(message_id), "p_expires_at": expires_at, "p_now": now}
        if self._handoff is not None:
            values.update(VERSION_ROW)
        rows = self._db.run(self._statement, values, write=True)
        accepted = bool(rows)
        if accepted and self._handoff is not None:
            version = rows[0][1]
            self._handoff.offer(message_id, int(version) if version is not None else None)
        if self._due_for_purge():
            self.purge(now)
        return accepted

    def purge(self, now: datetime) -> int:
        """Delete every expired MessageID; returns how many were deleted."""
        with self._db.transaction(write_first=True) as connection:
            result = connection.execute(
                delete(replay_cache).where(replay_cache.c.expires_at <= now)
            )
            return result.rowcount

    def _due_for_purge(self) -> bool:
        with self._lock:
            self._calls += 1
            return self._calls % self._purge_every == 0

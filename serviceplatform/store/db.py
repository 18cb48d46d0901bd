"""The database handle: one engine per process, sessions, transactions and migrations.

``Database(url)`` accepts SQLite (``sqlite:///path``) and PostgreSQL through psycopg 3
(``postgresql+psycopg://user:password@host/db``). Every SQLAlchemy error that crosses this
module's boundary becomes :class:`~serviceplatform.errors.StorageError`, so the rest of the
platform never sees a library exception.

SQLite is tuned for several processes sharing one file: WAL journal (readers never block the
writer), ``synchronous=NORMAL`` (durable at checkpoints, fast commits), a 5 s busy timeout and
foreign keys on. The driver's own implicit transaction handling is switched off and
SQLAlchemy emits ``BEGIN`` itself, so a transaction really spans every statement in it
(the pysqlite default starts one only at the first INSERT/UPDATE/DELETE).

The few statements every SOAP call runs go through :meth:`Database.run` instead: one
statement, its own transaction, on a DBAPI connection without SQLAlchemy's per-statement
machinery (see :mod:`serviceplatform.store.prepared`). Those connections are kept by
:class:`_RunConnections` rather than SQLAlchemy's pool, whose checkout and return (events,
records, the reset) cost about as much as the statement itself; one whose statement failed
is rolled back or, when the connection is gone, closed; a PostgreSQL connection idle for more
than a second is pinged before use, as the pool's pre-ping would (a busy server never pings).

Commands open the database with :meth:`Database.open_schema`: the schema revision is read
first, and only a database that is behind is migrated (:meth:`Database.upgrade`, under the
writer gate and an advisory lock), so that least-privileged roles, which may not take part in
a migration, open one at the newest revision (docs/deployment.md).
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement

from serviceplatform.config import Settings
from serviceplatform.errors import SchemaNotCurrent, StorageError
from serviceplatform.registry import migration_locations
from serviceplatform.store.prepared import PreparedStatement
from serviceplatform.store.writer_gate import WriterGate

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Execution option: open the SQLite transaction with ``BEGIN IMMEDIATE`` (take the write
#: lock first), for transactions that read and then write.
BEGIN_IMMEDIATE = "sp_begin_immediate"

#: Seconds a PostgreSQL connection of ``run`` may have been idle and be used without a ping.
_PING_AFTER_IDLE: Final = 1.0
#: Idle connections ``run`` keeps per process; more are closed when given back.
_RUN_IDLE_MAX: Final = 8

# Any constant works; it only has to be the same in every process migrating one database.
_MIGRATION_LOCK_ID = zlib.crc32(b"serviceplatform.store.upgrade")


def resolve_url(url: str, base_dir: str | Path) -> str:
    """Make a relative SQLite file path absolute against ``base_dir``; other URLs unchanged."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"invalid database URL: {exc}") from exc
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    path = Path(database)
    if path.is_absolute():
        return url
    return parsed.set(database=str((Path(base_dir) / path).resolve())).render_as_string(
        hide_password=False
    )


def _create_private(path: Path) -> None:
    """Create a new SQLite database file empty and 0600 before SQLite does it (0644 under
    the usual umask): it holds audit records with CPR numbers. SQLite gives its ``-wal`` and
    ``-shm`` files the database file's mode. An existing file is left as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError:
        # No such directory, no permission: SQLite reports it on connect, in its own words.
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # None = autocommit at the driver level; SQLAlchemy's begin event below issues BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # The busy timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class _RunConnections:
    """DBAPI connections for ``Database.run``, taken from SQLAlchemy's pool once and kept.

    Each is made by the engine (so its connect events, the SQLite pragmas, ran) and then
    detached from the pool. Idle ones wait in a LIFO list; list ``pop``/``append`` are atomic,
    so threads need no lock. A forked child never uses (nor closes) its parent's connections,
    and a connection taken before ``close`` is closed when it comes back.
    """

    def __init__(self, engine: Engine, dbapi_error: type[Exception]) -> None:
        self._engine = engine
        self._dbapi_error = dbapi_error
        self._ping = engine.dialect.name != "sqlite"
        self._idle: list[tuple[Any, float, int]] = []
        self._generation = 0
        self._pid = os.getpid()

    def take(self) -> tuple[Any, int]:
        """(a detached pool connection, its generation), alive as far as we know."""
        if self._pid != os.getpid():
            self._idle, self._pid = [], os.getpid()
        while True:
            try:
                connection, since, generation = self._idle.pop()
            except IndexError:
                generation = self._generation
                connection = self._engine.raw_connection()
                connection.detach()
                return connection, generation
            if not self._ping or time.monotonic() - since < _PING_AFTER_IDLE:
                return connection, generation
            if self._alive(connection):
                return connection, generation
            self.discard(connection)

    def give_back(self, connection: Any, generation: int) -> None:
        if generation != self._generation or len(self._idle) >= _RUN_IDLE_MAX:
            self.discard(connection)
        else:
            self._idle.append((connection, time.monotonic(), generation))

    def discard(self, connection: Any) -> None:
        # Detached: really closed. A dead connection may fail to close; it is gone anyway.
        with contextlib.suppress(Exception):
            connection.close()

    def _alive(self, connection: Any) -> bool:
        try:
            self._engine.dialect.do_ping(connection.dbapi_connection)
            connection.dbapi_connection.rollback()  # the ping's SELECT opened a transaction
        except self._dbapi_error:
            return False
        return True

    def close(self) -> None:
        self._generation += 1
        idle, self._idle = self._idle, []
        for connection, _since, _generation in idle:
            self.discard(connection)


@dataclass(frozen=True)
class Migration:
    """What one :meth:`Database.upgrade` did: the schema revision before and after it."""

    #: None: the database had never been migrated (empty).
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def sqlite_folder_problem(file: Path, *, writing: bool = False) -> str | None:
    """What is wrong with the folder of the SQLite database ``file``, if anything: it does
    not exist (the platform creates no folders) or, with ``writing``, it cannot be written
    (the writer gate's lock file and SQLite's ``-wal`` and ``-shm`` files are made there)."""
    folder = file.parent
    if not folder.is_dir():
        return (
            f"the folder of the SQLite database file {file} does not exist: create "
            f"{folder}, or correct database.url"
        )
    if writing and not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"the folder of the SQLite database file {file} cannot be written: "
            f"{folder} (the database needs its lock, -wal and -shm files beside it)"
        )
    return None


class Database:
    """One database: its engine, sessions, Core transactions and schema migrations."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
            self._dialect = parsed.get_backend_name()
            if self._dialect not in ("sqlite", "postgresql"):
                raise StorageError(f"unsupported database {self._dialect!r} (sqlite, postgresql)")
            self._engine = create_engine(parsed, pool_pre_ping=self._dialect != "sqlite")
        except ImportError as exc:
            hint = (
                ": PostgreSQL needs the postgres extra, pip install 'serviceplatform[postgres]'"
                if self._dialect == "postgresql"
                else ""
            )
            raise StorageError(f"cannot open database: {exc}{hint}") from exc
        except ArgumentError as exc:
            raise StorageError(f"cannot open database: {exc}") from exc
        self._gate: WriterGate | None = None
        #: The SQLite database file, None for PostgreSQL and an in-memory database.
        self._file: Path | None = None
        if self._dialect == "sqlite":
            event.listen(self._engine, "connect", _on_sqlite_connect)
            event.listen(self._engine, "begin", _on_sqlite_begin)
            if parsed.database and parsed.database != ":memory:":
                self._file = Path(parsed.database).resolve()
                _create_private(self._file)
                self._gate = WriterGate(self._file)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        # Only where the pool hands out independent connections to one database: an
        # in-memory SQLite database exists once per connection.
        self._run_connections = (
            _RunConnections(self._engine, self._dbapi_error)
            if self._dialect == "postgresql" or self._gate is not None
            else None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The configured database; a relative SQLite path is taken from the settings' dir."""
        return cls(resolve_url(settings.database.url, settings.base_dir))

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

    @property
    def url(self) -> str:
        """The URL with the password hidden, for messages."""
        return self._engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self, *, write_first: bool = False) -> Iterator[Connection]:
        """A Core connection in one transaction: committed on success, else rolled back.

        ``write_first`` takes SQLite's write lock at BEGIN (after queueing at the writer gate,
        see ``writer_gate``); use it for every transaction that writes.
        """
        gate = self._gate.hold() if write_first and self._gate is not None else nullcontext()
        try:
            with gate, self._engine.connect() as connection:
                if write_first:
                    connection.execution_options(**{BEGIN_IMMEDIATE: True})
                with connection.begin():
                    yield connection
        except SQLAlchemyError as exc:
            raise StorageError(self._open_failure(exc)) from exc
        except OSError as exc:  # the gate's lock file
            raise StorageError(self._lock_failure(exc)) from exc

    def _open_failure(self, exc: Exception) -> str:
        # SQLite in WAL mode makes its -shm file beside the database even to read, so a
        # folder it cannot write is why it cannot open (OperationalError "unable to open").
        connecting = isinstance(exc, OperationalError | self._dbapi_error)
        return self._folder_problem(writing=connecting) or describe_database_error(exc)

    def _folder_problem(self, *, writing: bool) -> str | None:
        """What is wrong with the folder of the SQLite database file, if anything.

        A missing folder makes SQLite and the writer gate fail with their own words ("unable
        to open database file", "the writer lock failed: No such file or directory") that do
        not say where to look. ``writing``: a folder that cannot be written is a problem too
        (the gate's lock file, SQLite's ``-wal`` and ``-shm`` files are made there).
        """
        return None if self._file is None else sqlite_folder_problem(self._file, writing=writing)

    def _lock_failure(self, exc: OSError) -> str:
        return self._folder_problem(writing=True) or f"the database writer lock failed: {exc}"

    def prepare(self, statement: ClauseElement) -> PreparedStatement:
        """``statement`` compiled for this database, to be run with :meth:`run`."""
        return PreparedStatement(statement, self._engine.dialect)

    def run(
        self, statement: PreparedStatement, values: Mapping[str, Any], *, write: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run one prepared statement as a transaction of its own; returns its rows, if any.

        ``write`` queues at the writer gate first (SQLite), as ``transaction(write_first=True)``
        does. A single statement needs no ``BEGIN IMMEDIATE``: SQLite takes the write lock
        when the statement starts, so it cannot fail to upgrade a read lock. Raises
        :class:`~serviceplatform.errors.StorageError` on any failure; the statement then
        changed nothing.
        """
        try:
            parameters = statement.parameters(values)
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{type(exc).__name__}: {exc}") from exc
        try:
            if write and self._gate is not None:
                with self._gate.hold():
                    return self._run(statement.sql, parameters)
            return self._run(statement.sql, parameters)
        except SQLAlchemyError as exc:  # the pool: connecting, pre-ping
            raise StorageError(self._open_failure(exc)) from exc
        except self._dbapi_error as exc:  # a kept connection's first connect, unwrapped
            raise StorageError(self._open_failure(exc)) from exc
        except OSError as exc:  # the gate's lock file
            raise StorageError(self._lock_failure(exc)) from exc

    def _run(self, sql: str, parameters: Any) -> list[tuple[Any, ...]]:
        if self._run_connections is not None:
            return self._run_kept(self._run_connections, sql, parameters)
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, parameters)
                # Fetching every row ends the statement, which on SQLite (autocommit at the
                # driver level) commits it before the writer gate is released.
                rows = cursor.fetchall() if cursor.description is not None else []
                if self._dialect != "sqlite":
                    connection.commit()
            except self._dbapi_error as exc:
                dbapi_connection = connection.dbapi_connection
                if self._engine.dialect.is_disconnect(exc, dbapi_connection, cursor):  # type: ignore[arg-type]
                    connection.invalidate(exc)
                else:
                    connection.rollback()
                raise StorageError(describe_database_error(exc)) from exc
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool
        return [tuple(row) for row in rows]

    def _run_kept(self, kept: _RunConnections, sql: str, parameters: Any) -> list[tuple[Any, ...]]:
        connection, generation = kept.take()
        dbapi_connection = connection.dbapi_connection
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(sql, parameters)
                # Fetching every row ends the statement, which on SQLite (autocommit at the
                # driver level) commits it before the writer gate is released.
                rows = cursor.fetchall() if cursor.description is not None else []
                if self._dialect != "sqlite":
                    dbapi_connection.commit()
            finally:
                cursor.close()
        except self._dbapi_error as exc:
            if self._engine.dialect.is_disconnect(exc, dbapi_connection, None):  # type: ignore[arg-type]
                kept.discard(connection)
            else:
                try:
                    dbapi_connection.rollback()
                except self._dbapi_error:
                    kept.discard(connection)
                else:
                    kept.give_back(connection, generation)
            raise StorageError(describe_database_error(exc)) from exc
        except BaseException:
            kept.discard(connection)  # interrupted mid-statement: its state is unknown
            raise
        kept.give_back(connection, generation)
        return [tuple(row) for row in rows]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in one transaction: committed on success, else rolled back."""
        try:
            with self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(describe_database_error(exc)) from exc

    def upgrade(self, revision: str = "heads") -> Migration:
        """Migrate the schema to ``revision`` (Alembic), safe to run from several processes.

        Returns the revisions before and after, read under the same lock, so the caller can
        say whether this call migrated anything.
        """
        config = alembic_config()
        with self.transaction(write_first=True) as connection:
            if self._dialect == "postgresql":
                # Serialises concurrent upgrades; released at the end of the transaction.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_ID}
                )
            config.attributes["connection"] = connection
            before = _revisions(MigrationContext.configure(connection).get_current_heads())
            try:
                command.upgrade(config, revision)
            except CommandError as exc:
                raise StorageError(f"cannot migrate the database: {exc}") from exc
            after = _revisions(MigrationContext.configure(connection).get_current_heads())
        return Migration(before, after)

    def open_schema(self, *, migrate: bool = True) -> Migration:
        """Make sure the schema is at this version's revision before a command uses it.

        The revision is read first, in a plain read transaction: a database at the newest
        revision is neither written nor locked (no writer gate, no advisory lock), so a
        role that may only read, or only change rows, opens it. A database that is behind
        is migrated (:meth:`upgrade`) when ``migrate``, else refused. Raises
        :class:`~serviceplatform.errors.SchemaNotCurrent` when it is refused, and when the
        migration fails because this role may not change the schema.
        """
        head = migration_head()
        current = self.current_revision()
        if current == head:
            return Migration(current, current)
        if not migrate:
            raise SchemaNotCurrent(f"{_schema_state(current, head)}: {UPGRADE_HINT}")
        try:
            return self.upgrade()
        except StorageError as exc:
            if not insufficient_privilege(exc):
                raise
            raise SchemaNotCurrent(
                f"{_schema_state(current, head)} and this database role may not change the "
                f"schema ({exc.detail}): {UPGRADE_HINT}"
            ) from exc

    def current_revision(self) -> str | None:
        """The schema revision the database is at, or None when it was never migrated.

        With an integration's own branch, the heads of every branch, sorted, joined by
        ``", "`` (the form :func:`migration_head` gives).
        """
        with self.transaction() as connection:
            return _revisions(MigrationContext.configure(connection).get_current_heads())

    def dispose(self) -> None:
        """Close every pooled connection (call before forking and at shutdown)."""
        if self._run_connections is not None:
            self._run_connections.close()
        self._engine.dispose()
        if self._gate is not None:
            self._gate.close()


def alembic_config() -> Config:
    """An Alembic configuration for the packaged migrations; no ``alembic.ini`` needed.

    The scripts are the core's (``migrations/versions``) and those of every registered
    integration (``Integration.migrations``), as one revision graph.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    locations = [str(MIGRATIONS_DIR / "versions"), *migration_locations()]
    config.set_main_option("version_locations", os.pathsep.join(locations))
    return config


def migration_head() -> str | None:
    """The newest revision of the packaged migrations (every branch's, as ``current_revision``)."""
    return _migration_head(tuple(migration_locations()))


@cache
def _migration_head(_locations: tuple[str, ...]) -> str | None:
    # Cached per set of locations: a test may register an integration for a while.
    return _revisions(ScriptDirectory.from_config(alembic_config()).get_heads())


#: What to do about a schema that is not at this version's revision.
UPGRADE_HINT = "run `serviceplatform db upgrade` as the database role that owns the schema"

#: PostgreSQL's SQLSTATE insufficient_privilege: no CREATE on the schema, not a table's owner.
_INSUFFICIENT_PRIVILEGE = "42501"


def _schema_state(current: str | None, head: str | None) -> str:
    """Where the schema is against this version's revision, for a message."""
    if current is None:
        return f"the database was never migrated (this version needs revision {head})"
    script = ScriptDirectory.from_config(alembic_config())
    for revision in current.split(", "):
        try:
            known = script.get_revision(revision) is not None
        except CommandError:
            known = False
        if not known:
            return (
                f"the database is at revision {current}, which this version (revision {head}) "
                "does not know: a newer version migrated it"
            )
    return f"the database is at revision {current}, this version needs {head}"


def insufficient_privilege(exc: BaseException) -> bool:
    """Whether the database refused the statement of ``exc`` (SQLAlchemy's error, or the
    StorageError made of it) for want of a privilege."""
    error = exc.__cause__ if isinstance(exc, StorageError) else exc
    original = getattr(error, "orig", None)
    return getattr(original, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE


def _revisions(heads: tuple[str, ...] | list[str]) -> str | None:
    return ", ".join(sorted(heads)) or None


def describe_database_error(exc: Exception) -> str:
    """``exc``'s class and the first line of the driver's message, for an operator to read.

    SQLAlchemy's statement and parameters are left out (they may hold CPRs), and so is its
    link to its own documentation. A driver's own exception is its message, first line only.
    """
    original = getattr(exc, "orig", None)
    message = str(original) if original is not None else str(exc)
    return f"{type(exc).__name__}: {message.strip().splitlines()[0] if message.strip() else ''}"

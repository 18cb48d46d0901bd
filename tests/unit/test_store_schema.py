"""The hand-written migration yields exactly the models' schema; the engine is set up right."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, text

from serviceplatform.config import DatabaseSettings, Settings
from serviceplatform.errors import StorageError
from serviceplatform.store.db import Database, alembic_config, migration_head, resolve_url
from serviceplatform.store.models import Base, ConsumerSystemRecord


def _diff(db: Database, metadata: MetaData) -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_migration_creates_exactly_the_models_schema(database: Database) -> None:
    assert _diff(database, Base.metadata) == []


def test_comparison_would_notice_a_difference(database: Database) -> None:
    # Guards the test above against comparing nothing: an extra table and a changed type show.
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    Table("extra", changed, Column("id", Integer, primary_key=True))
    changed.tables["routes"].c.sysid.type = Integer()
    kinds = {str(d[0][0] if isinstance(d, list) else d[0]) for d in _diff(database, changed)}
    assert "add_table" in kinds
    assert "modify_type" in kinds


def test_sqlite_autoincrement_is_as_in_the_models(tmp_path: Path) -> None:
    """The comparison above cannot see SQLite's AUTOINCREMENT (kept only in the CREATE
    TABLE text): each table has it after the migrations exactly when its model asks for it."""
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        db.upgrade()
        with db.transaction() as connection:
            created: dict[str, str] = {
                name: sql
                for name, sql in connection.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                )
            }
    finally:
        db.dispose()
    wanted = {
        name
        for name, table in Base.metadata.tables.items()
        if table.dialect_options["sqlite"]["autoincrement"]
    }
    assert "subscription_snapshots" in wanted
    assert {name for name, sql in created.items() if "AUTOINCREMENT" in sql} == wanted


def test_database_is_at_head_and_upgrade_is_idempotent(database: Database) -> None:
    head = migration_head()
    assert head == "0015"  # a new migration updates this line on purpose
    assert database.current_revision() == head
    database.upgrade()
    assert database.current_revision() == head


def test_upgrade_works_from_any_working_directory(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "alembic.ini").exists()
    db = Database(database_url)
    try:
        assert db.current_revision() is None
        db.upgrade()
        assert db.current_revision() == migration_head()
    finally:
        db.dispose()


def test_sqlite_connections_are_tuned(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with db.transaction() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        db.dispose()
    # synchronous: 1 is NORMAL.
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
        "foreign_keys": 1,
    }


def test_a_new_sqlite_database_is_owner_only(tmp_path: Path) -> None:
    """It holds CPR numbers: 0600 whatever the umask, and so its WAL files (SQLite gives
    them the database file's mode). An existing file keeps the mode its owner chose."""
    path = tmp_path / "new.sqlite"
    previous = os.umask(0o022)
    try:
        db = Database(f"sqlite:///{path}")
        try:
            db.upgrade()
            with db.transaction() as connection:
                connection.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
                connection.exec_driver_sql("INSERT INTO probe VALUES (1)")
            created = [p for p in tmp_path.iterdir() if p.name.startswith("new.sqlite")]
            assert {p.name for p in created} >= {"new.sqlite", "new.sqlite-wal"}
            for file in created:
                assert oct(file.stat().st_mode & 0o777) == "0o600", file.name
        finally:
            db.dispose()
        existing = tmp_path / "shared.sqlite"
        existing.touch(mode=0o640)
        existing.chmod(0o640)
        Database(f"sqlite:///{existing}").dispose()
        assert oct(existing.stat().st_mode & 0o777) == "0o640"
    finally:
        os.umask(previous)


def test_a_sqlite_file_in_a_missing_folder_is_named_by_every_kind_of_access(
    tmp_path: Path,
) -> None:
    """Writing (the writer gate's lock file), reading (SQLite's connect) and one statement of
    ``run`` all say which folder is missing, not "writer lock" or "unable to open"."""
    file = tmp_path / "gone" / "sp.sqlite"
    db = Database(f"sqlite:///{file}")
    expected = (
        f"the folder of the SQLite database file {file} does not exist: create "
        f"{file.parent}, or correct database.url"
    )
    try:
        for access in (
            lambda: db.upgrade(),
            lambda: db.current_revision(),
            lambda: db.run(db.prepare(text("SELECT 1")), {}),
            lambda: db.run(db.prepare(text("SELECT 1")), {}, write=True),
        ):
            with pytest.raises(StorageError) as caught:
                access()
            assert caught.value.detail == expected
    finally:
        db.dispose()
    assert not file.parent.exists()


def test_transaction_rolls_back_on_error_and_raises_storage_error(database: Database) -> None:
    with database.transaction() as connection:
        connection.execute(text("INSERT INTO replay_cache VALUES ('kept', '2030-01-01 00:00:00')"))
    with pytest.raises(StorageError) as caught, database.transaction() as connection:
        connection.execute(text("DELETE FROM replay_cache"))
        connection.execute(text("SELECT no_such_column FROM replay_cache"))
    assert caught.value.code == "SP-902"
    assert isinstance(caught.value.__cause__, Exception)
    with database.transaction() as connection:
        assert connection.execute(text("SELECT count(*) FROM replay_cache")).scalar() == 1


def _system(uuid: str, name: str) -> ConsumerSystemRecord:
    return ConsumerSystemRecord(
        uuid=uuid, name=name, supplier_cvr="12345674", created_at=datetime.now(UTC)
    )


def test_migration_0008_keeps_systems_and_their_routing_triggers(database_url: str) -> None:
    # A system made before 0008 (matched by subject) survives it without a certificate, and
    # on SQLite the triggers of the table that batch mode rebuilt still bump the version.
    db = Database(database_url)
    try:
        db.upgrade("0007")
        with db.transaction(write_first=True) as connection:
            connection.execute(
                text(
                    "INSERT INTO consumer_systems (uuid, name, cert_subject) "
                    "VALUES ('0d7fcabb-3505-4065-a006-d48b1cf50cc2', 'Old', 'CN=old')"
                )
            )
            # An agreement that refers to it: the rebuilt table must keep that reference.
            connection.execute(
                text(
                    "INSERT INTO agreements (uuid, authority_cvr, service, consumer_system, "
                    "supplier, status, created_at, updated_at) VALUES "
                    "('9d3d53a2-af28-4372-9c0a-25550c8d048a', '29189846', 'sf2250', "
                    "'0d7fcabb-3505-4065-a006-d48b1cf50cc2', 'S', 'approved', "
                    ":now, :now)"
                ),
                {"now": datetime.now(UTC)},
            )
        db.upgrade()
        with db.transaction(write_first=True) as connection:
            row = connection.execute(
                text("SELECT name, supplier_cvr, deactivated_at FROM consumer_systems")
            ).one()
            assert tuple(row) == ("Old", "", None)
            before = connection.execute(text("SELECT version FROM routing_version")).scalar_one()
            connection.execute(text("UPDATE consumer_systems SET name = 'Renamed'"))
            after = connection.execute(text("SELECT version FROM routing_version")).scalar_one()
        assert after > before
        assert _diff(db, Base.metadata) == []
        with db.transaction() as connection:
            kept = connection.execute(text("SELECT consumer_system FROM agreements")).scalar()
        assert kept == "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
    finally:
        db.dispose()


def test_session_commits_and_translates_errors(database: Database) -> None:
    with database.session() as session:
        session.add(_system("u1", "one"))
    with pytest.raises(StorageError), database.session() as session:
        session.add(_system("u1", "two"))  # the same primary key
    with database.session() as session:
        assert [r.uuid for r in session.query(ConsumerSystemRecord).all()] == ["u1"]


@pytest.mark.parametrize("url", ["mysql://x/y", "not a url", "sqlite+nosuchdriver:///x"])
def test_bad_urls_raise_storage_error(url: str) -> None:
    with pytest.raises(StorageError):
        Database(url)


def test_postgresql_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # What an installation without the postgres extra meets: psycopg cannot be imported.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StorageError, match=r"pip install 'serviceplatform\[postgres\]'"):
        Database("postgresql+psycopg://u:p@127.0.0.1/db")


def test_relative_sqlite_paths_resolve_against_the_settings_directory(tmp_path: Path) -> None:
    assert (
        resolve_url("sqlite:///db.sqlite", tmp_path)
        == f"sqlite:///{tmp_path.resolve() / 'db.sqlite'}"
    )
    assert resolve_url("sqlite:////abs/db.sqlite", tmp_path) == "sqlite:////abs/db.sqlite"
    assert resolve_url("sqlite:///:memory:", tmp_path) == "sqlite:///:memory:"
    pg = "postgresql+psycopg://u:p@h/db"
    assert resolve_url(pg, tmp_path) == pg
    settings = Settings(
        database=DatabaseSettings(url="sqlite:///data/p.sqlite"), base_dir=str(tmp_path)
    )
    (tmp_path / "data").mkdir()
    db = Database.from_settings(settings)
    try:
        db.upgrade()
    finally:
        db.dispose()
    assert (tmp_path / "data" / "p.sqlite").is_file()


def test_migration_files_live_in_the_package_and_their_integrations() -> None:
    import integrations.oots as oots
    import integrations.sf2250 as sf2250
    import serviceplatform.store as store

    versions = Path(store.__file__).parent / "migrations" / "versions"
    assert (versions.parent / "env.py").is_file()

    def names(directory: Path) -> list[str]:
        return sorted(p.name for p in directory.glob("v*.py"))

    assert names(versions) == [
        "v0001_initial.py",
        "v0003_subscriptions.py",
        "v0004_agreement_events.py",
        "v0006_routing_version.py",
        "v0008_consumer_system_certificates.py",
        "v0009_message_log_indexes.py",
        "v0012_outbox_state.py",
        "v0014_outbox_purge_indexes.py",
        "v0015_check_constraint_names.py",
    ]
    assert names(Path(sf2250.__file__).parent / "migrations") == [
        "v0002_sendings.py",
        "v0010_print_routes.py",
        "v0011_subscription_blocks.py",
        "v0013_snapshot_ids.py",
    ]
    assert names(Path(oots.__file__).parent / "migrations") == [
        "v0005_oots_messages.py",
        "v0007_oots_requests.py",
    ]


def test_the_revision_chain_is_the_one_databases_were_migrated_along() -> None:
    # Moving scripts into the integrations kept every id and link: a database made before
    # (at 0008) lies on the one line to the head, and the chain has one head.
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == ["0015"]
    chain = [(r.revision, r.down_revision) for r in script.walk_revisions()]
    assert chain == [
        ("0015", "0014"),
        ("0014", "0013"),
        ("0013", "0012"),
        ("0012", "0011"),
        ("0011", "0010"),
        ("0010", "0009"),
        ("0009", "0008"),
        ("0008", "0007"),
        ("0007", "0006"),
        ("0006", "0005"),
        ("0005", "0004"),
        ("0004", "0003"),
        ("0003", "0002"),
        ("0002", "0001"),
        ("0001", None),
    ]


def test_concurrent_upgrades_of_one_database_all_succeed(database_url: str) -> None:
    # Several workers starting at once each migrate; the lock makes the later ones no-ops.
    databases = [Database(database_url) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(databases))

    def run(db: Database) -> None:
        barrier.wait()
        try:
            db.upgrade()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in databases]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert {db.current_revision() for db in databases} == {migration_head()}
    finally:
        for db in databases:
            db.dispose()

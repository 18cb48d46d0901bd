"""Every migration goes down and back up, and leaves the constraint names the models declare.

``test_store_schema`` compares columns, types, indexes and unique constraints with the models,
but not the names of CHECK constraints, and never runs a ``downgrade``. Here a fresh database
is taken to the newest revision, then from there to each earlier revision (and to none) and
back; after every upgrade each table's constraint and index names must be what
``Base.metadata.create_all`` gives on the same database, which is what the models declare.

SQLite keeps the names of CHECK constraints only in the ``CREATE TABLE`` text, and renaming one
means rebuilding the table (migration 0015 explains why it does not): there they keep the
doubled names the first migrations gave them (``ck_<table>_ck_<table>_<name>``), and this test
holds them to exactly those.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import CheckConstraint, Connection, create_engine, insert, inspect, select, update

from serviceplatform.cli import cli
from serviceplatform.errors import StorageError
from serviceplatform.registry import import_tables
from serviceplatform.store.db import Database, alembic_config, migration_head
from serviceplatform.store.models import (
    Base,
    agreements,
    audit_records,
    consumer_systems,
    outbox,
    outbox_state,
)
from tests.conftest import postgres_schema
from tests.schema_downgrade import downgrade

# The integrations' tables join Base.metadata, the reference, once their modules are imported.
import_tables()

Names = dict[str, dict[str, Any]]


def _names(connection: Connection) -> Names:
    """Each table's constraint and index names as the database reports them."""
    inspector = inspect(connection)
    names: Names = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        names[table] = {
            "primary": inspector.get_pk_constraint(table)["name"],
            "check": sorted(str(c["name"]) for c in inspector.get_check_constraints(table)),
            "unique": sorted(str(c["name"]) for c in inspector.get_unique_constraints(table)),
            "foreign": sorted(str(c["name"]) for c in inspector.get_foreign_keys(table)),
            # PostgreSQL lists a unique constraint's index too; it is the constraint's.
            "index": sorted(
                str(i["name"])
                for i in inspector.get_indexes(table)
                if "duplicates_constraint" not in i
            ),
        }
    return names


def _sqlite_check_name(table: str, name: str) -> str:
    """The name SQLite keeps for a CHECK the models call ``name`` (see the module's doc)."""
    return f"ck_{table}_{name}"


@pytest.fixture
def model_names(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Names]:
    """The names the models give on the database kind of ``database_url``: ``create_all``
    on an empty database of that kind, reflected the same way."""

    def names_of(url: str) -> Names:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                Base.metadata.create_all(connection)
                return _names(connection)
        finally:
            engine.dispose()

    if database_url.startswith("sqlite"):
        names = names_of(f"sqlite:///{tmp_path / 'models.sqlite'}")
        for table, kinds in names.items():
            kinds["check"] = sorted(_sqlite_check_name(table, n) for n in kinds["check"])
        yield names
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield names_of(url)


def _migrated_names(db: Database) -> Names:
    with db.engine.connect() as connection:
        return _names(connection)


def test_the_models_name_their_checks_by_the_convention(
    database_url: str, model_names: Names
) -> None:
    # Guards the reference itself: the CHECK names come from the naming convention once.
    declared = {
        table.name: sorted(str(c.name) for c in table.constraints if isinstance(c, CheckConstraint))
        for table in Base.metadata.tables.values()
    }
    assert declared["outbox_state"] == ["ck_outbox_state_state"]
    assert declared["subscription_snapshots"] == ["ck_subscription_snapshots_state"]
    sqlite = database_url.startswith("sqlite")
    for table, checks in declared.items():
        wanted = [_sqlite_check_name(table, c) for c in checks] if sqlite else checks
        assert model_names[table]["check"] == wanted, table


def test_an_upgraded_database_has_the_models_names(database_url: str, model_names: Names) -> None:
    db = Database(database_url)
    try:
        db.upgrade()
        assert _migrated_names(db) == model_names
    finally:
        db.dispose()


def _revisions() -> list[str]:
    """Every revision but the newest, newest first, then ``base`` (no schema at all)."""
    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in script.walk_revisions()]
    assert revisions[0] == migration_head()
    return [*revisions[1:], "base"]


def test_each_downgrade_and_the_upgrade_back_keep_the_models_names(
    database_url: str, model_names: Names
) -> None:
    db = Database(database_url)
    try:
        db.upgrade()
        for revision in _revisions():
            downgrade(db, revision)
            db.upgrade()
            assert db.current_revision() == migration_head(), revision
            assert _migrated_names(db) == model_names, f"down to {revision} and up again"
    finally:
        db.dispose()


def test_db_upgrade_renames_the_doubled_names_of_a_deployed_database(
    database_url: str,
    model_names: Names,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database migrated by an earlier version (at 0014, doubled names, rows in the tables
    with CHECKs) is upgraded by ``serviceplatform db upgrade``: its rows stay, its names
    become the models' (SQLite's CHECKs keep theirs), and the CHECKs still refuse what they
    refused."""
    for name in [n for n in os.environ if n.startswith("SP_") and not n.startswith("SP_TEST_")]:
        monkeypatch.delenv(name)
    db = Database(database_url)
    try:
        db.upgrade("0014")
        doubled = _migrated_names(db)["outbox_state"]["check"]
        assert doubled == ["ck_outbox_state_ck_outbox_state_state"]
        with db.transaction(write_first=True) as connection:
            connection.execute(insert(consumer_systems).values(**SYSTEM))
            connection.execute(insert(agreements).values(**AGREEMENT))
            connection.execute(insert(audit_records).values(**AUDIT))
            connection.execute(insert(outbox).values(**OUTBOX))
    finally:
        db.dispose()
    config = tmp_path / "platform.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")

    result = CliRunner().invoke(cli, ["db", "upgrade"], env={"SP_CONFIG": str(config)})

    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(" from 0014 to 0015\n"), result.stdout
    db = Database(database_url)
    try:
        upgraded = _migrated_names(db)
        # db upgrade may make the scheduler's job table too, named by APScheduler.
        upgraded.pop("apscheduler_jobs", None)
        assert upgraded == model_names
        with db.transaction() as connection:
            assert connection.execute(select(agreements.c.status)).scalars().all() == ["approved"]
            assert connection.execute(select(audit_records.c.outcome)).scalars().all() == ["ok"]
            assert connection.execute(select(outbox_state.c.state)).scalars().all() == ["pending"]
        with pytest.raises(StorageError), db.transaction(write_first=True) as connection:
            connection.execute(update(outbox_state).values(state="lost"))
    finally:
        db.dispose()


NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
SYSTEM = {
    "uuid": "11111111-1111-4111-8111-111111111111",
    "name": "Sag",
    "supplier_cvr": "12345678",
    "created_at": NOW,
}
AGREEMENT = {
    "uuid": "22222222-2222-4222-8222-222222222222",
    "authority_cvr": "29189846",
    "service": "sf2250",
    "consumer_system": SYSTEM["uuid"],
    "supplier": "Leverandør",
    "status": "approved",
    "created_at": NOW,
    "updated_at": NOW,
}
AUDIT = {"at": NOW, "service": "sf2250", "outcome": "ok", "latency_ms": 1.0}
OUTBOX = {
    "message_id": "33333333-3333-4333-8333-333333333333",
    "topic": "beskedfordeler",
    "authority_cvr": "29189846",
    "body": "<Haendelsesbesked/>",
    "created_at": NOW,
}

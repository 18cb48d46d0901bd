"""The least-privileged PostgreSQL roles of docs/deployment.md, with real roles on a real server.

A sandbox's settings on a PostgreSQL schema of the test's own, owned by the tests' login (the
schema's owner, which runs ``db upgrade``), with the document's grants for the serving role
(rows only, no CREATE) and the read-only role (SELECT). Every reading command of the command
line runs as the read-only role in a session that may write nothing and waits for no lock: at
the newest revision, opening the database reads the revision and nothing else. A schema that
is behind is never migrated by a reading command, not even the owner's, and a role that may not
migrate stops with one line and exit code 6, having changed nothing. The commands are found
by walking the command line, so a new command must be placed in one of the tables below.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from serviceplatform import scheduling
from serviceplatform.cli import cli
from serviceplatform.config import load_settings
from serviceplatform.registry import scheduled_jobs
from serviceplatform.sandbox.runner import free_port
from serviceplatform.store.db import Database, migration_head
from tests.conftest import postgres_schema
from tests.database_roles import (
    APP_ROLE,
    REPORT_ROLE,
    grant_documented_roles,
    require_roles,
    role_url,
    schema_of,
)
from tests.integration.test_cli_bad_input import (
    AGREEMENT,
    PRINT_AGREEMENT,
    SYSTEM,
    TABLES,
    clone,
    pristine,  # noqa: F401  (the fixture: a work dir the real sandbox made)
    use_database,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

#: The revision before the newest one that creates a table (0012, ``outbox_state``): a schema
#: "behind" is left here, so that the owner's upgrade creates a table after the grants.
BEHIND = "0011"
#: ``Database.upgrade``'s advisory lock (``serviceplatform.store.db``): the same constant.
MIGRATION_LOCK = zlib.crc32(b"serviceplatform.store.upgrade")
#: The read-only role's sessions: any write fails, and any lock wait fails at once.
READ_ONLY_SESSION = "-cdefault_transaction_read_only=on -clock_timeout=1"

#: Every command that only reads, with arguments for the sandbox's sample data.
READERS: list[list[str]] = [
    ["agreements", "list"],
    ["agreements", "show", AGREEMENT],
    ["agreements", "diff", str(TABLES / "agreements.toml")],
    ["systems", "list"],
    ["systems", "show", SYSTEM],
    ["routing", "list"],
    ["routing", "check"],
    ["routing", "diff"],
    ["routing", "export"],
    ["audit", "tail"],
    ["messages", "list"],
    ["messages", "show", "REF"],  # REF: the newest message, found when run
    ["messages", "purge", "--dry-run"],
    ["subscriptions", "status"],
    ["print-route", "show", PRINT_AGREEMENT],
    ["certs", "list"],
    ["certs", "expiring", "--days", "1"],
    ["certs", "show", "platform-register"],
    ["as4", "parties"],
    ["as4", "messages"],
    ["config", "check"],
]
#: The readers above that open no database: settings, files and the certificate store only.
FILE_READERS = {"config check", "routing check", "certs list", "certs expiring", "certs show"}
#: The commands that change state (the serving role's), and those that need no database role
#: of this kind: the owner's ``db upgrade``, the sandbox's own, ``serve`` (test_deployment).
WRITERS = {
    "agreements approve",
    "agreements configure",
    "agreements import",
    "agreements reject",
    "agreements request",
    "agreements resume",
    "agreements revoke",
    "agreements suspend",
    "as4 ping",
    "certs import",
    "certs remove",
    "messages purge",
    "messages resend",
    "print-route set",
    "routing import",
    "routing load",
    "subscriptions deliver",
    "subscriptions run",
    "systems activate",
    "systems add-certificate",
    "systems deactivate",
    "systems register",
    "systems rotate",
}
OTHERS = {"db upgrade", "sandbox", "serve", "token"}


def _leaves(group: click.Group, path: Sequence[str] = ()) -> Iterator[str]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, [*path, name])
        else:
            yield " ".join([*path, name])


def test_every_command_is_a_reader_a_writer_or_neither() -> None:
    readers = {" ".join(args[:2]) for args in READERS}
    assert set(_leaves(cli)) == readers | WRITERS | OTHERS


@dataclass
class Installation:
    """The sandbox's settings on a PostgreSQL schema; the roles chosen by SP_DATABASE__URL."""

    config: Path
    owner: str
    app: str
    report: str

    def run(self, url: str, *args: str) -> Result:
        return CliRunner().invoke(
            cli, [*args, "--config", str(self.config)], env={"SP_DATABASE__URL": url}
        )

    def revision(self) -> str | None:
        database = Database(self.owner)
        try:
            return database.current_revision()
        finally:
            database.dispose()

    def rows(self) -> dict[str, int]:
        """Rows per table: what a refused command must not change."""
        engine = create_engine(self.owner)
        try:
            with engine.connect() as connection:
                names = connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                ).scalars()
                return {
                    name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                    for name in sorted(names)
                }
        finally:
            engine.dispose()


@pytest.fixture
def installation(pristine: Path, tmp_path: Path, postgres_url: str) -> Iterator[Installation]:  # noqa: F811
    require_roles(postgres_url)
    workdir = clone(pristine, tmp_path / "pg")
    with postgres_schema(postgres_url) as owner:
        settings = workdir / "platform.toml"
        use_database(settings, owner)
        yield Installation(
            settings,
            owner,
            role_url(owner, APP_ROLE),
            role_url(owner, REPORT_ROLE, settings=READ_ONLY_SESSION),
        )


def _seed(installation: Installation, url: str) -> None:
    for seed in (["routing", "import"], ["agreements", "import", str(TABLES / "agreements.toml")]):
        result = installation.run(url, *seed)
        assert result.exit_code == 0, result.output


def _newest_ref(installation: Installation) -> str:
    listed = installation.run(installation.report, "messages", "list", "--json")
    assert listed.exit_code == 0, listed.output
    ref: str = json.loads(listed.stdout)["messages"][0]["ref"]
    return ref


def _one_line_schema_error(result: Result, args: Sequence[str]) -> str:
    assert result.exit_code == 6, (args, result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, (args, result.stderr)
    assert lines[0].startswith("error: SP-903 The database schema is not at this version's"), lines
    assert "run `serviceplatform db upgrade` as the database role that owns the schema" in lines[0]
    return lines[0]


def test_at_the_newest_revision_the_serving_role_changes_state_and_the_reader_reads_all(
    installation: Installation,
) -> None:
    # The document's order: the grants, then the owner's first upgrade of the empty database.
    grant_documented_roles(installation.owner)
    upgraded = installation.run(installation.owner, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    # Every table came after the grants: the default privileges give the roles their rights.
    _seed(installation, installation.app)
    suspended = installation.run(
        installation.app, "agreements", "suspend", AGREEMENT, "--reason", "audit"
    )
    assert suspended.exit_code == 0, suspended.output

    ref = _newest_ref(installation)
    holder = create_engine(installation.owner)
    try:
        with holder.connect() as connection:
            # A migration would wait for this lock; the reader's session waits for none.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            problems = []
            for args in READERS:
                args = [ref if arg == "REF" else arg for arg in args]
                result = installation.run(installation.report, *args)
                if result.exit_code != 0 or result.stderr.startswith("error"):
                    problems.append(f"{args}: exit {result.exit_code}: {result.output}")
            connection.execute(text("SELECT pg_advisory_unlock_all()"))
    finally:
        holder.dispose()
    assert not problems, "\n".join(problems)
    # The reader may not change anything itself.
    refused = installation.run(installation.report, "agreements", "resume", AGREEMENT)
    assert refused.exit_code == 1 and "SP-902" in refused.stderr, refused.output


def test_a_schema_behind_is_not_migrated_by_a_reading_command_nor_by_a_role_that_may_not(
    installation: Installation,
) -> None:
    # An installation of an earlier version: its tables get the grants ON ALL TABLES.
    database = Database(installation.owner)
    try:
        database.upgrade(BEHIND)
    finally:
        database.dispose()
    grant_documented_roles(installation.owner)
    rows = installation.rows()

    # A report must not change the schema, whoever runs it: the owner's reader stops too.
    for url in (installation.owner, installation.report):
        for args in READERS:
            if args[1:] == ["show", "REF"]:
                args = ["messages", "show", "call:1"]
            result = installation.run(url, *args)
            if " ".join(args[:2]) in FILE_READERS:
                assert result.exit_code == 0, (args, result.output)
                continue
            line = _one_line_schema_error(result, args)
            assert f"the database is at revision {BEHIND}, this version needs" in line
    # A command that changes state migrates as it always did, when its role may: this one
    # may not, and stops the same way.
    for args in (
        ["agreements", "suspend", AGREEMENT, "--reason", "audit"],
        ["routing", "import"],
        ["db", "upgrade"],
    ):
        line = _one_line_schema_error(installation.run(installation.app, *args), args)
        assert "may not change the schema" in line and "permission denied" in line, line
    assert installation.revision() == BEHIND
    assert installation.rows() == rows

    upgraded = installation.run(installation.owner, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert installation.revision() == migration_head()
    # A table the upgrade created after the grants: the default privileges reach it.
    privileges = create_engine(installation.owner)
    try:
        with privileges.connect() as connection:
            granted = connection.execute(
                text(
                    "SELECT has_table_privilege(:app, 'outbox_state', 'INSERT, UPDATE, DELETE'),"
                    " has_table_privilege(:report, 'outbox_state', 'SELECT'),"
                    " has_table_privilege(:report, 'outbox_state', 'INSERT'),"
                    " has_schema_privilege(:app, current_schema(), 'CREATE')"
                ),
                {"app": APP_ROLE, "report": REPORT_ROLE},
            ).one()
    finally:
        privileges.dispose()
    assert tuple(granted) == (True, True, False, False)
    _seed(installation, installation.app)
    suspended = installation.run(
        installation.app, "agreements", "suspend", AGREEMENT, "--reason", "audit"
    )
    assert suspended.exit_code == 0, suspended.output


def test_serve_as_the_serving_role_stops_in_one_line_until_the_owner_made_the_job_table(
    installation: Installation,
) -> None:
    """The scheduler's job table is APScheduler's, created when it starts: the serving role
    may not create it, so ``db upgrade`` (the owner's) does."""
    database = Database(installation.owner)
    try:
        database.upgrade()  # the schema at the newest revision, but no job table yet
    finally:
        database.dispose()
    grant_documented_roles(installation.owner)
    installation.config.chmod(0o600)  # its URL holds a password: serve refuses it otherwise
    env = {k: v for k, v in os.environ.items() if not k.startswith("SP_")}
    env["SP_DATABASE__URL"] = installation.app
    served = subprocess.run(
        [
            str(Path(sys.executable).parent / "serviceplatform"),
            "serve",
            "--config",
            str(installation.config),
            "--bind",
            f"127.0.0.1:{free_port()}",
            "--workers",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert served.returncode == 6, served.stderr
    errors = [line for line in served.stderr.splitlines() if line.startswith("error")]
    assert errors == [
        "error: SP-903 The database schema is not at this version's revision: the scheduler's "
        "table apscheduler_jobs is missing and this database role may not create it "
        f"(permission denied for schema {schema_of(installation.owner)}): run `serviceplatform "
        "db upgrade` as the database role that owns the schema"
    ], served.stderr
    assert "Traceback" not in served.stderr

    upgraded = installation.run(installation.owner, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "already at the newest schema" in upgraded.stdout
    settings = load_settings(installation.config, {"SP_DATABASE__URL": installation.app})
    scheduler = scheduling.start(settings, scheduled_jobs())
    assert scheduler is not None
    try:
        assert {job.id for job in scheduler.get_jobs()} == {j.id for j in scheduled_jobs()}
    finally:
        scheduler.shutdown(wait=False)


def test_a_sqlite_work_dir_at_the_newest_revision_is_read_while_a_writer_holds_the_lock(
    pristine: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    workdir = clone(pristine, tmp_path / "sb")
    file = workdir / "serviceplatform.sqlite"
    writer = sqlite3.connect(file, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the write lock, as a long nightly holds it
        result = CliRunner().invoke(cli, ["audit", "tail", "--workdir", str(workdir)])
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert result.exit_code == 0, result.output


def test_a_sqlite_work_dir_behind_is_migrated_by_any_command_as_before(tmp_path: Path) -> None:
    settings = tmp_path / "platform.toml"
    file = tmp_path / "platform.sqlite"
    settings.write_text(f'[database]\nurl = "sqlite:///{file}"\n', encoding="utf-8")
    database = Database(f"sqlite:///{file}")
    try:
        database.upgrade(BEHIND)
    finally:
        database.dispose()
    result = CliRunner().invoke(cli, ["audit", "tail", "--config", str(settings)])
    assert result.exit_code == 0, result.output
    migrated = Database(f"sqlite:///{file}")
    try:
        assert migrated.current_revision() == migration_head()
    finally:
        migrated.dispose()

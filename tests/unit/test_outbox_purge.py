"""Delivered outbox messages are purged after ``[distributor] delivered_retention_days``.

On SQLite and PostgreSQL: only delivered rows older than the retention go, with their state
rows; pending ones (failed ones too) stay whatever their age; the batches commit one by one;
the rows are found through the purge's index (migration 0014, also up and down here); the
job is scheduled daily and purges; ``serviceplatform messages purge`` with ``--config`` and
``--workdir``, ``--dry-run``, its progress lines and its exit code on a database failure; the
setting's validation; and ``Outbox.counts`` reading no outbox row when it needs none.
"""

from __future__ import annotations

import getpass
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, insert, inspect, select, update

from serviceplatform import outbox_purge, scheduling
from serviceplatform.cli import cli
from serviceplatform.config import DatabaseSettings, DistributorSettings, Settings, load_settings
from serviceplatform.registry import scheduled_jobs
from serviceplatform.store import outbox as outbox_module
from serviceplatform.store.audit import AuditLog
from serviceplatform.store.db import Database, migration_head
from serviceplatform.store.models import outbox, outbox_state
from serviceplatform.store.outbox import Outbox
from tests.schema_downgrade import downgrade

NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
A, B = "29189846", "29189854"
DAY = timedelta(days=1)


def _add(
    database: Database,
    n: int,
    *,
    state: str = "delivered",
    age: timedelta = timedelta(0),
    attempts: int = 1,
    cvr: str = A,
) -> int:
    """One outbox row created and (if delivered) delivered ``age`` before NOW; its id."""
    with database.transaction(write_first=True) as connection:
        row_id = connection.execute(
            insert(outbox)
            .values(
                message_id=f"00000000-0000-4000-8000-{n:012d}",
                topic="beskedfordeler",
                authority_cvr=cvr,
                body=f"<Haendelsesbesked>{n}</Haendelsesbesked>",
                created_at=NOW - age - DAY,
            )
            .returning(outbox.c.id)
        ).scalar_one()
        connection.execute(
            update(outbox_state)
            .where(outbox_state.c.id == row_id)
            .values(
                state=state,
                attempts=attempts,
                delivered_at=NOW - age if state == "delivered" else None,
                last_error="SP-430 down" if state == "pending" and attempts else None,
            )
        )
    return int(row_id)


def _ids(database: Database) -> tuple[list[int], list[int]]:
    with database.transaction() as connection:
        rows = connection.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().all()
        states = (
            connection.execute(select(outbox_state.c.id).order_by(outbox_state.c.id))
            .scalars()
            .all()
        )
    return list(rows), list(states)


def _url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


def _before_real_now(age: timedelta) -> timedelta:
    """The ``age`` for :func:`_add` of a row delivered ``age`` before the real clock's now.

    The job and the command measure the retention with the real clock, not :data:`NOW`.
    """
    return age - (datetime.now(UTC) - NOW)


def _settings(database: Database, days: int = 14, **extra: Any) -> Settings:
    return Settings(
        database=DatabaseSettings(url=_url(database)),
        distributor=DistributorSettings(delivered_retention_days=days),
        **extra,
    )


def test_only_delivered_rows_past_the_retention_are_deleted(database: Database) -> None:
    old = _add(database, 1, age=15 * DAY)
    just_past = _add(database, 2, age=14 * DAY + timedelta(seconds=1))
    young = _add(database, 3, age=14 * DAY - timedelta(seconds=1))
    recent = _add(database, 4, age=DAY)
    # Pending rows older than anything: never tried, and failing since long ago.
    waiting = _add(database, 5, state="pending", attempts=0, age=400 * DAY)
    failing = _add(database, 6, state="pending", attempts=7, age=400 * DAY)

    assert Outbox(database).purgeable(NOW - 14 * DAY) == 2
    deleted = outbox_purge.purge(_settings(database), database, now=NOW)

    assert deleted == 2
    kept = [young, recent, waiting, failing]
    assert _ids(database) == (kept, kept)
    assert old not in kept and just_past not in kept
    counts = Outbox(database).counts()
    assert (counts.pending, counts.delivered, counts.failing) == (2, 2, 1)
    # Nothing left to purge: a second run (another node's scheduler) deletes nothing.
    assert outbox_purge.purge(_settings(database), database, now=NOW) == 0


def test_retention_zero_deletes_every_delivered_row_and_no_pending_one(
    database: Database,
) -> None:
    _add(database, 1, age=timedelta(seconds=1))
    pending = _add(database, 2, state="pending", attempts=0)
    assert outbox_purge.purge(_settings(database, days=0), database, now=NOW) == 1
    assert _ids(database) == ([pending], [pending])


def test_each_batch_commits_before_the_next_one(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(1, 6):
        _add(database, n, age=30 * DAY)
    kept = _add(database, 6, state="pending", attempts=0, age=30 * DAY)
    monkeypatch.setattr(outbox_module, "PURGE_BATCH_SIZE", 2)
    seen: list[tuple[int, int]] = []

    def after_batch(total: int) -> None:
        # Read on another connection: only a committed batch is gone there.
        seen.append((total, Outbox(database).counts().delivered))

    assert outbox_purge.purge(_settings(database), database, now=NOW, on_batch=after_batch) == 5
    assert seen == [(2, 3), (4, 1), (5, 0)]
    assert _ids(database) == ([kept], [kept])


def _plan(database: Database, statement: str, parameters: Any) -> str:
    with database.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        if database.dialect == "sqlite":
            rows = raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            return " | ".join(str(row[-1]) for row in rows)
        cursor = raw.cursor()
        cursor.execute("SET LOCAL enable_seqscan = off")  # few rows: as with many
        cursor.execute(f"EXPLAIN {statement}", parameters)
        plan = " | ".join(row[0] for row in cursor.fetchall())
        raw.rollback()
        return plan


def test_the_purge_finds_its_rows_through_its_index_and_never_reads_the_outbox(
    database: Database,
) -> None:
    for n in range(1, 4):
        _add(database, n, age=30 * DAY)
    _add(database, 4, state="pending", attempts=0)
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith(("SELECT", "DELETE")):
            seen.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", keep)
    try:
        Outbox(database).purge_delivered(NOW - 14 * DAY)
    finally:
        event.remove(database.engine, "before_cursor_execute", keep)
    selects = [(s, p) for s, p in seen if s.lstrip().startswith("SELECT outbox_state.id")]
    deletes = [(s, p) for s, p in seen if s.lstrip().startswith("DELETE")]
    assert len(selects) == 2 and len(deletes) == 2  # one batch, then nothing found
    plan = _plan(database, *selects[0])
    assert "ix_outbox_state_delivered_at" in plan, plan
    for statement, parameters in deletes:
        plan = _plan(database, statement, parameters)
        # Through an index: no scan of a table, least of all of the outbox with its bodies.
        assert re.search(r"SEARCH outbox|Index Scan|Bitmap Index Scan", plan), plan
        assert not re.search(r"\bSCAN outbox|Seq Scan", plan), plan


def test_counts_read_no_outbox_row_without_a_filter_and_the_index_with_one(
    database: Database,
) -> None:
    _add(database, 1, age=DAY)
    _add(database, 2, age=DAY, cvr=B)
    _add(database, 3, state="pending", attempts=2, cvr=B)
    _add(database, 4, state="pending", attempts=0)
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT"):
            seen.append((statement, parameters))

    box = Outbox(database)
    event.listen(database.engine, "before_cursor_execute", keep)
    try:
        everything = box.counts()
        of_b = box.counts(authority_cvr=B)
        of_topic = box.counts("beskedfordeler")
    finally:
        event.remove(database.engine, "before_cursor_execute", keep)
    assert (everything.pending, everything.delivered, everything.failing) == (2, 2, 1)
    assert everything.pending_by_authority == {A: 1, B: 1}
    assert (of_b.pending, of_b.delivered, of_b.failing) == (1, 1, 1)
    assert of_b.pending_by_authority == {B: 1}
    assert (of_topic.pending, of_topic.delivered) == (2, 2)
    assert box.counts("other").delivered == 0
    unfiltered, filtered = seen[:3], seen[3:]
    totals = [s for s, _ in unfiltered if "GROUP BY outbox_state.state" in s]
    failing = [s for s, _ in unfiltered if "attempts >" in s]
    # The totals and the failing count come from the narrow state table alone.
    assert len(totals) == 1 and len(failing) == 1
    assert not re.search(r"\bFROM outbox\b", totals[0] + failing[0])
    for statement, parameters in filtered:
        if "GROUP BY outbox_state.state" in statement:
            plan = _plan(database, statement, parameters)
            # The outbox side through the index of id, topic and authority, never the rows.
            assert "ix_outbox_id_topic_authority_cvr" in plan, plan


def test_migration_0014_adds_the_indexes_and_takes_them_back(database: Database) -> None:
    def indexes() -> set[str]:
        with database.engine.connect() as connection:
            found = inspect(connection)
            return {
                str(i["name"])
                for table in ("outbox", "outbox_state")
                for i in found.get_indexes(table)
            }

    wanted = {"ix_outbox_state_delivered_at", "ix_outbox_id_topic_authority_cvr"}
    assert wanted <= indexes()
    kept = _add(database, 1, age=30 * DAY)
    downgrade(database, "0013")
    assert not wanted & indexes()
    assert {"ix_outbox_state_pending", "ix_outbox_created_at"} <= indexes()
    database.upgrade()
    assert wanted <= indexes()
    assert database.current_revision() == migration_head()
    # The trigger of 0012 still writes the state of a new row after the round trip.
    new = _add(database, 2, state="pending", attempts=0)
    assert _ids(database) == ([kept, new], [kept, new])


def test_the_purge_is_a_scheduled_daily_job_after_the_night(tmp_path: Path) -> None:
    jobs = {job.id: job for job in scheduled_jobs()}
    assert jobs["outbox-purge-delivered"] is outbox_purge.PURGE_JOB
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'jobs.sqlite'}"),
        base_dir=str(tmp_path),
    )
    scheduler = scheduling.build_scheduler(settings, scheduled_jobs())
    scheduler.start(paused=True)
    try:
        trigger = scheduler.get_job("outbox-purge-delivered").trigger
        winter = trigger.get_next_fire_time(None, datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
        summer = trigger.get_next_fire_time(None, datetime(2026, 7, 10, 12, 0, tzinfo=UTC))
        # 04:30 Danish time, every day: after the 02:00 night.
        assert winter.astimezone(UTC) == datetime(2026, 1, 11, 3, 30, tzinfo=UTC)
        assert summer.astimezone(UTC) == datetime(2026, 7, 11, 2, 30, tzinfo=UTC)
        assert trigger.get_next_fire_time(winter, winter + timedelta(seconds=1)) == winter + DAY
    finally:
        scheduler.shutdown(wait=False)


def test_the_job_purges_with_the_schedulers_settings(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Delivered 15 and 13 days before the real clock's now: the job uses the platform's clock.
    old = _add(database, 1, age=_before_real_now(15 * DAY))
    young = _add(database, 2, age=_before_real_now(13 * DAY))
    monkeypatch.setattr(scheduling, "_settings", _settings(database))
    outbox_purge.purge_job()
    assert _ids(database) == ([young], [young])
    assert old != young


def test_a_failing_job_logs_one_line_and_raises_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "db.sqlite"
    settings = Settings(database=DatabaseSettings(url=f"sqlite:///{missing}"))
    monkeypatch.setattr(scheduling, "_settings", settings)
    outbox_purge.purge_job()
    assert any(
        "purge of delivered outbox messages failed" in r.getMessage() and "SP-902" in r.getMessage()
        for r in caplog.records
    ), caplog.records


def _config(tmp_path: Path, url: str, days: int = 14) -> Path:
    path = tmp_path / "platform.toml"
    path.write_text(
        f"[database]\nurl = '{url}'\n[distributor]\ndelivered_retention_days = {days}\n",
        encoding="utf-8",
    )
    return path


def _run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result


def test_the_command_purges_with_config_and_says_how_many(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(1, 6):
        _add(database, n, age=_before_real_now(20 * DAY))
    pending = _add(database, 6, state="pending", attempts=3, age=_before_real_now(20 * DAY))
    config = _config(tmp_path, _url(database))

    dry = _run("--config", str(config), "messages", "purge", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("would delete 5 delivered outbox messages older than 14 day(s)")
    assert len(_ids(database)[0]) == 6

    monkeypatch.setattr(outbox_module, "PURGE_BATCH_SIZE", 2)
    done = _run("--config", str(config), "messages", "purge")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [done.stdout.splitlines()[0]] and done.stdout.startswith(
        "deleted 5 delivered outbox messages older than 14 day(s)"
    )
    # A progress line per batch but the last.
    assert done.stderr.splitlines() == ["  purging: 2 of 5", "  purging: 4 of 5"]
    assert _ids(database) == ([pending], [pending])
    records = [e for e in AuditLog(database).tail(10) if e.operation == "purge"]
    assert len(records) == 1 and records[0].outcome == "ok"
    assert (records[0].detail or "").startswith(f"cli:{getpass.getuser()}: purge delivered")

    again = _run("--config", str(config), "messages", "purge")
    assert again.exit_code == 0 and again.stdout.startswith("deleted 0 ")


def test_the_command_works_on_a_sandbox_workdir(tmp_path: Path) -> None:
    workdir = tmp_path / "sandbox"
    workdir.mkdir()
    _config(workdir, "sqlite:///platform.sqlite", days=0)
    database = Database(f"sqlite:///{workdir / 'platform.sqlite'}")
    try:
        database.upgrade()
        _add(database, 1, age=timedelta(0))
        pending = _add(database, 2, state="pending", attempts=0)
        result = _run("messages", "purge", "--workdir", str(workdir))
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("deleted 1 delivered outbox messages older than 0 day(s)")
        assert _ids(database) == ([pending], [pending])
    finally:
        database.dispose()


def test_a_database_failure_is_exit_1_with_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'no' / 'such' / 'db.sqlite'}")
    for extra in ([], ["--dry-run"]):
        result = _run("--config", str(config), "messages", "purge", *extra)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: SP-902 ")
        assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-1", "must be 0 or more, not -1"),
        ("1.5", "must be an integer, not a number"),
        ("'14'", "must be an integer, not a string"),
        ("true", "must be an integer, not true or false"),
    ],
)
def test_the_retention_setting_is_validated(tmp_path: Path, value: str, problem: str) -> None:
    path = tmp_path / "platform.toml"
    path.write_text(f"[distributor]\ndelivered_retention_days = {value}\n", encoding="utf-8")
    result = _run("--config", str(path), "config", "check")
    assert result.exit_code == 5
    assert f"setting distributor.delivered_retention_days in {path} {problem}" in result.output


def test_the_retention_defaults_to_14_days_and_may_be_0(tmp_path: Path) -> None:
    path = tmp_path / "platform.toml"
    path.write_text("", encoding="utf-8")
    assert load_settings(path, {}).distributor.delivered_retention_days == 14
    path.write_text("[distributor]\ndelivered_retention_days = 0\n", encoding="utf-8")
    assert load_settings(path, {}).distributor.delivered_retention_days == 0

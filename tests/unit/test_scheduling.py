"""The scheduler: cron time in the configured zone, a persistent job store, clear errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from click.testing import CliRunner
from sqlalchemy.exc import IntegrityError

from integrations.sf2250.settings import SUBSCRIPTIONS, SubscriptionSettings
from serviceplatform import scheduling
from serviceplatform.cli import cli
from serviceplatform.config import DatabaseSettings, SchedulerSettings, Settings, load_settings
from serviceplatform.errors import ConfigurationError, StorageError
from serviceplatform.integration import ScheduledJob
from serviceplatform.registry import scheduled_jobs

JOB = ScheduledJob(
    id="test-nightly",
    func="tests.unit.test_scheduling:noop",
    when=lambda s: (s.section(SUBSCRIPTIONS).run_at, s.section(SUBSCRIPTIONS).timezone),
)


def noop() -> None:
    """The job the tests schedule (never run by them)."""


def settings(tmp_path: Path, *, enabled: bool = True, **subscriptions: object) -> Settings:
    return Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'jobs.sqlite'}"),
        scheduler=SchedulerSettings(enabled=enabled),
        sections={SUBSCRIPTIONS.name: SubscriptionSettings(**subscriptions)},  # type: ignore[arg-type]
        base_dir=str(tmp_path),
    )


def test_the_nightly_job_fires_at_02_danish_time_in_winter_and_summer(tmp_path: Path) -> None:
    scheduler = scheduling.build_scheduler(settings(tmp_path), [JOB])
    scheduler.start(paused=True)
    try:
        trigger = scheduler.get_job("test-nightly").trigger
        winter = trigger.get_next_fire_time(None, datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
        summer = trigger.get_next_fire_time(None, datetime(2026, 7, 10, 12, 0, tzinfo=UTC))
        assert winter.astimezone(UTC) == datetime(2026, 1, 11, 1, 0, tzinfo=UTC)
        assert summer.astimezone(UTC) == datetime(2026, 7, 11, 0, 0, tzinfo=UTC)
    finally:
        scheduler.shutdown(wait=False)


def test_the_job_store_is_persistent(tmp_path: Path) -> None:
    first = scheduling.build_scheduler(settings(tmp_path, run_at="03:30"), [JOB])
    first.start(paused=True)
    first.shutdown(wait=False)
    store = SQLAlchemyJobStore(url=f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    store.start(None, "default")
    try:
        [job] = store.get_all_jobs()
        assert job.id == "test-nightly"
        assert "hour='3'" in str(job.trigger) and "minute='30'" in str(job.trigger)
    finally:
        store.shutdown()


@pytest.mark.parametrize(
    ("run_at", "zone", "problem"),
    [
        ("25:00", "Europe/Copenhagen", "HH:MM"),
        ("2", "Europe/Copenhagen", "HH:MM"),
        ("02:00", "Mars/Olympus", "time zone"),
    ],
)
def test_bad_schedule_settings_are_clear_errors(
    tmp_path: Path, run_at: str, zone: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        scheduling.build_scheduler(settings(tmp_path, run_at=run_at, timezone=zone), [JOB])


def test_disabled_scheduler_starts_nothing(tmp_path: Path) -> None:
    assert scheduling.start(settings(tmp_path, enabled=False), [JOB]) is None


@pytest.mark.parametrize(
    ("text", "enabled"),
    [
        ("", True),
        ("[scheduler]\nenabled = false\n", False),
        # The deprecated spelling in operators' files still turns it off.
        ("[subscriptions]\nscheduler_enabled = false\n", False),
        ("[scheduler]\nenabled = true\n[subscriptions]\nscheduler_enabled = false\n", False),
        ("[subscriptions]\nscheduler_enabled = true\n", True),
    ],
)
def test_the_scheduler_section_and_its_deprecated_alias(
    tmp_path: Path, text: str, enabled: bool
) -> None:
    path = tmp_path / "platform.toml"
    path.write_text(f"[database]\nurl = 'sqlite:///{tmp_path / 'jobs.sqlite'}'\n{text}")
    loaded = load_settings(path, {})
    assert loaded.scheduler.enabled is enabled
    started = scheduling.start(loaded, [JOB])
    assert (started is not None) is enabled
    if started is not None:
        started.shutdown(wait=False)


def test_the_integrations_declare_the_nightly_job_and_its_command() -> None:
    # The core's purge of delivered outbox messages first (tests/unit/test_outbox_purge.py).
    assert [job.id for job in scheduled_jobs()] == [
        "outbox-purge-delivered",
        "sf2250-subscriptions-nightly",
    ]
    result = CliRunner().invoke(cli, ["subscriptions", "--help"])
    assert result.exit_code == 0
    assert "run" in result.output and "status" in result.output and "deliver" in result.output
    run_help = CliRunner().invoke(cli, ["subscriptions", "run", "--help"])
    assert "--authority" in run_help.output and "--date" in run_help.output
    assert "--workdir" in run_help.output


FIRED: list[str] = []


def record() -> None:
    FIRED.append(scheduling.current_settings().section(SUBSCRIPTIONS).run_at)


def test_a_started_scheduler_fires_the_job_with_the_settings(tmp_path: Path) -> None:
    FIRED.clear()
    job = ScheduledJob(id="test-fire", func="tests.unit.test_scheduling:record", when=JOB.when)
    scheduler = scheduling.start(settings(tmp_path, run_at="04:15"), [job])
    assert scheduler is not None
    try:
        scheduler.get_job("test-fire").modify(next_run_time=datetime.now(UTC))
        deadline = time.monotonic() + 10
        while not FIRED and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert FIRED == ["04:15"]


def test_a_job_store_that_fails_to_start_once_is_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two nodes starting on a new PostgreSQL database race to create APScheduler's table; the
    # loser's start fails once with an IntegrityError and must not take the node down.
    real_start = SQLAlchemyJobStore.start
    failures: list[str] = []

    def start_once_failing(self: SQLAlchemyJobStore, *args: object) -> None:
        if not failures:
            failures.append("raised")
            raise IntegrityError("CREATE TABLE apscheduler_jobs", {}, Exception("pg_type"))
        real_start(self, *args)

    monkeypatch.setattr(SQLAlchemyJobStore, "start", start_once_failing)
    scheduler = scheduling.start(settings(tmp_path), [JOB])
    assert scheduler is not None
    try:
        assert failures == ["raised"]
        assert [job.id for job in scheduler.get_jobs()] == ["test-nightly"]
    finally:
        scheduler.shutdown(wait=False)


def test_a_job_store_that_keeps_failing_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_failing(self: SQLAlchemyJobStore, *args: object) -> None:
        raise IntegrityError("CREATE TABLE apscheduler_jobs", {}, Exception("pg_type"))

    monkeypatch.setattr(SQLAlchemyJobStore, "start", always_failing)
    with pytest.raises(StorageError, match="job store") as raised:
        scheduling.start(settings(tmp_path), [JOB])
    # One line an operator reads: the driver's message, not SQLAlchemy's statement, its
    # parameters (which may hold personal data) or its link to its own documentation.
    assert str(raised.value).endswith("the scheduler's job store: IntegrityError: pg_type")
    assert "CREATE TABLE" not in str(raised.value)
    assert "sqlalche.me" not in str(raised.value)

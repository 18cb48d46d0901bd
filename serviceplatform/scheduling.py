"""The platform's scheduler: the daily jobs, at their configured local time.

The jobs are the core's (the purge of delivered outbox messages, ``outbox_purge``) and the
integrations'. APScheduler runs those of ``registry.scheduled_jobs()`` with a cron trigger in
the configured time zone and keeps them in a persistent job store in the platform's database
(table ``apscheduler_jobs``, APScheduler's own), so a job missed while the platform was down
runs when it comes back (within a grace time) instead of being lost. APScheduler creates the
table when it starts; on PostgreSQL ``db upgrade`` creates it first (:func:`create_job_table`),
as the schema's owner, because the nodes' role may not create tables (docs/deployment.md).

Several platform processes or machines may run a scheduler against one database; each fires
the job, and the job's own lease in the database (``store/leases.py``) lets exactly one of
them do the night's work (the purge needs none: a second run finds the rows gone). Jobs
read the settings through :func:`current_settings`, because a persistent job store keeps
only a reference to the function, never its arguments' objects.
"""

from __future__ import annotations

import logging
from datetime import time
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import SQLAlchemyError

from serviceplatform.config import Settings
from serviceplatform.errors import ConfigurationError, SchemaNotCurrent, StorageError
from serviceplatform.integration import ScheduledJob
from serviceplatform.store.db import (
    UPGRADE_HINT,
    Database,
    describe_database_error,
    insufficient_privilege,
    resolve_url,
)

log = logging.getLogger(__name__)

#: A night's job that could not start on time still runs if the platform is back within this.
MISFIRE_GRACE_SECONDS: Final = 6 * 3600
#: Starts of the scheduler before a database error is given up on (see ``start``).
START_ATTEMPTS: Final = 3

_settings: Settings | None = None


def current_settings() -> Settings:
    """The settings of the process's scheduler, for the job functions."""
    if _settings is None:
        raise ConfigurationError("no scheduler runs in this process")
    return _settings


def parse_time(value: str, zone: str) -> tuple[time, ZoneInfo]:
    try:
        hour, minute = (int(part) for part in value.split(":"))
        at = time(hour, minute)
    except ValueError:
        raise ConfigurationError(f"run time {value!r} is not HH:MM") from None
    try:
        return at, ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {zone!r}") from None


def build_scheduler(settings: Settings, jobs: list[ScheduledJob]) -> BackgroundScheduler:
    """A scheduler (not started) with ``jobs`` in the database's persistent job store."""
    url = resolve_url(settings.database.url, settings.base_dir)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    for job in jobs:
        at, zone = parse_time(*job.when(settings))
        scheduler.add_job(
            job.func,
            CronTrigger(hour=at.hour, minute=at.minute, timezone=zone),
            id=job.id,
            name=job.id,
            replace_existing=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
    return scheduler


def create_job_table(database: Database) -> None:
    """Create the job store's table on PostgreSQL unless it is there (``db upgrade`` does).

    APScheduler creates it when it starts, which a serving role that may only change rows
    (docs/deployment.md) may not do: the schema's owner creates it with the schema. SQLite
    has no roles; there the scheduler creates it, as it always did.
    """
    if database.dialect != "postgresql":
        return
    table = SQLAlchemyJobStore(engine=database.engine).jobs_t
    try:
        with database.transaction() as connection:
            table.create(connection, checkfirst=True)
    except StorageError as exc:
        if not insufficient_privilege(exc):
            raise
        raise _job_table_missing(table.name, exc.detail or "") from exc


def _job_table_missing(name: str, reason: str) -> SchemaNotCurrent:
    return SchemaNotCurrent(
        f"the scheduler's table {name} is missing and this database role may not create it "
        f"({reason}): {UPGRADE_HINT}"
    )


def start(settings: Settings, jobs: list[ScheduledJob]) -> BackgroundScheduler | None:
    """Start the scheduler of this process when enabled; None when disabled or no jobs.

    ``[scheduler] enabled`` says whether it runs (``[subscriptions] scheduler_enabled``, its
    deprecated spelling, is folded into it when the settings are loaded).
    """
    global _settings
    if not settings.scheduler.enabled or not jobs:
        return None
    _settings = settings
    for attempt in range(1, START_ATTEMPTS + 1):
        scheduler = build_scheduler(settings, jobs)
        try:
            scheduler.start()
            break
        except SQLAlchemyError as exc:
            if insufficient_privilege(exc):
                # A serving role without CREATE (docs/deployment.md): no attempt would do.
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                raise _job_table_missing("apscheduler_jobs", reason) from exc
            # Nodes started together on a new database all create APScheduler's table; on
            # PostgreSQL all but one CREATE then fail on the catalogue's unique index. The
            # table is there by then, so the next attempt finds it.
            if attempt == START_ATTEMPTS:
                raise StorageError(
                    f"the scheduler's job store: {describe_database_error(exc)}"
                ) from exc
            log.info("the scheduler's job store was busy (%s); starting again", type(exc).__name__)
    for job in scheduler.get_jobs():
        log.info("scheduled %s, next run %s", job.id, job.next_run_time)
    return scheduler

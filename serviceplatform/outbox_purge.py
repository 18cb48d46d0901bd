"""The daily purge of delivered outbox messages past their retention (a core scheduled job).

Delivered messages are kept ``[distributor] delivered_retention_days`` (default 14) after
their delivery, for the message log and the operator; then they are deleted with their state
(``Outbox.purge_delivered``), because their bodies carry CPR numbers and a national night adds
about 60,000 of them. Pending messages, failed ones included, are never deleted.

The scheduler (``serviceplatform.scheduling``) runs :func:`purge_job` every day at
:data:`PURGE_AT` Danish time, after the nightly subscription run has normally delivered its
messages; ``serviceplatform messages purge`` does the same on demand. Each process with a
scheduler runs it: the purge is idempotent, and a second one finds the rows already gone.
The delivery time is stamped with the platform's real clock (the relay's), so the retention
is measured with it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from serviceplatform.config import Settings
from serviceplatform.errors import ServicePlatformError
from serviceplatform.integration import ScheduledJob
from serviceplatform.store.db import Database
from serviceplatform.store.outbox import Outbox

log = logging.getLogger(__name__)

#: When the daily purge runs (local time, zone below): after a night's run and delivery.
PURGE_AT: Final = "04:30"
PURGE_ZONE: Final = "Europe/Copenhagen"


def cutoff(settings: Settings, now: datetime) -> datetime:
    """Rows delivered before this instant are past the retention."""
    return now - timedelta(days=settings.distributor.delivered_retention_days)


def purge(
    settings: Settings,
    database: Database,
    *,
    now: datetime | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete the delivered messages past the retention; how many were deleted."""
    before = cutoff(settings, now if now is not None else datetime.now(UTC))
    return Outbox(database).purge_delivered(before, on_batch=on_batch)


def purge_job() -> None:
    """The scheduled job: purges with the scheduler's settings; never raises into APScheduler.

    A failed purge is one error line; the batches before the failure stay deleted, and the
    next day's run takes the rest.
    """
    from serviceplatform.scheduling import current_settings

    settings = current_settings()
    try:
        database = Database.from_settings(settings)
        try:
            deleted = purge(settings, database)
        finally:
            database.dispose()
    except ServicePlatformError as error:
        log.error("the purge of delivered outbox messages failed: %s %s", error.code, error)
        return
    log.info(
        "outbox: purged %d delivered message(s) older than %d day(s)",
        deleted,
        settings.distributor.delivered_retention_days,
    )


#: The job as the scheduler takes it (``registry.scheduled_jobs``).
PURGE_JOB: Final = ScheduledJob(
    id="outbox-purge-delivered",
    func="serviceplatform.outbox_purge:purge_job",
    when=lambda _settings: (PURGE_AT, PURGE_ZONE),
)

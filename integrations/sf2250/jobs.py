"""The scheduler's entry point for the nightly subscription-list diff."""

from __future__ import annotations

import logging

from integrations.sf2250.errors import JobAlreadyRunning
from integrations.sf2250.nightly import NightlyDiff
from serviceplatform.distribution.factory import distributor_from_settings
from serviceplatform.errors import ServicePlatformError
from serviceplatform.platform import Platform
from serviceplatform.scheduling import current_settings

log = logging.getLogger(__name__)


def nightly_subscriptions() -> None:
    """Run tonight's diff; waits out NemSMS's service window; never raises into APScheduler."""
    settings = current_settings()
    platform = Platform(settings)
    try:
        with distributor_from_settings(settings) as distributor:
            summary = NightlyDiff(platform, distributor).run(wait=True)
        log.info(
            "subscription lists of %s: %d fetched, %d changes, %d delivered, %d pending, %d failed",
            summary.list_date,
            summary.lists_fetched,
            summary.changes,
            summary.relay.delivered,
            summary.pending,
            len(summary.failed),
        )
    except JobAlreadyRunning:
        log.info("another platform process runs tonight's subscription lists")
    except ServicePlatformError as error:
        log.error("the nightly subscription lists failed: %s", error)
    finally:
        platform.close()

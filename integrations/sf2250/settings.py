"""SF2250's own settings section, ``[subscriptions]`` (``INTEGRATION.settings``).

Loaded by the core's settings loader into :class:`SubscriptionSettings`; code reads it with
``settings.section(SUBSCRIPTIONS)``. ``scheduler_enabled`` is the deprecated spelling of
``[scheduler] enabled``: false there still turns the scheduler off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from serviceplatform.config import Settings
from serviceplatform.integration import SettingsSection


@dataclass
class SubscriptionSettings:
    """The nightly NemSMS subscription-list diff (SF2250 section 1.2.2)."""

    #: Local time of the nightly run (``HH:MM``) in ``timezone``.
    run_at: str = "02:00"
    timezone: str = "Europe/Copenhagen"
    #: Deprecated: ``[scheduler] enabled``. False still turns the scheduler off.
    scheduler_enabled: bool = True
    #: Snapshots older than this many days are deleted (a date can be re-run while kept).
    retention_days: int = 14
    #: The UUID of message type "NemSMS tilmelding" in Beskedfordeler.
    message_type_uuid: str = "5a0bb4a4-7c4b-4c59-9d3a-6f3f2b6a1c01"
    #: The platform as registering actor (``RegistreringsAktoer``, ``BeskedAnsvarligAktoer``).
    actor_uuid: str = "d92bb9c2-d826-4028-8fb5-d8b88b4377d4"
    #: Seconds a run's lease lasts without renewal; a crashed run is taken over after it.
    lease_seconds: int = 300
    #: Seconds one attempt at a list reference may wait for the register's answer: the
    #: register snapshots a national list first (seconds at 6 million entries). A single
    #: call's short SLA (``[peers.nemsms]``) is not the night's.
    list_reference_timeout_seconds: float = 60.0
    #: Seconds one attempt at one part of a list may wait.
    list_part_timeout_seconds: float = 30.0
    #: Parts of a list requested ahead of the one being stored (the register prepares them
    #: meanwhile); 1 reads one part at a time.
    list_parts_in_flight: int = 4


def _honour_deprecated_keys(section: SubscriptionSettings, settings: Settings) -> None:
    if not section.scheduler_enabled:
        settings.scheduler.enabled = False


SUBSCRIPTIONS: Final = SettingsSection(
    "subscriptions", SubscriptionSettings, adjust=_honour_deprecated_keys
)

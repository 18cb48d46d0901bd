"""The nightly NemSMS subscription-list diff (SF2250 section 1.2.2), one run per list date.

For every authority with an approved, active SF2250 agreement, the run reads the authority's
subscription list from the register (Register SysID and certificate, in parts), stores it as
that date's snapshot, and commits one ``Haendelsesbesked`` per change into the outbox in the
same transaction as the snapshot (``integrations.sf2250.snapshot_store``). Then the outbox relay
hands the messages to the distributor.

* **One run per night.** A lease in the database (``sf2250-subscriptions:<date>``) lets one
  process run a date; others answer SP-521. A crashed run's lease runs out and the next run
  resumes: authorities already complete for the date are skipped, the others fetched again.
* **Re-running** a completed date changes nothing and sends nothing new (the snapshots are
  complete; message ids are deterministic and the outbox ignores a known id). The register
  serves only the current list, so a past date can be re-run only where a snapshot exists.
* **First night** of an authority: the list is stored as the baseline and no message is sent.
* **Service window.** NemSMS is down Sunday 00:00-04:00 Danish time; a run that would fetch
  then either waits until 04:00 (``wait=True``, the scheduler) or stops with SP-520.
* **Delivery after the lease.** The lease covers fetching and diffing only: it is finished
  once the night's messages are committed to the outbox, and the relay runs after it. A
  second ``subscriptions run`` (which finds the night finished) or a ``subscriptions deliver``
  starting in that gap relays at the same time, and that is harmless: the relay claims each
  batch of rows under a lock (``serviceplatform.relay``, ``Outbox.claim``), so every row is
  handed over by one relay only. Holding the lease through delivery instead would not stop a
  ``deliver`` (which takes no lease) and would keep a crashed relay's night "running".
* **Failures** of one authority (register down mid-fetch, ...) discard that authority's
  partial list, are reported, and leave the date unfinished so the next run retries it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from integrations.sf2250.entry_buffer import EntryBuffer
from integrations.sf2250.errors import (
    JobAlreadyRunning,
    ListDateUnavailable,
    NoNightlyAgreement,
    RegisterServiceWindow,
)
from integrations.sf2250.haendelsesbesked import MessageBuilder, MessageVocabulary
from integrations.sf2250.register_calls import PEER
from integrations.sf2250.settings import SUBSCRIPTIONS
from integrations.sf2250.snapshot_store import Change, SnapshotStore
from integrations.sf2250.subscription_list import ListTimeouts, SubscriptionListClient
from serviceplatform.distribution.base import Distributor
from serviceplatform.errors import ServicePlatformError
from serviceplatform.platform import Platform
from serviceplatform.relay import OutboxRelay, RelayResult
from serviceplatform.routing.model import AgreementStatus
from serviceplatform.store.leases import LeaseStore
from serviceplatform.store.outbox import Outbox

log = logging.getLogger(__name__)

JOB: Final = "sf2250-subscriptions"
TOPIC: Final = "beskedfordeler"
SERVICE_KEY: Final = "sf2250"
REGISTER_ROLE: Final = "register"
DANISH_TIME: Final = ZoneInfo("Europe/Copenhagen")
#: NemSMS's weekly service window: Sunday from 00:00 to 04:00 Danish time.
WINDOW_DAY: Final = 6
WINDOW_ENDS_HOUR: Final = 4


class Progress(Protocol):
    """What a run reports while it works, per authority: fetching the list's parts, then
    storing and diffing its entries (the CLI draws bars or prints lines from it)."""

    def authority(self, cvr: str, parts: int) -> None:
        """Fetching ``cvr``'s list of ``parts`` parts begins."""

    def part(self) -> None:
        """One more part is fetched."""

    def phase(self, cvr: str, name: str, total: int) -> None:
        """``storing`` or ``diffing`` the ``total`` entries fetched begins (minutes at a
        national list: the part bar was full and nothing moved)."""

    def advance(self, entries: int) -> None:
        """``entries`` more entries of the phase are done."""

    def finished(self, result: AuthorityResult) -> None:
        """The authority is done (its outcome, also ``failed``)."""


@dataclass(frozen=True)
class Target:
    authority_cvr: str
    sysid: str
    cert_alias: str


@dataclass
class AuthorityResult:
    authority_cvr: str
    #: ``complete``, ``baseline`` (first night), ``already complete`` or ``failed``.
    outcome: str
    entries: int = 0
    subscribed: int = 0
    unsubscribed: int = 0
    messages: int = 0
    error: str | None = None


@dataclass
class RunSummary:
    list_date: date
    lease: str
    authorities: list[AuthorityResult] = field(default_factory=list)
    relay: RelayResult = field(default_factory=RelayResult)
    pending: int = 0
    waited_until: datetime | None = None

    @property
    def lists_fetched(self) -> int:
        return sum(a.outcome in ("complete", "baseline") for a in self.authorities)

    @property
    def failed(self) -> list[AuthorityResult]:
        return [a for a in self.authorities if a.outcome == "failed"]

    @property
    def entries(self) -> int:
        return sum(a.entries for a in self.authorities)

    @property
    def changes(self) -> int:
        return sum(a.subscribed + a.unsubscribed for a in self.authorities)


def danish_date(now: datetime) -> date:
    return now.astimezone(DANISH_TIME).date()


def service_window_end(now: datetime) -> datetime | None:
    """When NemSMS's service window ends, if ``now`` is inside it; else None."""
    local = now.astimezone(DANISH_TIME)
    if local.weekday() == WINDOW_DAY and local.hour < WINDOW_ENDS_HOUR:
        return local.replace(hour=WINDOW_ENDS_HOUR, minute=0, second=0, microsecond=0)
    return None


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class NightlyDiff:
    def __init__(
        self,
        platform: Platform,
        distributor: Distributor,
        *,
        holder: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.platform = platform
        self.distributor = distributor
        self.holder = holder or default_holder()
        self.sleep = sleep
        settings = platform.settings.section(SUBSCRIPTIONS)
        self.vocabulary = MessageVocabulary.from_settings(settings)
        self.lease_ttl = timedelta(seconds=settings.lease_seconds)
        self.retention = timedelta(days=settings.retention_days)
        self.timeouts = ListTimeouts(
            reference=settings.list_reference_timeout_seconds,
            part=settings.list_part_timeout_seconds,
            parts_in_flight=settings.list_parts_in_flight,
        )
        self.snapshots = SnapshotStore(platform.db)
        self.outbox = Outbox(platform.db)
        self.leases = LeaseStore(platform.db)
        self._lease_renewed = platform.clock()

    # --- what to fetch ------------------------------------------------------------------

    def targets(self, today: date, authority: str | None = None) -> list[Target]:
        """Authorities with an approved SF2250 agreement active today, with their Register."""
        repository = self.platform.routing
        register = {
            route.authority_cvr: route.sysid
            for route in repository.list_routes()
            if route.service == SERVICE_KEY and route.role == REGISTER_ROLE and not route.subject
        }
        found: dict[str, Target] = {}
        for agreement in repository.list_agreements():
            if (
                agreement.service != SERVICE_KEY
                or agreement.status is not AgreementStatus.APPROVED
                or not agreement.active_on(today)
                or (authority is not None and agreement.authority_cvr != authority)
            ):
                continue
            sysid = register.get(agreement.authority_cvr)
            if sysid is None or agreement.register_cert_alias is None:
                log.warning(
                    "authority %s has an SF2250 agreement but no Register SysID or certificate",
                    agreement.authority_cvr,
                )
                continue
            found.setdefault(
                agreement.authority_cvr,
                Target(agreement.authority_cvr, sysid, agreement.register_cert_alias),
            )
        return [found[cvr] for cvr in sorted(found)]

    # --- the run ------------------------------------------------------------------------

    def run(
        self,
        *,
        list_date: date | None = None,
        authority: str | None = None,
        deliver: bool = True,
        wait: bool = False,
        progress: Progress | None = None,
    ) -> RunSummary:
        now = self.platform.business_clock()
        today = danish_date(now)
        list_date = list_date or today
        if list_date > today:
            raise ListDateUnavailable(f"{list_date} is in the future")
        # One authority's target is read before the lease: a run for an authority without an
        # agreement leaves no row. Every authority's are read once the lease is taken.
        targets = self.targets(today, authority) if authority is not None else None
        if authority is not None and not targets:
            raise NoNightlyAgreement(
                f"authority {authority} (agreements list --authority {authority} shows why)"
            )
        name = f"{JOB}:{list_date.isoformat()}" + (f":{authority}" if authority else "")
        outcome = self.leases.acquire(name, self.holder, self.platform.clock(), self.lease_ttl)
        if outcome == "held":
            raise JobAlreadyRunning(name)
        summary = RunSummary(list_date=list_date, lease=outcome)
        if outcome != "finished":
            done = False
            try:
                if targets is None:
                    targets = self.targets(today)
                self._fetch_all(summary, today, targets, wait, progress, name)
                done = not summary.failed
            finally:
                # Only a night without failures is finished; any other end lets a later run
                # take the lease at once and resume.
                if done:
                    self.leases.finish(name, self.holder, self.platform.clock())
                else:
                    self.leases.release(name, self.holder, self.platform.clock())
        if deliver:
            summary.relay = self.deliver()
        summary.pending = self.outbox.counts(TOPIC).pending
        self.snapshots.purge(today - self.retention)
        return summary

    def deliver(self, on_delivered: Callable[[int], None] | None = None) -> RelayResult:
        relay = OutboxRelay(
            self.outbox,
            self.distributor,
            clock=self.platform.clock,
            topic=TOPIC,
            batch_size=self.platform.settings.distributor.relay_batch_size(),
        )
        return relay.run(on_delivered=on_delivered)

    def _fetch_all(
        self,
        summary: RunSummary,
        today: date,
        targets: list[Target],
        wait: bool,
        progress: Progress | None,
        lease_name: str,
    ) -> None:
        todo: list[Target] = []
        for target in targets:
            existing = self.snapshots.get(target.authority_cvr, summary.list_date)
            if existing is not None and existing.state == "complete":
                summary.authorities.append(
                    AuthorityResult(
                        target.authority_cvr,
                        "already complete",
                        entries=existing.entry_count,
                        subscribed=existing.subscribed_count,
                        unsubscribed=existing.unsubscribed_count,
                    )
                )
            elif summary.list_date != today:
                summary.authorities.append(
                    AuthorityResult(
                        target.authority_cvr,
                        "failed",
                        error=ListDateUnavailable(str(summary.list_date)).error_text,
                    )
                )
            else:
                todo.append(target)
        if todo:
            summary.waited_until = self._respect_service_window(wait)
        self._lease_renewed = self.platform.clock()
        for target in todo:
            summary.authorities.append(
                self._fetch_one(target, summary.list_date, progress, lease_name)
            )
            self.leases.renew(lease_name, self.holder, self.platform.clock(), self.lease_ttl)

    def _respect_service_window(self, wait: bool) -> datetime | None:
        end = service_window_end(self.platform.business_clock())
        if end is None:
            return None
        if not wait:
            raise RegisterServiceWindow(f"it ends at {end:%H:%M} Danish time")
        seconds = (end - self.platform.business_clock()).total_seconds()
        log.info("NemSMS service window: waiting %.0f s until %s", seconds, end.isoformat())
        self.sleep(max(seconds, 0.0))
        return end

    def _keep_lease(self, lease_name: str) -> None:
        """Renew the night's lease once a third of it has passed: a national list takes long."""
        now = self.platform.clock()
        if now - self._lease_renewed >= self.lease_ttl / 3:
            self.leases.renew(lease_name, self.holder, now, self.lease_ttl)
            self._lease_renewed = now

    def _fetch_one(
        self, target: Target, list_date: date, progress: Progress | None, lease_name: str
    ) -> AuthorityResult:
        client = SubscriptionListClient(
            self.platform.transport(PEER), cert_alias=target.cert_alias, timeouts=self.timeouts
        )
        fetched_at = self.platform.clock()
        snapshot_id: int | None = None
        try:
            reference, parts = client.read(target.sysid)
            if progress is not None:
                progress.authority(target.authority_cvr, reference.parts)
            snapshot_id = self.snapshots.begin(target.authority_cvr, list_date, fetched_at)
            # Held until complete and stored in key order: see entry_buffer.
            entries = EntryBuffer()
            for part in parts:
                entries.extend(part)
                if progress is not None:
                    progress.part()
                self._keep_lease(lease_name)
            advance = progress.advance if progress is not None else None
            if progress is not None:
                progress.phase(target.authority_cvr, "storing", entries.received)
            self.snapshots.add_runs(snapshot_id, entries.runs(), on_stored=advance)
            self._keep_lease(lease_name)
            if progress is not None:
                progress.phase(target.authority_cvr, "diffing", entries.received)
            result = self.snapshots.complete(
                snapshot_id,
                topic=TOPIC,
                message_for=self._message_factory(target.authority_cvr, list_date, fetched_at),
                completed_at=self.platform.clock(),
                on_compared=advance,
            )
        except ServicePlatformError as error:
            if snapshot_id is not None:
                self.snapshots.discard(snapshot_id)
            log.warning("subscription list of %s failed: %s", target.authority_cvr, error)
            failed = AuthorityResult(target.authority_cvr, "failed", error=error.error_text)
            if progress is not None:
                progress.finished(failed)
            return failed
        snapshot = result.snapshot
        done = AuthorityResult(
            target.authority_cvr,
            "baseline" if result.first else "complete",
            entries=snapshot.entry_count,
            subscribed=snapshot.subscribed_count,
            unsubscribed=snapshot.unsubscribed_count,
            messages=result.messages,
        )
        if progress is not None:
            progress.finished(done)
        return done

    def _message_factory(
        self, authority_cvr: str, list_date: date, created_at: datetime
    ) -> Callable[[str, str, Change], tuple[str, str]]:
        return MessageBuilder(
            self.vocabulary,
            authority_cvr=authority_cvr,
            list_date=list_date,
            created_at=created_at,
        )

"""``serviceplatform subscriptions``: run the nightly NemSMS list diff by hand and watch it.

``run`` does what the scheduler does each night, with progress on stderr (bars on a
terminal, else a plain line per phase and at most every 10 s) and a summary on stdout;
``deliver`` only hands pending outbox messages to the distributor; ``status`` shows the last
runs per authority and the pending messages. Exit code 1 when something failed (an
authority's list, or messages left undelivered because the distributor is down).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, TextIO

import click

from serviceplatform.commands.context import CliContext, pass_cli, pass_reader
from serviceplatform.routing.identifiers import is_valid_cvr

if TYPE_CHECKING:
    from integrations.sf2250.nightly import AuthorityResult


class _Bars:
    """Progress on a terminal: a click progress bar per authority and phase, on stderr."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: Any = None

    def _open(self, label: str, length: int) -> None:
        self.close()
        self._bar = click.progressbar(length=max(length, 1), label=label, file=self._stream)
        self._bar.__enter__()
        if length == 0:
            self._bar.update(1)

    def authority(self, cvr: str, parts: int) -> None:
        self._open(f"  {cvr} fetching", parts)

    def part(self) -> None:
        self.advance(1)

    def phase(self, cvr: str, name: str, total: int) -> None:
        self._open(f"  {cvr} {name}", total)

    def advance(self, entries: int) -> None:
        if self._bar is not None:
            self._bar.update(entries)

    def finished(self, result: AuthorityResult) -> None:
        self.close()

    def delivering(self, pending: int) -> None:
        self._open("  delivering", pending)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


class _Lines:
    """Progress without a terminal (a pipe, cron, systemd's journal): plain lines on stderr.

    A line when a phase starts and ends (fetching, storing, diffing per authority; then
    delivering), and in between at most one every ``every`` seconds, with counts, so a log
    shows that a night of a million entries is moving. No bar: its carriage returns and
    escapes would garble the log.
    """

    def __init__(
        self, stream: TextIO, *, every: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._every = every
        self._clock = clock
        self._what: str | None = None
        self._unit = ""
        self._total = 0
        self._done = 0
        self._started = self._said = clock()

    def _say(self, text: str) -> None:
        click.echo(f"  {text}", file=self._stream)
        self._stream.flush()
        self._said = self._clock()

    def _counts(self) -> str:
        return f"{self._done} of {self._total} {self._unit}"

    def _open(self, what: str, total: int, unit: str) -> None:
        self.close()
        self._what, self._unit, self._total, self._done = what, unit, total, 0
        self._started = self._clock()
        self._say(f"{what}: {total} {unit}")

    def _step(self, count: int) -> None:
        self._done += count
        if self._what is not None and self._clock() - self._said >= self._every:
            elapsed = self._clock() - self._started
            self._say(f"{self._what}: {self._counts()} ({elapsed:.0f} s)")

    def authority(self, cvr: str, parts: int) -> None:
        self._open(f"{cvr} fetching", parts, "parts")

    def part(self) -> None:
        self._step(1)

    def phase(self, cvr: str, name: str, total: int) -> None:
        self._open(f"{cvr} {name}", total, "entries")

    def advance(self, entries: int) -> None:
        self._step(entries)

    def finished(self, result: AuthorityResult) -> None:
        self.close()
        self._say(f"{result.authority_cvr} {result.outcome}")

    def delivering(self, pending: int) -> None:
        self._open("delivering", pending, "messages")

    def close(self) -> None:
        if self._what is not None:
            elapsed = self._clock() - self._started
            self._say(f"{self._what} done: {self._counts()} ({elapsed:.0f} s)")
            self._what = None


def _progress() -> _Bars | _Lines:
    """Bars where stderr is a terminal, else plain lines: progress never goes to stdout."""
    stream = sys.stderr
    return _Bars(stream) if stream.isatty() else _Lines(stream)


def _job(obj: CliContext) -> Any:
    from integrations.sf2250.nightly import NightlyDiff
    from serviceplatform.distribution.factory import distributor_from_settings
    from serviceplatform.platform import Platform

    # With --workdir, the sandbox's clock (its ``clock`` hook) is the business clock: a
    # supplier tries night 2 in minutes instead of a day.
    platform = Platform(obj.settings, database=obj.database(), business_clock=obj.business_clock())
    return NightlyDiff(platform, distributor_from_settings(obj.settings))


@click.group()
def subscriptions() -> None:
    """The nightly NemSMS subscription-list diff handed to the message distributor."""


@subscriptions.command()
@click.option("--authority", metavar="CVR", help="Only this authority.")
@click.option(
    "--date",
    "list_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="List date (default: today, Danish time). A past date only where it is stored.",
)
@click.option("--wait", is_flag=True, help="In NemSMS's service window, wait until it ends.")
@click.option("--no-deliver", is_flag=True, help="Leave the messages in the outbox.")
@pass_cli
def run(
    obj: CliContext,
    authority: str | None,
    list_date: Any,
    wait: bool,
    no_deliver: bool,
) -> None:
    """Fetch, diff and hand over the subscription lists now."""
    if authority is not None and not is_valid_cvr(authority):
        raise click.BadParameter(
            f"{authority!r} is not a valid CVR number", param_hint="--authority"
        )
    job = _job(obj)
    progress = _progress()
    day: date | None = list_date.date() if list_date is not None else None
    try:
        summary = job.run(
            list_date=day, authority=authority, deliver=False, wait=wait, progress=progress
        )
    finally:
        progress.close()
    if summary.waited_until is not None:
        click.echo(f"waited for NemSMS's service window to end at {summary.waited_until:%H:%M}")
    if summary.lease == "finished":
        click.echo(f"the run for {summary.list_date} completed before; nothing to fetch")
    for result in summary.authorities:
        line = (
            f"{result.authority_cvr}  {result.outcome:<16} entries {result.entries:>8}  "
            f"+{result.subscribed} -{result.unsubscribed}  messages {result.messages}"
        )
        click.echo(line + (f"  {result.error}" if result.error else ""))
    if not no_deliver:
        progress.delivering(job.outbox.counts("beskedfordeler").pending)
        try:
            relay = job.deliver(on_delivered=progress.advance)
        finally:
            progress.close()
    else:
        relay = None
    pending = job.outbox.counts("beskedfordeler").pending
    click.echo(
        f"{summary.list_date}: lists fetched {summary.lists_fetched}, entries {summary.entries}, "
        f"changes {summary.changes}, messages delivered {relay.delivered if relay else 0}, "
        f"pending {pending}"
    )
    if relay is not None and relay.errors:
        for error in relay.errors[:10]:
            click.echo(f"  distributor: {error}", err=True)
    failed = bool(summary.failed) or (relay is not None and (relay.unavailable or relay.rejected))
    if failed:
        raise click.exceptions.Exit(1)


@subscriptions.command()
@pass_cli
def deliver(obj: CliContext) -> None:
    """Hand the pending outbox messages to the distributor."""
    job = _job(obj)
    relay = job.deliver()
    pending = job.outbox.counts("beskedfordeler").pending
    click.echo(f"delivered {relay.delivered}, rejected {relay.rejected}, pending {pending}")
    for error in relay.errors[:10]:
        click.echo(f"  distributor: {error}", err=True)
    if relay.unavailable or relay.rejected:
        raise click.exceptions.Exit(1)


@subscriptions.command()
@click.option(
    "-n",
    "runs",
    type=click.IntRange(1, 1000),
    default=3,
    show_default=True,
    help="Runs per authority.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_reader
def status(obj: CliContext, runs: int, as_json: bool) -> None:
    """The last runs per authority and the pending outbox messages."""
    from integrations.sf2250.snapshot_store import SnapshotStore
    from serviceplatform.store.outbox import Outbox

    database = obj.database()
    snapshots = SnapshotStore(database).latest(runs)
    counts = Outbox(database).counts("beskedfordeler")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "runs": [
                        {
                            "authority_cvr": s.authority_cvr,
                            "list_date": s.list_date.isoformat(),
                            "state": s.state,
                            "entries": s.entry_count,
                            "subscribed": s.subscribed_count,
                            "unsubscribed": s.unsubscribed_count,
                            "first": s.previous_id is None,
                            "completed_at": s.completed_at.isoformat() if s.completed_at else None,
                        }
                        for s in snapshots
                    ],
                    "outbox": {
                        "pending": counts.pending,
                        "delivered": counts.delivered,
                        "failing": counts.failing,
                        "pending_by_authority": counts.pending_by_authority,
                    },
                },
                indent=2,
            )
        )
        return
    if not snapshots:
        click.echo("no subscription lists stored yet")
    for s in snapshots:
        when = f"{s.completed_at:%Y-%m-%d %H:%M}Z" if s.completed_at else "-"
        click.echo(
            f"{s.authority_cvr}  {s.list_date}  {s.state:<9} entries {s.entry_count:>8}  "
            f"+{s.subscribed_count} -{s.unsubscribed_count}  completed {when}"
            + ("  (baseline)" if s.previous_id is None and s.state == "complete" else "")
        )
    click.echo(
        f"outbox: {counts.pending} pending ({counts.failing} failed at least once), "
        f"{counts.delivered} delivered"
    )
    for cvr, count in sorted(counts.pending_by_authority.items()):
        click.echo(f"  {cvr}: {count} pending")

"""The nightly subscription-list diff end to end: the register over mutual TLS, the database
diff, the outbox and the file-drop distributor.

The platform's business clock (which decides the list date and NemSMS's service window) is a
manual clock; tokens and leases keep real time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from integrations.sf2250 import jobs, nightly
from integrations.sf2250.errors import (
    JobAlreadyRunning,
    ListDateUnavailable,
    NoNightlyAgreement,
    RegisterServiceWindow,
)
from integrations.sf2250.nightly import NightlyDiff, RunSummary
from integrations.sf2250.snapshot_store import Change, SnapshotStore
from serviceplatform import scheduling
from serviceplatform.config import AmqpDistributorSettings
from serviceplatform.distribution.amqp import AmqpDistributor
from serviceplatform.distribution.file_drop import FileDropDistributor
from serviceplatform.platform import Platform
from serviceplatform.sandbox.beskedfordeler import SimulatedBeskedfordeler
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import STS_ISSUER, Pki
from serviceplatform.sandbox.sts_tokens import SandboxStsTokenSource
from serviceplatform.store.db import Database
from serviceplatform.store.leases import LeaseStore
from serviceplatform.store.outbox import Outbox
from tests.conftest import rabbitmqctl
from tests.integration.conftest import RegisterHooks, make_settings, seed

KUVERT = "urn:oio:besked:kuvert:1.0"
SAGDOK = "urn:oio:sagdok:3.0.0"
A, B = "29189846", "29189854"
REGISTER_A, REGISTER_B = "2250001", "2251001"
#: Monday 2026-11-16 02:00 Danish time (01:00 UTC); the tests use the nights up to Thursday.
NIGHT = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Night:
    platform: Platform
    clock: ManualClock
    drop: Path
    hooks: RegisterHooks

    def job(self, holder: str = "test") -> NightlyDiff:
        return NightlyDiff(self.platform, FileDropDistributor(self.drop), holder=holder)

    def run(self, day: int, **options: object) -> RunSummary:
        self.clock.now = NIGHT + timedelta(days=day)
        return self.job().run(**options)  # type: ignore[arg-type]

    def lists(self, a: list[str], b: list[str] | None = None) -> None:
        cpr = [n for n in a if len(n) == 10]
        self.hooks.subscribe(REGISTER_A, cpr=cpr, cvr=[n for n in a if len(n) == 8])
        self.hooks.subscribe(REGISTER_B, cpr=b or [])

    def files(self) -> dict[str, etree._Element]:
        return {p.stem: etree.parse(str(p)).getroot() for p in sorted(self.drop.glob("*.xml"))}


@pytest.fixture()
def night(
    tmp_path: Path, pki: Pki, register: NemSmsRegister, hooks: RegisterHooks
) -> Iterator[Night]:
    settings = make_settings(tmp_path, pki, register.base_url)
    seed(settings)
    clock = ManualClock(NIGHT)
    platform = Platform(settings, business_clock=clock)
    yield Night(platform, clock, tmp_path / "drop", hooks)
    platform.close()


def changes(files: dict[str, etree._Element]) -> set[tuple[str, str]]:
    """(object URN, action) of every dropped message, read from the envelope."""
    found = set()
    for root in files.values():
        registrering = root.find(f".//{{{KUVERT}}}ObjektRegistrering")
        assert registrering is not None
        urn = registrering.findtext(f"{{{KUVERT}}}ObjektId/{{{SAGDOK}}}URNIdentifikator")
        data = root.findtext(".//{*}Handling")
        found.add((urn or "", data or ""))
    return found


def test_first_night_is_a_baseline_then_each_change_is_one_message(night: Night) -> None:
    night.lists(["0101901234", "0202902345", "29189854"], ["0303803456"])
    first = night.run(0)
    assert [(a.authority_cvr, a.outcome, a.entries) for a in first.authorities] == [
        (A, "baseline", 3),
        (B, "baseline", 1),
    ]
    assert night.files() == {}

    night.lists(["0202902345", "0404904567"], ["0303803456"])
    second = night.run(1)
    assert [(a.outcome, a.subscribed, a.unsubscribed) for a in second.authorities] == [
        ("complete", 1, 2),
        ("complete", 0, 0),
    ]
    assert second.relay.delivered == 3 and second.pending == 0
    files = night.files()
    assert changes(files) == {
        ("urn:oio:cpr-nr:0404904567", "tilmeldt"),
        ("urn:oio:cpr-nr:0101901234", "afmeldt"),
        ("urn:oio:cvr-nr:29189854", "afmeldt"),
    }
    for besked_id, root in files.items():
        assert root.findtext(f"{{{KUVERT}}}BeskedId/{{{SAGDOK}}}UUIDIdentifikator") == besked_id
        assert root.findtext(f".//{{{KUVERT}}}ObjektAnsvarligMyndighed/{{*}}URNIdentifikator") == (
            f"urn:oio:cvr-nr:{A}"
        )


class Recorder:
    """A run's progress reports, as (event, ...) tuples, with the entries per phase summed."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def authority(self, cvr: str, parts: int) -> None:
        self.events.append(("fetching", cvr, parts))

    def part(self) -> None:
        self.events.append(("part",))

    def phase(self, cvr: str, name: str, total: int) -> None:
        self.events.append((name, cvr, total))

    def advance(self, entries: int) -> None:
        if self.events and self.events[-1][0] == "advanced":
            entries += int(str(self.events.pop()[1]))
        self.events.append(("advanced", entries))

    def finished(self, result: nightly.AuthorityResult) -> None:
        self.events.append(("finished", result.authority_cvr, result.outcome))


def test_a_run_reports_fetching_storing_and_diffing_with_counts(night: Night) -> None:
    # Storing and diffing were silent: 2 min 17 s at a million entries without a sign.
    night.lists([f"01019{n:05d}" for n in range(2500)], ["0303803456"])
    first = Recorder()
    night.run(0, progress=first)
    night.lists([f"01019{n:05d}" for n in range(1, 2501)], ["0303803456"])
    second = Recorder()
    night.run(1, progress=second)
    for recorder, outcome in ((first, "baseline"), (second, "complete")):
        parts = [e for e in recorder.events if e[0] == "part"]
        rest = [e for e in recorder.events if e[0] != "part"]
        assert rest == [
            ("fetching", A, len(parts) - 1),
            ("storing", A, 2500),
            ("advanced", 2500),
            ("diffing", A, 2500),
            ("advanced", 2500),
            ("finished", A, outcome),
            ("fetching", B, 1),
            ("storing", B, 1),
            ("advanced", 1),
            ("diffing", B, 1),
            ("advanced", 1),
            ("finished", B, "baseline" if outcome == "baseline" else "complete"),
        ]


def test_empty_list_and_a_list_that_shrinks_to_zero(night: Night) -> None:
    night.lists([])
    assert night.run(0).authorities[0].outcome == "baseline"
    assert night.run(1).authorities[0].entries == 0
    assert night.files() == {}
    night.lists(["0101901234", "0202902345"])
    night.run(2)
    night.lists([])
    shrink = night.run(3)
    assert (shrink.authorities[0].entries, shrink.authorities[0].unsubscribed) == (0, 2)
    assert {action for _, action in changes(night.files())} == {"tilmeldt", "afmeldt"}
    assert len(night.files()) == 4


def test_rerunning_a_completed_date_changes_and_sends_nothing(night: Night) -> None:
    night.lists(["0101901234"])
    night.run(0)
    night.lists(["0202902345"])
    night.run(1)
    before = night.files()
    night.hooks.clear()
    again = night.run(1)
    assert again.lease == "finished"
    assert again.relay.delivered == 0
    assert night.hooks.requests() == []
    assert night.files().keys() == before.keys()
    # By authority, a completed date is reported as such and fetched again never.
    by_authority = night.job().run(list_date=(NIGHT + timedelta(days=1)).date(), authority=A)
    assert [a.outcome for a in by_authority.authorities] == ["already complete"]
    assert night.hooks.requests() == []


def test_a_past_date_that_was_never_stored_cannot_be_fetched(night: Night) -> None:
    night.lists(["0101901234"])
    summary = night.job().run(list_date=(NIGHT - timedelta(days=3)).date())
    assert {a.outcome for a in summary.authorities} == {"failed"}
    assert "only today's list" in (summary.authorities[0].error or "")
    assert night.hooks.requests() == []
    with pytest.raises(ListDateUnavailable):
        night.job().run(list_date=(NIGHT + timedelta(days=2)).date())


def test_an_authority_without_an_agreement_is_named_as_such_not_as_a_list_date(
    night: Night,
) -> None:
    """``subscriptions run --authority`` for an authority the night would not run: the error
    says it has no agreement (SP-523), not that the register serves only today's list."""
    night.lists(["0101901234"])
    without = "29189862"  # routed in the sample data, but no agreement
    with pytest.raises(NoNightlyAgreement) as raised:
        night.job().run(authority=without)
    assert raised.value.code == "SP-523"
    assert raised.value.error_text == (
        "The authority has no approved SF2250 agreement active today with a Register SysID and "
        f"an outward certificate: authority {without} (agreements list --authority {without} "
        "shows why)"
    )
    assert night.hooks.requests() == []


def test_the_register_failing_mid_fetch_stores_nothing_and_the_next_run_succeeds(
    tmp_path: Path, pki: Pki, hooks: RegisterHooks, night: Night
) -> None:
    # Ten parts: the fault lands mid-fetch even with parts requested ahead.
    night.lists([f"01019{n:05d}" for n in range(9500)])
    night.run(0)

    class FailAfterFirstPart(Recorder):
        parts = 0

        def authority(self, cvr: str, parts: int) -> None:
            self.parts = 0

        def part(self) -> None:
            self.parts += 1
            if self.parts == 1:
                hooks.fault(503, 20)

    night.lists([f"01019{n:05d}" for n in range(1, 9501)])
    night.clock.now = NIGHT + timedelta(days=1)
    failed = night.job().run(progress=FailAfterFirstPart())
    hooks.fault(503, 0)
    assert [a.outcome for a in failed.authorities] == ["failed", "failed"]
    assert "unavailable" in (failed.authorities[0].error or "")
    store = SnapshotStore(night.platform.db)
    assert store.get(A, (NIGHT + timedelta(days=1)).date()) is None
    assert Outbox(night.platform.db).counts().pending == 0 and night.files() == {}

    retried = night.run(1)
    assert retried.lease == "resumed"
    first = retried.authorities[0]
    assert (first.outcome, first.subscribed, first.unsubscribed) == ("complete", 1, 1)
    assert len(night.files()) == 2


def test_messages_committed_before_a_crash_are_delivered_once_after_restart(
    night: Night,
) -> None:
    night.lists(["0101901234"])
    night.run(0)
    night.lists(["0202902345", "0303803456"])
    committed = night.run(1, deliver=False)
    assert committed.pending == 3 and night.files() == {}
    # The process ends here; a new one (new platform, new distributor) finds the outbox.
    restarted = Platform(night.platform.settings, business_clock=night.clock)
    try:
        job = NightlyDiff(restarted, FileDropDistributor(night.drop), holder="restarted")
        assert job.deliver().delivered == 3
        assert job.deliver().delivered == 0
    finally:
        restarted.close()
    assert len(night.files()) == 3


def test_racing_schedulers_run_the_night_once(night: Night) -> None:
    night.lists(["0101901234"])
    night.run(0)
    night.lists(["0202902345"])
    night.clock.now = NIGHT + timedelta(days=1)
    night.hooks.clear()
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(3)

    def scheduler(holder: str) -> None:
        start.wait()
        try:
            summary = night.job(holder).run()
            outcome = f"ran:{summary.lease}"
        except JobAlreadyRunning:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=scheduler, args=(f"p{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ran = [o for o in outcomes if o == "ran:acquired"]
    assert len(ran) == 1, outcomes
    assert all(o in ("refused", "ran:finished") for o in outcomes if o != "ran:acquired")
    references = [r for r in night.hooks.requests() if r["path"].endswith("/slutbrugerliste")]
    assert len(references) == 2  # one list reference per authority, from one process
    assert len(night.files()) == 2


def test_the_service_window_on_sunday_night_waits_or_refuses(night: Night) -> None:
    night.lists(["0101901234"])
    sunday_2am = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # 02:00 Danish time, Sunday
    night.clock.now = sunday_2am
    with pytest.raises(RegisterServiceWindow, match="04:00"):
        night.job().run()
    assert night.hooks.requests() == []
    slept: list[float] = []
    job = night.job()
    job.sleep = slept.append
    summary = job.run(wait=True)
    assert slept == [7200.0]
    assert summary.waited_until is not None and summary.waited_until.hour == 4
    assert summary.authorities[0].outcome == "baseline"
    night.clock.now = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # 04:00 Danish time
    assert night.job().run(list_date=date(2026, 11, 29)).lease == "finished"


# stop_app stops the broker for every test on the machine: `make test` runs this one alone.
@pytest.mark.serial
def test_rabbitmq_stopped_during_delivery_delays_but_loses_nothing(
    night: Night, rabbitmq_url: str, pki: Pki
) -> None:
    ctl = rabbitmqctl()
    assert ctl is not None, "rabbitmqctl is needed to stop and start the broker"
    exchange = f"SP_TEST_{uuid.uuid4().hex[:12]}"
    night.lists(["0101901234"])
    night.run(0)
    night.lists(["0202902345", "0303803456", "0404904567"])
    assert night.run(1, deliver=False).pending == 4
    settings = AmqpDistributorSettings(
        url=rabbitmq_url,
        exchange=exchange,
        reply_timeout_seconds=5.0,
        connect_timeout_seconds=2.0,
    )
    tokens = SandboxStsTokenSource.from_files(
        pki.sts_key, pki.sts_cert, STS_ISSUER, settings.token_audience
    )
    with (
        SimulatedBeskedfordeler(
            rabbitmq_url, exchange=exchange, trusted_sts_cert=pki.sts_cert, delete_on_stop=True
        ) as beskedfordeler,
        AmqpDistributor(settings, tokens, base_dir=night.drop) as distributor,
    ):
        # One message per batch: the broker stops between two deliveries (a batch is
        # reported to on_delivered only when it is done).
        night.platform.settings.distributor.batch_size = 1
        job = NightlyDiff(night.platform, distributor, holder="amqp")

        def stop_broker_after_the_first(_count: int) -> None:
            if len(beskedfordeler.received) == 1:
                subprocess.run([ctl, "-q", "stop_app"], check=True, timeout=60)

        try:
            first = job.deliver(on_delivered=stop_broker_after_the_first)
        finally:
            subprocess.run([ctl, "-q", "start_app"], check=True, timeout=60)
            subprocess.run([ctl, "-q", "await_startup"], check=True, timeout=60)
        assert (first.delivered, first.unavailable) == (1, True)
        assert job.outbox.counts("beskedfordeler").pending == 3
        assert beskedfordeler.wait_connected(30)
        second = job.deliver()
        assert (second.delivered, second.unavailable) == (3, False)
        ids = [m.besked_id for m in beskedfordeler.received]
        assert len(ids) == 4 and len(set(ids)) == 4
        assert all(m.authority_cvr == A for m in beskedfordeler.received)
    assert job.outbox.counts("beskedfordeler").pending == 0


def test_the_scheduled_entry_point_runs_tonight_and_drops_the_messages(
    tmp_path: Path,
    pki: Pki,
    register: NemSmsRegister,
    hooks: RegisterHooks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(tmp_path, pki, register.base_url)
    settings.distributor.directory = str(tmp_path / "drop")
    seed(settings)
    # Real time here; never wait for a Sunday-night service window inside the suite.
    monkeypatch.setattr(nightly, "service_window_end", lambda now: None)
    today = nightly.danish_date(datetime.now(UTC))
    database = Database(settings.database.url)
    try:
        store = SnapshotStore(database)
        yesterday = store.begin(A, today - timedelta(days=1), datetime.now(UTC))
        store.add(yesterday, [("cpr", "0101901234")])
        store.complete(
            yesterday, topic="beskedfordeler", message_for=_unused, completed_at=datetime.now(UTC)
        )
    finally:
        database.dispose()
    hooks.subscribe(REGISTER_A, cpr=["0202902345"])
    monkeypatch.setattr(scheduling, "_settings", settings)
    jobs.nightly_subscriptions()
    assert len(list((tmp_path / "drop").glob("*.xml"))) == 2
    platform = Platform(settings)
    try:
        snapshot = SnapshotStore(platform.db).get(A, today)
        assert snapshot is not None and snapshot.state == "complete"
        lease = LeaseStore(platform.db).get(f"sf2250-subscriptions:{today.isoformat()}")
        assert lease is not None and lease.finished_at is not None
    finally:
        platform.close()


def _unused(kind: str, number: str, change: Change) -> tuple[str, str]:
    raise AssertionError("a first list has nothing to compare with")


_KILLED_RUN = """
import os, signal, sys
from integrations.sf2250 import nightly
from integrations.sf2250.nightly import NightlyDiff
from serviceplatform.config import load_settings
from serviceplatform.distribution.file_drop import FileDropDistributor
from serviceplatform.platform import Platform

nightly.service_window_end = lambda now: None  # never wait inside the test suite
settings = load_settings(sys.argv[1])
platform = Platform(settings)
summary = NightlyDiff(platform, FileDropDistributor(sys.argv[2]), holder="doomed").run(
    deliver=False
)
print(summary.pending, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no delivery: the process just dies
"""


def test_a_run_killed_after_its_commit_is_delivered_once_after_restart(
    tmp_path: Path, pki: Pki, register: NemSmsRegister, hooks: RegisterHooks
) -> None:
    settings = make_settings(tmp_path, pki, register.base_url)
    seed(settings)
    now = datetime.now(UTC)
    today = nightly.danish_date(now)
    database = Database(settings.database.url)
    try:
        store = SnapshotStore(database)
        yesterday = store.begin(A, today - timedelta(days=1), now)
        store.add(yesterday, [("cpr", "0101901234")])
        store.complete(yesterday, topic="beskedfordeler", message_for=_unused, completed_at=now)
    finally:
        database.dispose()
    hooks.subscribe(REGISTER_A, cpr=["0202902345", "0303803456"])
    config = tmp_path / "platform.toml"
    config.write_text(
        f'[database]\nurl = "{settings.database.url}"\n'
        f'[certificates]\ndirectory = "{settings.certificates.directory}"\n'
        f'[routing]\ndirectory = "{settings.routing.directory}"\n'
        f'[peers.nemsms]\nbase_url = "{register.base_url}"\nca_cert = "{pki.ca_cert}"\n',
        encoding="utf-8",
    )
    drop = tmp_path / "drop"
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, str(config), str(drop)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.strip() == "3"  # two subscribed, one unsubscribed, all pending
    assert not drop.exists() or not list(drop.glob("*.xml"))
    restarted = Platform(settings)
    try:
        job = NightlyDiff(restarted, FileDropDistributor(drop), holder="restarted")
        assert job.deliver().delivered == 3
        assert job.deliver().delivered == 0
        assert job.outbox.counts("beskedfordeler").pending == 0
    finally:
        restarted.close()
    assert len(list(drop.glob("*.xml"))) == 3


def test_default_settings_wait_for_a_register_that_answers_the_reference_after_3_s(
    night: Night,
) -> None:
    # The default [peers.nemsms] read timeout is a SOAP call's 0.5 s; a national list's
    # reference takes the register seconds, and has a timeout of its own.
    assert night.platform.settings.peer("nemsms").read_timeout_seconds < 3
    night.lists(["0101901234"], ["0303803456"])
    night.run(0)
    night.lists(["0202902345"], ["0303803456"])
    night.hooks.clear()
    night.hooks.session.post(
        f"{night.hooks.control_url}/faults",
        json={"status": "delay", "seconds": 3, "count": 1},
        timeout=5,
    ).raise_for_status()
    summary = night.run(1)
    assert [(a.outcome, a.subscribed, a.unsubscribed) for a in summary.authorities] == [
        ("complete", 1, 1),
        ("complete", 0, 0),
    ]
    references = [r for r in night.hooks.requests() if r["path"].endswith("/slutbrugerliste")]
    assert len(references) == 2  # no attempt was abandoned and repeated
    assert summary.relay.delivered == 2


def test_one_authority_failing_leaves_the_other_authoritys_night_complete(night: Night) -> None:
    night.lists(["0101901234"], ["0303803456"])
    night.run(0)
    night.lists(["0202902345"], ["0404904567"])
    # Authority A goes first: every attempt at its list reference fails.
    night.hooks.fault(503, 3)
    summary = night.run(1)
    night.hooks.fault(503, 0)
    assert [(a.authority_cvr, a.outcome) for a in summary.authorities] == [
        (A, "failed"),
        (B, "complete"),
    ]
    assert summary.authorities[1].messages == 2 and summary.relay.delivered == 2
    retried = {a.authority_cvr: a.outcome for a in night.run(1).authorities}
    assert retried == {A: "complete", B: "already complete"}

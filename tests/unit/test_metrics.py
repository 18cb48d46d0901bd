"""Prometheus metrics: per-call counters and histogram, gauges read at scrape time, the
``/metrics`` application, and multiprocess mode as gunicorn's workers use it."""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from integrations.sf2250.snapshot_store import Change, SnapshotStore
from serviceplatform import server
from serviceplatform.call import PlatformCall
from serviceplatform.config import CertificateSettings, Settings
from serviceplatform.errors import (
    CertificateExpired,
    NoAgreement,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from serviceplatform.observability import metrics
from serviceplatform.observability.metrics import metrics_app, observe_call
from serviceplatform.platform import Platform
from serviceplatform.sandbox.pki import (
    PLATFORM_REGISTER_SUBJECT,
    CertificateAuthority,
    Pki,
    ensure_pki,
    issue_certificate,
    load_ca,
)
from serviceplatform.store.db import Database
from serviceplatform.store.outbox import Outbox

PROJECT = Path(__file__).resolve().parents[2]
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
TOPIC = "beskedfordeler"
_MULTIPROC_AT_START = os.environ.get(metrics.MULTIPROC_ENV)


# --- helpers -------------------------------------------------------------------------------


def call(
    service: str,
    operation: str | None = "OpdaterBorgerNemSMS",
    error: Exception | None = None,
    seconds: float = 0.02,
) -> PlatformCall:
    made = PlatformCall(service=service, operation=operation)
    made.started = time.perf_counter() - seconds
    if error is not None:
        made.fail(error)  # type: ignore[arg-type]
    return made


def get(app: Any, method: str = "GET", **environ: str) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    env = {"REQUEST_METHOD": method, "PATH_INFO": "", "wsgi.input": BytesIO(b""), **environ}
    body = b"".join(app(env, start_response))
    return answer["status"], answer["headers"], body


def scrape(app: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    status, headers, body = get(app)
    assert status == "200 OK", body
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: dict[Any, float]) -> set[str]:
    return {name for name, _ in samples}


def make_platform(tmp_path: Path, database: Database, now: datetime = NOW) -> Platform:
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    settings = Settings(
        certificates=CertificateSettings(directory=str(certs)), base_dir=str(tmp_path)
    )
    return Platform(settings, database=database, clock=lambda: now)


@pytest.fixture
def service() -> str:
    """A service name of this test only: the counters are shared by the whole test process."""
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'metrics.sqlite'}")
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def tpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def ca(tpki: Pki) -> CertificateAuthority:
    return load_ca(tpki.ca_cert, tpki.ca_key)


def issue(ca: CertificateAuthority, directory: Path, alias: str, days: float) -> None:
    _, key = issue_certificate(
        ca,
        PLATFORM_REGISTER_SUBJECT,
        not_before=NOW - timedelta(days=400),
        not_after=NOW + timedelta(days=days),
        path_prefix=directory / alias,
    )
    key.chmod(0o600)  # a key readable by others is not usable


# --- per call ------------------------------------------------------------------------------


def test_calls_are_counted_by_service_operation_and_outcome(
    tmp_path: Path, sqlite_db: Database, service: str
) -> None:
    observe_call(call(service, seconds=0.02))
    observe_call(call(service, seconds=0.3))
    observe_call(call(service, error=NoAgreement("no agreement"), seconds=0.001))
    observe_call(call(service, error=UpstreamUnavailable("503", status=503), seconds=1.2))
    observe_call(call(service, operation=None, error=UpstreamTimeout(), seconds=3.0))

    samples = scrape(metrics_app(make_platform(tmp_path, sqlite_db)))
    op = "OpdaterBorgerNemSMS"
    calls = "serviceplatform_calls_total"
    assert value(samples, calls, service=service, operation=op, outcome="ok") == 2
    assert value(samples, calls, service=service, operation=op, outcome="SP-301") == 1
    assert value(samples, calls, service=service, operation=op, outcome="SP-404") == 1
    assert value(samples, calls, service=service, operation="unknown", outcome="SP-402") == 1

    bucket = "serviceplatform_call_duration_seconds_bucket"
    counts = {
        le: value(samples, bucket, service=service, operation=op, le=le)
        for le in ("0.005", "0.025", "0.25", "0.5", "1.0", "1.5", "4.0", "+Inf")
    }
    assert counts == {
        "0.005": 1,
        "0.025": 2,
        "0.25": 2,
        "0.5": 3,
        "1.0": 3,
        "1.5": 4,
        "4.0": 4,
        "+Inf": 4,
    }
    duration_count = "serviceplatform_call_duration_seconds_count"
    assert value(samples, duration_count, service=service, operation=op) == 4
    total = value(
        samples, "serviceplatform_call_duration_seconds_sum", service=service, operation=op
    )
    assert total is not None and 1.5 < total < 1.7

    upstream = "serviceplatform_upstream_errors_total"
    assert value(samples, upstream, service=service, kind="UpstreamUnavailable") == 1
    assert value(samples, upstream, service=service, kind="UpstreamTimeout") == 1
    # Only SP-4xx faults are upstream errors.
    assert not [key for key in samples if key[0] == upstream and ("kind", "NoAgreement") in key[1]]


def test_certificate_faults_are_upstream_errors_too(
    tmp_path: Path, sqlite_db: Database, service: str
) -> None:
    observe_call(call(service, error=CertificateExpired("expired")))
    samples = scrape(metrics_app(make_platform(tmp_path, sqlite_db)))
    upstream = "serviceplatform_upstream_errors_total"
    assert value(samples, upstream, service=service, kind="CertificateExpired") == 1


def test_every_call_of_a_label_set_is_counted_with_its_children_kept(
    tmp_path: Path, sqlite_db: Database, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        observe_call(call(service, seconds=0.02))
    # Past the bound new label sets are still counted, only not kept.
    monkeypatch.setattr(metrics, "_CHILDREN_MAX", len(metrics._children))
    for _ in range(2):
        observe_call(call(service, operation="TilmeldNemSMS", seconds=0.3))
    assert (service, "TilmeldNemSMS", "ok") not in metrics._children

    samples = scrape(metrics_app(make_platform(tmp_path, sqlite_db)))
    calls = "serviceplatform_calls_total"
    count = "serviceplatform_call_duration_seconds_count"
    for operation, expected in (("OpdaterBorgerNemSMS", 3), ("TilmeldNemSMS", 2)):
        assert value(samples, calls, service=service, operation=operation, outcome="ok") == expected
        assert value(samples, count, service=service, operation=operation) == expected


def test_recording_never_raises_and_logs_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, service: str
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("mmap full")

    monkeypatch.setattr(metrics, "_observe_failed", False)
    monkeypatch.setattr(metrics.CALLS, "labels", broken)
    with caplog.at_level(logging.ERROR, logger=metrics.__name__):
        observe_call(call(service))
        observe_call(call(service))
    assert len([r for r in caplog.records if "could not be recorded" in r.message]) == 1


# --- gauges read at scrape time --------------------------------------------------------------


def _message(kind: str, number: str, change: Change) -> tuple[str, str]:
    return (str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{number}/{change}/{time.time_ns()}")), "x")


def _complete(store: SnapshotStore, cvr: str, day: date, entries: list[str], at: datetime) -> None:
    snapshot = store.begin(cvr, day, at)
    store.add(snapshot, [("cpr", number) for number in entries])
    store.complete(snapshot, topic=TOPIC, message_for=_message, completed_at=at)


def test_outbox_and_nightly_gauges(tmp_path: Path, database: Database) -> None:
    store = SnapshotStore(database)
    first, second = NOW - timedelta(days=1, hours=10), NOW - timedelta(hours=10)
    # 29189846: a baseline, then a night with two changes; tonight's fetch is still running.
    _complete(store, "29189846", date(2030, 5, 31), ["0101901234", "0202902345"], first)
    _complete(store, "29189846", date(2030, 6, 1), ["0202902345", "0303803456"], second)
    store.begin("29189846", date(2030, 6, 2), NOW)
    # 29189854: only a first list; 29189862: only an unfinished fetch.
    _complete(store, "29189854", date(2030, 6, 1), ["0404704567"], second)
    store.begin("29189862", date(2030, 6, 1), NOW)
    outbox = Outbox(database)
    pending = outbox.pending(limit=10)
    assert len(pending) == 2
    outbox.mark_failed(pending[0].id, "distributor down")

    samples = scrape(metrics_app(make_platform(tmp_path, database)))

    assert value(samples, "serviceplatform_outbox_pending", topic=TOPIC) == 2
    assert value(samples, "serviceplatform_outbox_failing") == 1
    last_run = "serviceplatform_nightly_last_run_timestamp_seconds"
    assert value(samples, last_run, authority="29189846") == second.timestamp()
    assert value(samples, last_run, authority="29189854") == second.timestamp()
    assert value(samples, last_run, authority="29189862") is None
    changes = "serviceplatform_nightly_last_run_changes"
    assert value(samples, changes, authority="29189846") == 2
    assert value(samples, changes, authority="29189854") == 0

    outbox.mark_delivered([row.id for row in pending], NOW)
    samples = scrape(metrics_app(make_platform(tmp_path, database)))
    assert value(samples, "serviceplatform_outbox_pending", topic=TOPIC) is None
    assert value(samples, "serviceplatform_outbox_failing") == 0


def test_certificate_expiry_days(
    tmp_path: Path, sqlite_db: Database, ca: CertificateAuthority
) -> None:
    platform = make_platform(tmp_path, sqlite_db)
    certs = platform.certificates.directory
    issue(ca, certs, "register", days=200)
    issue(ca, certs, "print", days=10.5)
    issue(ca, certs, "old", days=-3)
    (certs / "broken.crt").write_text("not a certificate")

    samples = scrape(metrics_app(platform))

    expiry = "serviceplatform_certificate_expiry_days"
    assert value(samples, expiry, alias="register") == 200
    assert value(samples, expiry, alias="print") == 10.5
    assert value(samples, expiry, alias="old") == -3
    assert value(samples, expiry, alias="broken") is None
    assert value(samples, "serviceplatform_certificate_earliest_expiry_days") == -3


def test_empty_certificate_store_has_no_earliest_expiry(
    tmp_path: Path, sqlite_db: Database
) -> None:
    samples = scrape(metrics_app(make_platform(tmp_path, sqlite_db)))
    assert "serviceplatform_certificate_earliest_expiry_days" not in names(samples)


def test_a_broken_source_leaves_out_its_metrics_only(
    tmp_path: Path, ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that was never migrated: every query of the outbox and the snapshots fails.
    broken = Database(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        platform = make_platform(tmp_path, broken)
        issue(ca, platform.certificates.directory, "register", days=100)
        app = metrics_app(platform)
        errors = "serviceplatform_metrics_source_errors_total"
        before = scrape(app)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=metrics.__name__):
            samples = scrape(app)
            scrape(app)
    finally:
        broken.dispose()

    assert "serviceplatform_outbox_pending" not in names(samples)
    assert "serviceplatform_nightly_last_run_changes" not in names(samples)
    assert value(samples, "serviceplatform_certificate_expiry_days", alias="register") == 100
    for source in ("outbox", "nightly"):
        # The scrape that failed already counts itself.
        earlier = value(before, errors, source=source) or 0
        assert value(samples, errors, source=source) == earlier + 1
    assert value(samples, errors, source="certificates") in (None, 0)
    # A failing source is logged when it starts failing (in the first scrape), not every scrape.
    assert not [r for r in caplog.records if "cannot be read" in r.message]


def test_failing_source_is_logged_once_and_recovery_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'late.sqlite'}")
    try:
        app = metrics_app(make_platform(tmp_path, db))
        with caplog.at_level(logging.INFO, logger=metrics.__name__):
            scrape(app)
            scrape(app)
            db.upgrade()
            samples = scrape(app)
    finally:
        db.dispose()
    failing = [r for r in caplog.records if "cannot be read" in r.message]
    assert sorted(r.getMessage().split()[2] for r in failing) == ["nightly", "outbox"]
    assert len([r for r in caplog.records if "can be read again" in r.message]) == 2
    assert value(samples, "serviceplatform_outbox_failing") == 0


# --- the application -----------------------------------------------------------------------


def test_metrics_app_methods_and_encoding(tmp_path: Path, sqlite_db: Database) -> None:
    app = metrics_app(make_platform(tmp_path, sqlite_db))
    status, headers, _ = get(app, "POST")
    assert status.startswith("405") and headers["Allow"] == "GET, HEAD"
    status, _, _ = get(app, PATH_INFO="/other")
    assert status.startswith("404")
    status, headers, body = get(app, "HEAD")
    assert status == "200 OK" and body == b"" and int(headers["Content-Length"]) > 0
    status, headers, body = get(app, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert headers["Content-Encoding"] == "gzip"
    assert b"# TYPE serviceplatform_calls_total counter" in gzip.decompress(body)


def test_default_registry_without_multiprocess_dir(
    tmp_path: Path, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    app = metrics_app(make_platform(tmp_path, sqlite_db))
    assert app.multiprocess_dir is None
    # The default registry brings the process collector along.
    assert "process_cpu_seconds_total" in names(scrape(app))


# --- multiprocess mode ---------------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys
    from serviceplatform.call import PlatformCall
    from serviceplatform.errors import UpstreamUnavailable
    from serviceplatform.observability.metrics import observe_call

    service, count = sys.argv[1], int(sys.argv[2])
    for _ in range(count):
        observe_call(PlatformCall(service=service, operation="OpdaterBorgerNemSMS"))
    failed = PlatformCall(service=service, operation="OpdaterBorgerNemSMS")
    failed.fail(UpstreamUnavailable("503", status=503))
    observe_call(failed)
    """
)


def test_multiprocess_mode_adds_up_every_process(
    tmp_path: Path, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, service, str(count)], cwd=PROJECT, env=env)
        for count in (3, 4)
    ]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    files = sorted(p.name for p in directory.iterdir())
    assert {f"counter_{worker.pid}.db" for worker in workers} <= set(files)

    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    app = metrics_app(make_platform(tmp_path, sqlite_db))
    assert app.multiprocess_dir == str(directory)
    samples = scrape(app)

    op = "OpdaterBorgerNemSMS"
    calls = "serviceplatform_calls_total"
    assert value(samples, calls, service=service, operation=op, outcome="ok") == 7
    assert value(samples, calls, service=service, operation=op, outcome="SP-404") == 2
    upstream = "serviceplatform_upstream_errors_total"
    assert value(samples, upstream, service=service, kind="UpstreamUnavailable") == 2
    duration_count = "serviceplatform_call_duration_seconds_count"
    assert value(samples, duration_count, service=service, operation=op) == 9
    # The platform's own gauges are on the scrape's registry in this mode too.
    assert value(samples, "serviceplatform_outbox_failing") == 0


_BROKEN_SCRAPE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from serviceplatform.config import CertificateSettings, Settings
    from serviceplatform.observability.metrics import metrics_app
    from serviceplatform.platform import Platform
    from serviceplatform.store.db import Database

    tmp = Path(sys.argv[1])
    settings = Settings(certificates=CertificateSettings(directory=str(tmp)), base_dir=str(tmp))
    database = Database(f"sqlite:///{tmp / 'never-migrated.sqlite'}")
    app = metrics_app(Platform(settings, database=database))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": ""}
    sys.stdout.write(b"".join(app(environ, lambda *a: None)).decode())
    """
)


def test_multiprocess_scrape_counts_its_own_source_errors(tmp_path: Path) -> None:
    # The platform's collector runs before the files are read, so the scrape in which a source
    # fails already shows that failure.
    directory = tmp_path / "prometheus"
    directory.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _BROKEN_SCRAPE, str(tmp_path)],
        cwd=PROJECT,
        env={**os.environ, metrics.MULTIPROC_ENV: str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(result.stdout)
        for sample in family.samples
    }
    errors = "serviceplatform_metrics_source_errors_total"
    assert value(samples, errors, source="outbox") == 1
    assert value(samples, errors, source="nightly") == 1
    assert "process_cpu_seconds_total" not in names(samples)  # not the default registry


def test_importing_the_server_does_not_import_prometheus_client() -> None:
    # serve() sets PROMETHEUS_MULTIPROC_DIR; prometheus_client picks its mode when imported.
    code = (
        "import sys, serviceplatform.cli, serviceplatform.server, serviceplatform.app\n"
        "assert 'prometheus_client' not in sys.modules, 'imported too early'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_prepare_metrics_dir_makes_a_fresh_directory_and_sweeps_stale_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set, then removed: monkeypatch then removes what prepare_metrics_dir sets after the test.
    monkeypatch.setenv(server.MULTIPROC_ENV, "")
    monkeypatch.delenv(server.MULTIPROC_ENV)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"serviceplatform-metrics-{dead.pid}"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"old")
    alive = tmp_path / f"serviceplatform-metrics-{os.getppid()}"
    alive.mkdir()
    mine = tmp_path / f"serviceplatform-metrics-{os.getpid()}"
    mine.mkdir()
    (mine / "counter_2.db").write_bytes(b"old")

    path, owned = server.prepare_metrics_dir()

    assert owned and path == mine and path.is_dir() and list(path.iterdir()) == []
    assert os.environ[server.MULTIPROC_ENV] == str(path)
    assert oct(path.stat().st_mode & 0o777) == "0o700"
    assert not stale.exists()
    assert alive.exists()  # another server's, still running


def test_prepare_metrics_dir_empties_an_operators_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = tmp_path / "given"
    configured.mkdir()
    (configured / "histogram_123.db").write_bytes(b"old")
    (configured / "README").write_text("kept")
    monkeypatch.setenv(server.MULTIPROC_ENV, str(configured))

    path, owned = server.prepare_metrics_dir()

    assert (path, owned) == (configured, False)
    assert sorted(p.name for p in configured.iterdir()) == ["README"]


def test_child_exit_marks_the_worker_dead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(server.MULTIPROC_ENV, str(tmp_path))
    for name in ("gauge_livesum_4242.db", "gauge_liveall_4242.db", "counter_4242.db"):
        (tmp_path / name).write_bytes(b"")

    class Worker:
        pid = 4242

    server._metrics_child_exit(None, Worker())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"]


def test_no_test_leaves_the_multiprocess_variable_set() -> None:
    # Runs after the tests above (file order): a leaked variable would switch later tests'
    # /metrics to reading a deleted directory.
    assert os.environ.get(server.MULTIPROC_ENV) == _MULTIPROC_AT_START

"""Prometheus metrics, served at ``/metrics`` (docs/operations.md lists every metric).

Two kinds of metric:

- recorded per SOAP call by :func:`observe_call`, which ``SoapEndpoint._finish`` calls once
  per call: calls by service, operation and outcome, a latency histogram, upstream errors by
  kind;
- read at scrape time by :class:`PlatformCollector` from the database and the certificate
  store: outbox depth, days to certificate expiry, and the gauges each integration declares
  (``Integration.metrics``: SF2250's last nightly run per authority). A source that fails
  (database down) leaves its metrics out of that scrape and is counted in
  ``serviceplatform_metrics_source_errors_total``; the scrape itself still answers.

gunicorn runs several worker processes, each counting its own calls. ``serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` before a worker imports ``prometheus_client``, which then keeps
each process's values in memory-mapped files in that directory; a scrape, answered by whichever
worker gets it, adds up the files of every process (``MultiProcessCollector``). Without the
variable (tests, a single process) the default registry is scraped.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest, gzip_accepted
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from serviceplatform.call import PlatformCall
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.platform import Platform
from serviceplatform.registry import load_attribute, metric_sources
from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox, outbox_state
from serviceplatform.store.outbox import OUTBOX_WITH_STATE, PENDING

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

#: The environment variable that switches ``prometheus_client`` to multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The ``operation`` label of a call refused before its operation was known.
UNKNOWN_OPERATION = "unknown"
#: Seconds; finer around the 1 s SLA of a call (retries included), up to twice over it.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)
_SECONDS_PER_DAY = 86400.0
_UPSTREAM_CODE = re.compile(r"SP-4\d\d")

CALLS = Counter(
    "serviceplatform_calls_total",
    "SOAP calls answered, by service, operation and outcome (ok or the fault code).",
    ["service", "operation", "outcome"],
)
CALL_DURATION = Histogram(
    "serviceplatform_call_duration_seconds",
    "Time from receiving a SOAP call to its decided answer (as in the audit record).",
    ["service", "operation"],
    buckets=DURATION_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "serviceplatform_upstream_errors_total",
    "SOAP calls that ended in an SP-4xx fault (peer, certificate, distributor), by error class.",
    ["service", "kind"],
)
SOURCE_ERRORS = Counter(
    "serviceplatform_metrics_source_errors_total",
    "Scrapes that could not read a source of metrics (outbox, nightly, certificates).",
    ["source"],
)

_observe_failed = False
#: Label sets a process keeps its children for (services x operations x outcomes is far less).
_CHILDREN_MAX = 1024
#: (service, operation, outcome) -> the children of CALLS and CALL_DURATION for those labels.
#: ``labels()`` checks and joins the label values under a lock on every call; a child, once
#: made, is the same object for as long as the metric lives (nothing here removes children).
_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def _call_children(service: str, operation: str, outcome: str) -> tuple[Any, Any]:
    key = (service, operation, outcome)
    children = _children.get(key)
    if children is None:
        children = (
            CALLS.labels(service, operation, outcome),
            CALL_DURATION.labels(service, operation),
        )
        if len(_children) < _CHILDREN_MAX:
            _children[key] = children
    return children


def observe_call(call: PlatformCall) -> None:
    """Count ``call`` and its latency; never raises (a metric must not break a call)."""
    global _observe_failed
    try:
        error = call.error
        counter, duration = _call_children(
            call.service,
            call.operation or UNKNOWN_OPERATION,
            "ok" if error is None else error.code,
        )
        counter.inc()
        duration.observe(max(call.latency_ms(), 0.0) / 1e3)
        if error is not None and _UPSTREAM_CODE.fullmatch(error.code):
            UPSTREAM_ERRORS.labels(call.service, type(error).__name__).inc()
    except Exception:
        if not _observe_failed:
            _observe_failed = True
            log.exception("metrics of a call could not be recorded (logged once per process)")


class PlatformCollector:
    """The platform's state as gauges, read from the database and files at every scrape."""

    def __init__(
        self, db: Database, certificates: CertificateStore, clock: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._certificates = certificates
        self._clock = clock
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        sources: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("outbox", self._outbox),
            *((source.name, self._integration_source(source.read)) for source in metric_sources()),
            ("certificates", self._certificate_expiry),
        ]
        for source, read in sources:
            try:
                families = read()
            except Exception as exc:
                SOURCE_ERRORS.labels(source).inc()
                self._note(source, exc)
                continue
            self._note(source, None)
            yield from families

    def _integration_source(self, target: str) -> Callable[[], list[Metric]]:
        def read() -> list[Metric]:
            # Loaded inside the source: a broken declaration fails that source alone.
            families: list[Metric] = load_attribute(target, "metrics source")(self._db)
            return families

        return read

    def _note(self, source: str, error: Exception | None) -> None:
        """Log a source's change between working and failing, not every failed scrape."""
        with self._lock:
            was_failing = source in self._failing
            if error is not None and not was_failing:
                self._failing.add(source)
                log.warning(
                    "metrics source %s cannot be read, its metrics are left out: %s: %s",
                    source,
                    type(error).__name__,
                    error,
                )
            elif error is None and was_failing:
                self._failing.discard(source)
                log.info("metrics source %s can be read again", source)

    def _outbox(self) -> list[Metric]:
        # One grouped query over the index of pending rows: pending and failing rows per topic.
        query = (
            select(
                outbox.c.topic,
                func.count(),
                func.sum(case((outbox_state.c.attempts > 0, 1), else_=0)),
            )
            .select_from(OUTBOX_WITH_STATE)
            .where(PENDING)
            .group_by(outbox.c.topic)
            .order_by(outbox.c.topic)
        )
        with self._db.transaction() as connection:
            rows = connection.execute(query).all()
        pending = GaugeMetricFamily(
            "serviceplatform_outbox_pending",
            "Outbox messages not yet handed to the distributor, by topic "
            "(a topic without pending messages has no series).",
            labels=["topic"],
        )
        failing = 0
        for topic, count, failed in rows:
            pending.add_metric([topic], float(count))
            failing += int(failed or 0)
        return [
            pending,
            GaugeMetricFamily(
                "serviceplatform_outbox_failing",
                "Pending outbox messages whose delivery failed at least once.",
                value=float(failing),
            ),
        ]

    def _certificate_expiry(self) -> list[Metric]:
        now = self._clock()
        expiry = GaugeMetricFamily(
            "serviceplatform_certificate_expiry_days",
            "Days until an outward certificate of the store expires (negative once expired).",
            labels=["alias"],
        )
        earliest: float | None = None
        for info in self._certificates.list():
            if info.not_after is None:  # unreadable: /readyz names it
                continue
            days = round((info.not_after - now).total_seconds() / _SECONDS_PER_DAY, 3)
            expiry.add_metric([info.alias], days)
            earliest = days if earliest is None else min(earliest, days)
        families: list[Metric] = [expiry]
        if earliest is not None:
            families.append(
                GaugeMetricFamily(
                    "serviceplatform_certificate_earliest_expiry_days",
                    "Days until the first outward certificate of the store expires.",
                    value=earliest,
                )
            )
        return families


class _Registry:
    """Another registry's metrics, as one collector of the scrape's registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


class MetricsApp:
    """WSGI: ``GET`` answers the Prometheus text format of every metric."""

    def __init__(self, collector: Collector, multiprocess_dir: str | None = None) -> None:
        self.collector = collector
        self.multiprocess_dir = multiprocess_dir

    def registry(self) -> CollectorRegistry:
        """A registry for one scrape: the platform's state and the calls of every process."""
        registry = CollectorRegistry()
        # Collected in registration order: reading the platform's state first counts a failed
        # source before the counters below are read, so the scrape that failed shows it.
        registry.register(self.collector)
        if self.multiprocess_dir is not None:
            MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Registry(REGISTRY))
        return registry

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response(
                "405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")]
            )
            return [b""]
        if environ.get("PATH_INFO", "") not in ("", "/"):
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        body = generate_latest(self.registry())
        headers = [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = gzip.compress(body)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [b""] if method == "HEAD" else [body]


def multiprocess_dir() -> str | None:
    """The multiprocess directory this process writes to, or None in single-process mode."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return None
    if not os.path.isdir(path):
        log.error("%s=%s is not a directory: /metrics shows this process only", MULTIPROC_ENV, path)
        return None
    if values.ValueClass is values.MutexValue:
        log.error(
            "prometheus_client was imported before %s was set: this process's own calls are "
            "missing from /metrics",
            MULTIPROC_ENV,
        )
    return path


def metrics_app(platform: Platform) -> MetricsApp:
    """The ``/metrics`` application of ``platform`` (mounted by ``serviceplatform.app``)."""
    collector = PlatformCollector(platform.db, platform.certificates, platform.clock)
    return MetricsApp(collector, multiprocess_dir())

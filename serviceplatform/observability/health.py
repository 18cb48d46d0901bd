"""``/readyz``: can this platform process serve calls now?

Checks, all run in parallel and within one deadline:

- ``database``: the database answers ``SELECT 1`` and its schema is at the newest migration;
- ``certificate:<alias>``: each outward certificate of the store is readable, has its key and
  is valid now; one that expires within :data:`WARN_DAYS` days is ready but marked a warning;
- ``peer:<name>``: each peer this node calls accepts a TCP connection at its URL's host and
  port (no request is sent and no TLS is spoken, so no certificate is needed): the ``[peers]``
  (the register), the distributor's broker when it is AMQP, and the peers the integrations
  declare (``Integration.peers``: Domibus per access point, the OOTS common services). Which
  peers there are is decided in one function, :func:`peer_urls`.

The answer is 200 ``{"status": "ready", "checks": {...}}`` or 503 ``{"status": "not ready",
...}``, each check as ``{"ok", "detail", "warning"}``. It is cached for
:data:`CACHE_SECONDS`, so frequent probes (several kubelets, a load balancer) cannot hammer
the database or the peers. Details name hosts, ports, aliases and revisions, never a
password, a URL's user part or key material.

``/healthz`` (in ``serviceplatform.app``) answers without any dependency: the process is up.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from serviceplatform.config import Settings
from serviceplatform.errors import ServicePlatformError
from serviceplatform.platform import Platform
from serviceplatform.store.db import migration_head

StartResponse = Callable[..., Any]

#: A certificate expiring within this many days is reported as a warning (still ready).
WARN_DAYS = 14
#: Seconds an answer is reused.
CACHE_SECONDS = 2.0
#: Seconds a peer has to accept the TCP connection.
PEER_TIMEOUT_SECONDS = 0.5
#: Seconds every check together may take; one still running then has failed.
DEADLINE_SECONDS = 2.0
_DEFAULT_PORTS = {"https": 443, "http": 80, "amqps": 5671, "amqp": 5672}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    #: Ready, but needs attention soon (a certificate close to expiry).
    warning: bool = False


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    def document(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": {
                check.name: {"ok": check.ok, "detail": check.detail, "warning": check.warning}
                for check in self.checks
            },
        }


def check_database(platform: Platform) -> Check:
    db = platform.db
    try:
        with db.transaction() as connection:
            connection.execute(text("SELECT 1")).scalar_one()
        current = db.current_revision()
    except ServicePlatformError as exc:
        return Check("database", False, f"the {db.dialect} database does not answer: {exc}")
    head = migration_head()
    if current != head:
        state = "never migrated" if current is None else f"at revision {current}"
        return Check(
            "database",
            False,
            f"the {db.dialect} database is {state}, this version needs {head} "
            "(serviceplatform db upgrade)",
        )
    return Check("database", True, f"the {db.dialect} database answers, schema at {head}")


def check_certificates(platform: Platform) -> list[Check]:
    store = platform.certificates
    infos = store.list()
    if not infos:
        return [Check("certificates", True, f"no certificate in {store.directory}")]
    checks: list[Check] = []
    for info in infos:
        name = f"certificate:{info.alias}"
        if info.problem is not None or info.not_after is None:
            checks.append(Check(name, False, info.problem or "cannot be read"))
            continue
        days = info.days_to_expiry if info.days_to_expiry is not None else 0
        until = f"{info.not_after:%Y-%m-%d}"
        if days < WARN_DAYS:
            checks.append(Check(name, True, f"expires on {until}, in {days} days", warning=True))
        else:
            checks.append(Check(name, True, f"valid until {until} ({days} days)"))
    return checks


def peer_urls(settings: Settings) -> dict[str, str]:
    """Peer name -> URL of every peer this node calls with ``settings``, sorted by name.

    The one place readiness learns its peers; point it at wherever peers are declared.
    """
    from serviceplatform.registry import integration_peers

    found = {name: peer.base_url for name, peer in settings.peers.items()}
    if settings.distributor.transport == "amqp":
        found["distributor"] = settings.distributor.amqp.url
    found.update(integration_peers(settings))
    return dict(sorted(found.items()))


def peer_address(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of a peer's URL, or None when it names no host."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        return None
    if not host:
        return None
    port = port or _DEFAULT_PORTS.get(parts.scheme.lower())
    return (host, port) if port else None


def check_peer(name: str, url: str, timeout: float) -> Check:
    check_name = f"peer:{name}"
    address = peer_address(url)
    if address is None:
        return Check(check_name, False, "its URL names no host and port")
    host, port = address
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        with socket.create_connection(address, timeout=timeout):
            pass
    except TimeoutError:
        return Check(check_name, False, f"{where} did not accept a connection within {timeout} s")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Check(check_name, False, f"{where} cannot be reached: {reason}")
    return Check(check_name, True, f"{where} accepts connections")


class ReadinessApp:
    """WSGI: ``GET`` answers 200 when every check passes, else 503; both as JSON."""

    def __init__(
        self,
        platform: Platform,
        *,
        cache_seconds: float = CACHE_SECONDS,
        peer_timeout: float = PEER_TIMEOUT_SECONDS,
        deadline: float = DEADLINE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        self.cache_seconds = cache_seconds
        self.peer_timeout = peer_timeout
        self.deadline = deadline
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, Readiness] | None = None

    def readiness(self) -> Readiness:
        """The current answer; probes arriving while it is computed wait for it and share it."""
        with self._lock:
            cached = self._cached
            if cached is not None and self._monotonic() - cached[0] < self.cache_seconds:
                return cached[1]
            result = self.evaluate()
            self._cached = (self._monotonic(), result)
            return result

    def evaluate(self) -> Readiness:
        """Run every check now, in parallel, within the deadline."""
        platform = self.platform
        tasks: list[tuple[str, Callable[[], Check | list[Check]]]] = [
            ("database", partial(check_database, platform)),
            ("certificates", partial(check_certificates, platform)),
        ]
        for name, url in peer_urls(platform.settings).items():
            tasks.append((f"peer:{name}", partial(check_peer, name, url, self.peer_timeout)))
        executor = ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="readyz")
        try:
            futures = [executor.submit(task) for _, task in tasks]
            wait(futures, timeout=self.deadline)
            checks: list[Check] = []
            for (name, _), future in zip(tasks, futures, strict=True):
                checks.extend(self._outcome(name, future))
        finally:
            # A check stuck past the deadline (a DNS lookup, a database connect) is left to end
            # on its own; the answer does not wait for it.
            executor.shutdown(wait=False, cancel_futures=True)
        return Readiness(tuple(checks))

    def _outcome(self, name: str, future: Future[Check | list[Check]]) -> Iterable[Check]:
        if not future.done():
            return [Check(name, False, f"no answer within {self.deadline} s")]
        try:
            result = future.result()
        except Exception as exc:
            return [Check(name, False, f"the check failed: {type(exc).__name__}")]
        return result if isinstance(result, list) else [result]

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
        readiness = self.readiness()
        body = (json.dumps(readiness.document(), indent=2) + "\n").encode()
        start_response(
            "200 OK" if readiness.ready else "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [b""] if method == "HEAD" else [body]


def readyz_app(platform: Platform) -> ReadinessApp:
    """The ``/readyz`` application of ``platform`` (mounted by ``serviceplatform.app``)."""
    return ReadinessApp(platform)

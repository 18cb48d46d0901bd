"""OIOREST over mutual TLS: the outbound transport towards the NemSMS register.

One ``requests`` transport adapter per client certificate, created on first use and shared
by every thread (its TLS context built once), keeps TLS connections alive (a fresh
mutual-TLS handshake costs more than the call itself). Each call must end within
``PeerSettings.budget_seconds`` (the 1 s SLA of a simple integration), retries included,
and ends either in a 2xx ``OutboundResponse`` or in exactly one SP-4xx platform error;
``requests``/``urllib3``/``ssl`` exceptions never leave this module.

Retries are a small loop with a deadline rather than urllib3's ``Retry``: ``Retry`` repeats
with the same per-attempt timeout, so three attempts of a 0.75 s timeout would overrun a 1 s
budget, whereas the loop caps every attempt by the time left and stops retrying when too
little is left. It retries connection failures, timeouts and 5xx answers, never 4xx; that is
safe because the register's PUTs and GETs are idempotent (SPEC §3.2: at least once).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.client import RemoteDisconnected
from pathlib import Path
from socket import gaierror
from typing import Any
from urllib.parse import urlsplit

import requests
from lxml import etree
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError
from urllib3.util import Timeout

from serviceplatform.config import PeerSettings
from serviceplatform.errors import (
    ConfigurationError,
    ServicePlatformError,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamTlsError,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.logmask import mask_cpr_numbers
from serviceplatform.outbound.base import (
    ErrorParser,
    OutboundRequest,
    OutboundResponse,
    TransportBase,
    error_for_status,
    raw_error_text,
)
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.retry import attempt_seconds, backoff_pause, time_for_another

log = logging.getLogger(__name__)

_RETRIED = (UpstreamUnreachable, UpstreamTimeout, UpstreamUnavailable)
# An abrupt close of a TLS connection surfaces as one of these: a dropped connection, not a
# failed handshake, so it is retried like any other connection loss.
_TLS_EOF = (ssl.SSLEOFError, ssl.SSLZeroReturnError)


def parse_fejl(body: bytes) -> str | None:
    """``FejlKode n: FejlTekst`` from a ``dkal:Fejl`` body; otherwise the raw text, trimmed."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return raw_error_text(body)
    if etree.QName(root).localname != "Fejl":
        return raw_error_text(body)
    fields = {etree.QName(child).localname: (child.text or "").strip() for child in root}
    code, text = fields.get("FejlKode", ""), fields.get("FejlTekst", "")
    if code and text:
        return f"FejlKode {code}: {text}"
    return text or (f"FejlKode {code}" if code else None)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (cause, context, urllib3 ``reason``, args)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        stack.extend(e for e in linked if isinstance(e, BaseException))


def _reason(exc: BaseException) -> str:
    """A short cause without the URL: requests' messages quote the path, which holds CPRs."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            message = getattr(cause, "verify_message", None) or "untrusted certificate"
            return f"certificate verification failed ({message})"
    for cause in causes:
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _TLS_EOF):
            # ``reason`` is an OpenSSL code such as TLSV13_ALERT_CERTIFICATE_REQUIRED.
            return f"TLS error {getattr(cause, 'reason', None) or 'unknown'}"
    for kind, text in (
        (ConnectionRefusedError, "connection refused"),
        # Before ConnectionResetError, of which it is a subclass.
        (RemoteDisconnected, "connection closed without a response"),
        (ConnectionResetError, "connection reset by peer"),
        (_TLS_EOF, "connection closed during TLS"),
        ((gaierror, NameResolutionError), "host name cannot be resolved"),
        (TimeoutError, "timed out"),
    ):
        if any(isinstance(cause, kind) for cause in causes):
            return text
    return type(exc).__name__


def translate_exception(exc: BaseException, peer: str) -> ServicePlatformError:
    """The platform error for a ``requests`` (or socket/ssl) failure talking to ``peer``."""
    detail = mask_cpr_numbers(f"{peer}: {_reason(exc)}", touching_letters=True)
    causes = list(_causes(exc))
    if isinstance(exc, requests.Timeout):
        return UpstreamTimeout(detail)
    if isinstance(exc, requests.exceptions.SSLError):
        if any(isinstance(c, TimeoutError) for c in causes):
            return UpstreamTimeout(detail)
        return UpstreamTlsError(detail)
    if isinstance(exc, requests.ConnectionError):
        if any(isinstance(c, ssl.SSLError) and not isinstance(c, _TLS_EOF) for c in causes):
            # TLS 1.3 reports a refused client certificate on the first read, not in the
            # handshake; it is still a TLS failure that no retry can fix.
            return UpstreamTlsError(detail)
        return UpstreamUnreachable(detail)
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidHeader,
    ):
        return ConfigurationError(f"request to {detail} is invalid")
    if isinstance(exc, requests.RequestException):
        return UpstreamBadResponse(detail)
    if isinstance(exc, OSError):
        # requests checks certificate and CA files itself and raises a bare OSError.
        return ConfigurationError(f"TLS files for {peer} cannot be read")
    return UpstreamBadResponse(detail)


def prepare_request(request: OutboundRequest, url: str) -> requests.PreparedRequest:
    """The request exactly as ``Request.prepare`` would make it, without the cookie jar.

    ``Request.prepare`` builds an empty cookie jar and asks it for a ``Cookie`` header on
    every call, most of its cost; a peer call never carries cookies. Credentials in the
    base URL still become Basic authentication, as before.
    """
    prepared = requests.PreparedRequest()
    prepared.prepare_method(request.method)
    prepared.prepare_url(url, None)
    prepared.prepare_headers(request.headers)
    prepared.prepare_body(request.body, None)
    prepared.prepare_auth(None, url)
    return prepared


class ContextAdapter(HTTPAdapter):
    """An adapter whose connections all use one ``SSLContext``, built once per certificate.

    The context holds the peer's CA and the client certificate, so nothing is read from disk
    per request. ``cert_verify`` is reduced to demanding verification: requests' own version
    would stat the files on every call and, with ``verify=True``, load the public CA bundle
    into the shared context, widening whom we trust.
    """

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self._context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED"


class OioRestTransport(TransportBase):
    """Mutual-TLS OIOREST client for one peer; thread-safe, one instance per peer."""

    def __init__(
        self,
        settings: PeerSettings,
        certs: CertificateStore,
        clock: Callable[[], float] = time.monotonic,
        *,
        sleep: Callable[[float], None] = time.sleep,
        parse_error: ErrorParser = parse_fejl,
        peer: str = "nemsms",
    ) -> None:
        parts = urlsplit(settings.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"peer {peer}: base_url {settings.base_url!r} is not a URL")
        if settings.ca_cert and not Path(settings.ca_cert).is_file():
            raise ConfigurationError(f"peer {peer}: ca_cert {settings.ca_cert} does not exist")
        self.settings = settings
        self.peer = peer
        self._base = settings.base_url.rstrip("/")
        # Without ca_cert the public trust store applies (certifi, since trust_env is off).
        self._verify: str | bool = settings.ca_cert or True
        self._certs = certs
        self._clock = clock
        self._sleep = sleep
        self._parse_error = parse_error
        self._adapters: dict[tuple[str | None, int | None], ContextAdapter] = {}
        self._lock = threading.Lock()
        self._closed = False

    def send(self, request: OutboundRequest, *, cert_alias: str | None) -> OutboundResponse:
        """Send ``request`` with the client certificate ``cert_alias`` (None: no certificate)."""
        started = self._clock()
        deadline = started + (request.budget_seconds or self.settings.budget_seconds)
        # Checked before any I/O: an expired certificate never reaches a handshake.
        cert = self._certs.client_pair(cert_alias) if cert_alias is not None else None
        adapter = self._adapter(cert_alias, cert)
        url = self._base + request.path
        attempts = 0
        while True:
            attempts += 1
            remaining = attempt_seconds(deadline, self._clock())
            # ``total`` bounds connect plus read; urllib3's read timeout alone is per recv().
            timeout = Timeout(
                connect=min(self.settings.connect_timeout_seconds, remaining),
                read=min(
                    request.read_timeout_seconds or self.settings.read_timeout_seconds, remaining
                ),
                total=remaining,
            )
            cause: BaseException | None = None
            try:
                # Straight to the adapter: a Session would merge cookies, environment and
                # redirect settings on every call, none of which a peer call may use.
                answer = adapter.send(
                    prepare_request(request, url),
                    timeout=timeout,  # type: ignore[arg-type]  # requests accepts urllib3's Timeout
                    verify=True,
                    proxies={},
                )
            except (requests.RequestException, OSError) as exc:
                cause, error = exc, translate_exception(exc, self.peer)
            else:
                status, body = answer.status_code, answer.content
                found = error_for_status(status, body, self._parse_error)
                if found is None:
                    elapsed = self._clock() - started
                    return OutboundResponse(status, body, answer.headers, elapsed, attempts)
                error = found
            if not self._retry(error, attempts, deadline):
                raise error from cause
            log.info("%s: attempt %d failed with %s; retrying", self.peer, attempts, error.code)
            self._sleep(backoff_pause(self.settings.backoff_seconds, attempts))

    def _retry(self, error: ServicePlatformError, attempts: int, deadline: float) -> bool:
        if not isinstance(error, _RETRIED) or attempts > self.settings.max_retries:
            return False
        return time_for_another(self.settings.backoff_seconds, attempts, deadline, self._clock())

    def _adapter(self, alias: str | None, cert: tuple[str, str] | None) -> ContextAdapter:
        # A renewed certificate under the same alias gets a new context (and new connections).
        key = (alias, self._certs.certificate(alias).serial_number if alias else None)
        adapter = self._adapters.get(key)
        if adapter is not None:
            return adapter
        with self._lock:
            if self._closed:
                raise ConfigurationError(f"the transport to {self.peer} is closed")
            adapter = self._adapters.get(key)
            if adapter is None:
                adapter = self._new_adapter(cert)
                self._adapters[key] = adapter
        return adapter

    def _new_adapter(self, cert: tuple[str, str] | None) -> ContextAdapter:
        return ContextAdapter(
            self._tls_context(cert),
            pool_connections=4,
            pool_maxsize=max(1, self.settings.pool_size),
            max_retries=0,
        )

    def _tls_context(self, cert: tuple[str, str] | None) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(
                cafile=self._verify if isinstance(self._verify, str) else None
            )
            if cert is not None:
                context.load_cert_chain(*cert)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"TLS files for {self.peer} cannot be used: {exc}") from exc
        return context

    def close(self) -> None:
        with self._lock:
            self._closed = True
            adapters = list(self._adapters.values())
            self._adapters.clear()
        for adapter in adapters:
            adapter.close()

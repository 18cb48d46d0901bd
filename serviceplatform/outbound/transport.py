"""``HttpTransport``: the one HTTP client of the outbound seam, for every peer kind.

One peer (base URL, CA, timeouts, retries, pool: ``PeerSettings``) per instance, shared by
every thread. Per call it takes the ``Credential`` the call shows: its TLS identity picks
the connection pool (one ``requests`` adapter per client certificate, its ``SSLContext``
built once, keep-alive connections reused: a fresh mutual-TLS handshake costs more than the
call itself), its headers go on the request, and a 401 is reported to it once (a token
credential may then send again with a fresh token).

Each call ends within its budget (``budget_seconds``: the 1 s SLA of a simple integration),
retries included, in a 2xx ``OutboundResponse`` or in exactly one platform error
(``translate.py``); ``requests``/``urllib3``/``ssl`` exceptions never leave this module. A
request marked ``any_status`` gets every HTTP answer back whatever its status (never retried).

Retries are a small loop with a deadline rather than urllib3's ``Retry``: ``Retry`` repeats
with the same per-attempt timeout, so three attempts of a 0.75 s timeout would overrun a 1 s
budget, whereas the loop caps every attempt by the time left and stops retrying when too
little is left. It retries connection failures, timeouts and 5xx answers, never 4xx; a
request marked not idempotent only after a failure that proves it never left, and always
on a fresh connection (an idle one the server dropped would make a failure ambiguous).
The fresh connection still uses the identity's one ``SSLContext``: building a context loads
the CA store, tens of milliseconds of CPU that would otherwise be paid on every such call.

No ``requests.Session``: the adapter is called directly, so nothing from the environment
(proxy variables, ``REQUESTS_CA_BUNDLE``), no cookie and no redirect ever applies. Bodies are
streamed and read through ``bounded.read_bounded`` against the size limit and the deadline.
"""

from __future__ import annotations

import logging
import re
import ssl
import sys
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE, BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3.util import Timeout

from serviceplatform.config import PeerSettings
from serviceplatform.errors import ConfigurationError, ServicePlatformError
from serviceplatform.outbound.base import OutboundRequest, OutboundResponse, TransportBase
from serviceplatform.outbound.bounded import AnswerOverdue, AnswerTooLarge, read_bounded
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import Credential, TlsIdentity
from serviceplatform.outbound.retry import attempt_seconds, backoff_pause, time_for_another
from serviceplatform.outbound.translate import (
    RETRIED,
    AnswerCheck,
    answer_error,
    never_sent,
    translate_exception,
)
from serviceplatform.outbound.urls import is_http_url

log = logging.getLogger(__name__)

#: Builds the adapter of one pool from (its TLS context, built on demand; the pool size).
#: Tests put an adapter of their own here; the default is a ``ContextAdapter``.
AdapterFactory = Callable[[Callable[[], ssl.SSLContext], int], BaseAdapter]

_FAILURES = (requests.RequestException, OSError, AnswerTooLarge, AnswerOverdue)

#: A URL that ``PreparedRequest.prepare_url`` leaves exactly as it is: http(s), a lowercase
#: ASCII host (no userinfo, no IDNA), an optional port without leading zero, and a path of
#: non-empty segments of unreserved characters that are not dot segments (urllib3 would
#: remove those); no query, no fragment. Peer paths are of this form (SysIDs, CPR numbers).
_PLAIN_URL = re.compile(
    r"https?://[a-z0-9][a-z0-9.-]*(?::[1-9][0-9]{0,4})?(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?"
)


def prepare_request(
    request: OutboundRequest, url: str, extra: Mapping[str, str] | None = None
) -> requests.PreparedRequest:
    """The request exactly as ``Request.prepare`` would make it, without the cookie jar.

    ``Request.prepare`` builds an empty cookie jar and asks it for a ``Cookie`` header on
    every call, most of its cost; a peer call never carries cookies. Credentials in the
    base URL still become Basic authentication, as before. ``extra`` (the credential's and
    the transport's headers) goes over the request's own.
    """
    prepared = requests.PreparedRequest()
    prepared.prepare_method(request.method)
    plain = _PLAIN_URL.fullmatch(url) is not None
    if plain:
        # What prepare_url would make of it, without parsing it twice (see _PLAIN_URL).
        prepared.url = url if "/" in url[8:] else url + "/"
    else:
        prepared.prepare_url(url, None)
    prepared.prepare_headers({**request.headers, **extra} if extra else request.headers)
    prepared.prepare_body(request.body, None)
    if not plain:
        prepared.prepare_auth(None, url)  # a plain URL has no userinfo to turn into auth
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
        self._pools: dict[str, Any] = {}
        # Never more than the pool manager keeps, so it has closed none of the remembered.
        self._pools_kept = int(kwargs.get("pool_connections", DEFAULT_POOLSIZE))
        super().__init__(**kwargs)

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        """The pool of the request's origin, remembered: requests parses the URL and looks
        the pool up in the pool manager on every call. Only without proxies (the seam never
        has any); the scheme and authority (up to the path) pick the pool."""
        if proxies:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        url = request.url or ""
        slash = url.find("/", url.find("//") + 2) if "//" in url else -1
        origin = url[:slash] if slash >= 0 else url
        pool = self._pools.get(origin)
        if pool is None:
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            if len(self._pools) >= self._pools_kept:
                self._pools.clear()
            self._pools[origin] = pool
        return pool

    def request_url(
        self, request: requests.PreparedRequest, proxies: Mapping[str, str] | None
    ) -> str:
        """The path and query, as requests sends them without a proxy (its version looks
        for a proxy of the URL first, though the seam never has any)."""
        if proxies:
            return super().request_url(request, proxies)
        return request.path_url

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """requests' response, without reading ``Set-Cookie`` into a cookie jar: no peer
        call sends cookies back, and each call's jar would be thrown away unread."""
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url or ""
        response.request = req
        response.connection = self
        return response

    def close(self) -> None:
        self._pools.clear()
        super().close()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self._context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED"


def context_adapter(context: Callable[[], ssl.SSLContext], pool_size: int) -> BaseAdapter:
    """The default ``AdapterFactory``: a ``ContextAdapter`` without urllib3 retries."""
    return ContextAdapter(context(), pool_connections=4, pool_maxsize=pool_size, max_retries=0)


class HttpTransport(TransportBase):
    """The seam's HTTP client for one peer; thread-safe, one instance per peer."""

    def __init__(
        self,
        settings: PeerSettings,
        certificates: CertificateStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        sleep: Callable[[float], None] = time.sleep,
        peer: str | None = None,
        answer_check: AnswerCheck | None = None,
        max_response_bytes: int | None = None,
        adapter_factory: AdapterFactory = context_adapter,
    ) -> None:
        """``answer_check`` reads every answer of this peer (a request's own wins);
        ``max_response_bytes`` None: no size limit."""
        parts = urlsplit(settings.base_url)
        name = peer or parts.hostname or "peer"
        if not is_http_url(settings.base_url):
            raise ConfigurationError(f"peer {name}: base_url {settings.base_url!r} is not a URL")
        if settings.ca_cert and not Path(settings.ca_cert).is_file():
            raise ConfigurationError(f"peer {name}: ca_cert {settings.ca_cert} does not exist")
        if (
            settings.connect_timeout_seconds <= 0
            or settings.read_timeout_seconds <= 0
            or settings.budget_seconds <= 0
            or settings.max_retries < 0
            or settings.backoff_seconds < 0
            or settings.pool_size < 1
            or (max_response_bytes is not None and max_response_bytes < 1)
        ):
            raise ConfigurationError(f"peer {name}: timeouts, retries or limits out of range")
        self.settings = settings
        self.peer = name
        self.base_url = settings.base_url
        self._base = settings.base_url.rstrip("/")
        self._certs = certificates
        self._clock = clock
        self._sleep = sleep
        self._answer_check = answer_check
        self._max_bytes = max_response_bytes or sys.maxsize
        self._adapter_factory = adapter_factory
        self._adapters: dict[Hashable, BaseAdapter] = {}
        self._contexts: dict[Hashable, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        # Its own lock: an adapter factory may build the context while ``_lock`` is held.
        self._contexts_lock = threading.Lock()
        self._closed = False

    def send(self, request: OutboundRequest, *, credential: Credential) -> OutboundResponse:
        """Send ``request`` showing ``credential``; see the module docstring."""
        started = self._clock()
        deadline = started + (request.budget_seconds or self.settings.budget_seconds)
        identity = credential.tls_identity(self._certs)
        fresh = not request.idempotent
        adapter = self._new_adapter(identity) if fresh else self._adapter(identity)
        url = self._base + request.path if request.path else self.base_url
        check = request.answer_check or self._answer_check
        attempts = 0
        refreshed = False
        try:
            while True:
                attempts += 1
                headers = dict(credential.headers())
                if fresh:
                    headers["Connection"] = "close"
                cause: BaseException | None = None
                may_repeat = request.idempotent
                try:
                    status, answer_headers, body = self._attempt(
                        adapter,
                        prepare_request(request, url, headers),
                        deadline,
                        request.read_timeout_seconds,
                    )
                except _FAILURES as exc:
                    cause, error = exc, translate_exception(exc, self.peer)
                    may_repeat = may_repeat or never_sent(exc)
                else:
                    found = None
                    if not request.any_status:
                        found = answer_error(status, answer_headers, body, check)
                    if found is None:
                        elapsed = self._clock() - started
                        return OutboundResponse(status, body, answer_headers, elapsed, attempts)
                    if status == 401 and not refreshed and credential.refused():
                        # Once per call: the credential renewed what the peer refused.
                        refreshed = True
                        log.info("%s: 401, sending once more with a renewed credential", self.peer)
                        continue
                    error = found
                if not may_repeat or not self._retry(error, attempts, deadline):
                    raise error from cause
                log.info("%s: attempt %d failed with %s; retrying", self.peer, attempts, error.code)
                self._sleep(backoff_pause(self.settings.backoff_seconds, attempts))
        finally:
            if fresh:
                adapter.close()

    def _attempt(
        self,
        adapter: BaseAdapter,
        prepared: requests.PreparedRequest,
        deadline: float,
        read_timeout: float | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        remaining = attempt_seconds(deadline, self._clock())
        # ``total`` bounds connect plus read; urllib3's read timeout alone is per recv().
        timeout = Timeout(
            connect=min(self.settings.connect_timeout_seconds, remaining),
            read=min(read_timeout or self.settings.read_timeout_seconds, remaining),
            total=remaining,
        )
        answer = adapter.send(
            prepared,
            stream=True,
            timeout=timeout,  # type: ignore[arg-type]  # requests accepts urllib3's Timeout
            verify=True,
            proxies={},
        )
        try:
            body = read_bounded(answer, self._max_bytes, deadline=deadline)
            return answer.status_code, answer.headers, body
        finally:
            # A fully read answer gives its connection back to the pool; a cut one drops it.
            answer.close()

    def _retry(self, error: ServicePlatformError, attempts: int, deadline: float) -> bool:
        if not isinstance(error, RETRIED) or attempts > self.settings.max_retries:
            return False
        return time_for_another(self.settings.backoff_seconds, attempts, deadline, self._clock())

    def _adapter(self, identity: TlsIdentity | None) -> BaseAdapter:
        key = identity.key if identity is not None else None
        adapter = self._adapters.get(key)
        if adapter is not None:
            return adapter
        with self._lock:
            if self._closed:
                raise ConfigurationError(f"the transport to {self.peer} is closed")
            adapter = self._adapters.get(key)
            if adapter is None:
                adapter = self._new_adapter(identity)
                self._adapters[key] = adapter
        return adapter

    def _new_adapter(self, identity: TlsIdentity | None) -> BaseAdapter:
        if self._closed:
            raise ConfigurationError(f"the transport to {self.peer} is closed")
        return self._adapter_factory(
            lambda: self._tls_context(identity), max(1, self.settings.pool_size)
        )

    def _tls_context(self, identity: TlsIdentity | None) -> ssl.SSLContext:
        # One per identity (its key changes when the certificate files are renewed); an
        # SSLContext is safe to share between threads and connections.
        key = identity.key if identity is not None else None
        context = self._contexts.get(key)
        if context is None:
            context = self._new_tls_context(identity)
            with self._contexts_lock:
                context = self._contexts.setdefault(key, context)
        return context

    def _new_tls_context(self, identity: TlsIdentity | None) -> ssl.SSLContext:
        # Without ca_cert the system's trust store applies (never REQUESTS_CA_BUNDLE).
        try:
            context = ssl.create_default_context(cafile=self.settings.ca_cert or None)
            if identity is not None:
                context.load_cert_chain(identity.cert_file, identity.key_file)
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

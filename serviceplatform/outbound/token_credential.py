"""Token credentials: mutual TLS plus ``Authorization: Holder-of-key <access token>``.

``TokenCache`` keeps one access token per (authority CVR, entity ID, certificate alias and
serial): a renewed certificate gets a token of its own, as its connections are pooled apart.
A token is used until ``refresh_margin`` before it expires (a quarter of its lifetime when
that is shorter, so short sandbox lifetimes still leave a usable window). Under concurrency
one refresh runs per key and the other calls wait for it; when that refresh fails, the calls
that waited for it get the same error instead of each asking the STS again, so an STS that is
down costs one budget, not one per waiting call.

``TokenCredential`` is what a call shows (one object per call, as the seam's credentials):
the identity of its certificate (``ClientCertificate``), the header from the cache, and on a
401 ``refused()`` drops the token it showed (not a newer one another call fetched) and asks
for one resend; the seam asks at most once per call, so a 401 never loops.

No token value is logged, put in an error or shown in a repr.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from serviceplatform.errors import AccessTokenExpired, ServicePlatformError
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import ClientCertificate, TlsIdentity
from serviceplatform.outbound.kombi_sts import HOLDER_OF_KEY, AccessToken, TokenScope

log = logging.getLogger(__name__)

#: Default: a token is replaced this long before it expires (PY refreshes 5 min early, PHP
#: 60 s; an access token lives 3600 s).
DEFAULT_REFRESH_MARGIN: Final = 300.0


class Issuer(Protocol):
    """Gets a fresh access token (``kombi_sts.TokenIssuer`` or a test fake)."""

    def issue(self, scope: TokenScope) -> AccessToken: ...


@dataclass
class _Cached:
    value: str = field(repr=False)
    refresh_at: float


@dataclass
class _Slot:
    """One key's token, its refresh lock, and how the last refresh ended."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    token: _Cached | None = None
    #: Counts finished refreshes: a waiter that sees it move knows a refresh ran meanwhile.
    generation: int = 0
    failure: ServicePlatformError | None = None


class TokenCache:
    """Access tokens per scope and certificate, refreshed once under concurrency; thread-safe."""

    def __init__(
        self,
        issuer: Issuer,
        certificates: CertificateStore,
        *,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._certs = certificates
        self._margin = refresh_margin
        self._clock = clock
        self._slots: dict[Hashable, _Slot] = {}
        self._lock = threading.Lock()
        #: How many tokens were fetched (metrics and tests: "one token for many calls").
        self.issued = 0

    def credential(self, scope: TokenScope) -> TokenCredential:
        """The credential one call to ``scope``'s peer shows."""
        return TokenCredential(self, scope)

    def key(self, scope: TokenScope) -> Hashable:
        serial = self._certs.certificate(scope.certificate_alias).serial_number
        return (scope.authority_cvr, scope.entity_id, scope.certificate_alias, serial)

    def token(self, scope: TokenScope) -> str:
        """A valid access token for ``scope``, fetched when none is cached or it is due."""
        slot = self._slot(self.key(scope))
        cached = slot.token
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.value
        seen = slot.generation
        with slot.lock:
            cached = slot.token
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.value
            if slot.generation != seen and slot.failure is not None:
                # The refresh this call waited for failed: share its outcome.
                raise type(slot.failure)(slot.failure.detail)
            try:
                fresh = self._fetch(scope)
            except ServicePlatformError as exc:
                slot.failure = exc
                slot.token = None
                raise
            finally:
                slot.generation += 1
            slot.failure = None
            slot.token = fresh
            return fresh.value

    def drop(self, scope: TokenScope, value: str) -> None:
        """Forget ``value`` for ``scope`` if it is still the cached token (a peer refused it)."""
        slot = self._slot(self.key(scope))
        with slot.lock:
            if slot.token is not None and slot.token.value == value:
                slot.token = None
                log.info("access token for CVR %s dropped after a 401", scope.authority_cvr)

    def _fetch(self, scope: TokenScope) -> _Cached:
        started = self._clock()
        token = self._issuer.issue(scope)
        self.issued += 1
        margin = min(self._margin, token.expires_in / 4)
        if token.expires_in <= 0:
            raise AccessTokenExpired(
                f"CVR {scope.authority_cvr}, {scope.entity_id}: expires_in {token.expires_in:g}"
            )
        # Measured from before the request: the token's clock started while we waited.
        return _Cached(token.value, started + token.expires_in - margin)

    def _slot(self, key: Hashable) -> _Slot:
        slot = self._slots.get(key)
        if slot is None:
            with self._lock:
                slot = self._slots.setdefault(key, _Slot())
        return slot


@dataclass
class TokenCredential:
    """The seam credential of one call to a token-secured peer (see the module docstring)."""

    cache: TokenCache
    scope: TokenScope
    _shown: str | None = field(default=None, repr=False)

    def tls_identity(self, certificates: CertificateStore | None) -> TlsIdentity:
        # The access token is bound to this certificate: the call must show the same one.
        return ClientCertificate(self.scope.certificate_alias).tls_identity(certificates)

    def headers(self) -> Mapping[str, str]:
        self._shown = self.cache.token(self.scope)
        return {"Authorization": f"{HOLDER_OF_KEY} {self._shown}"}

    def refused(self) -> bool:
        if self._shown is None:
            return False
        self.cache.drop(self.scope, self._shown)
        return True

"""A token source that mints Beskedfordeler tokens with the sandbox STS key.

``[distributor.amqp] token_source = "sandbox-sts"`` (sandbox and tests only) names it through
``registry.TOKEN_SOURCES``. The holder-of-key certificate is the STS certificate itself:
Beskedfordeler reads only the authority CVR and the validity from the token, and the sandbox
has no other party to vouch for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from serviceplatform.client.token_minter import mint_assertion
from serviceplatform.config import Settings
from serviceplatform.errors import ConfigurationError

#: A cached token is replaced this long before it expires.
TOKEN_REFRESH_MARGIN: Final = timedelta(minutes=5)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxStsTokenSource:
    """Mints tokens with a test STS key, cached per CVR until shortly before they expire.

    Thread-safe.
    """

    def __init__(
        self,
        sts_key: RSAPrivateKey,
        sts_cert: x509.Certificate,
        issuer: str,
        audience: str,
        *,
        ttl: timedelta = timedelta(hours=8),
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if ttl <= TOKEN_REFRESH_MARGIN:
            raise ValueError(f"the token lifetime must exceed {TOKEN_REFRESH_MARGIN}")
        self._key = sts_key
        self._cert = sts_cert
        self.issuer = issuer
        self.audience = audience
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, datetime]] = {}

    @classmethod
    def from_files(
        cls, key_path: Path, cert_path: Path, issuer: str, audience: str
    ) -> SandboxStsTokenSource:
        """Load the STS key and certificate (PEM); unreadable files are a ConfigurationError."""
        try:
            key = load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"the sandbox STS key or certificate: {exc}") from exc
        if not isinstance(key, RSAPrivateKey):
            raise ConfigurationError(f"the sandbox STS key {key_path} is not an RSA key")
        return cls(key, cert, issuer, audience)

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxStsTokenSource:
        """The source ``[distributor.amqp]`` describes (its sts_key, sts_cert, sts_issuer)."""
        amqp = settings.distributor.amqp
        missing = [
            name
            for name, value in (
                ("sts_key", amqp.sts_key),
                ("sts_cert", amqp.sts_cert),
                ("sts_issuer", amqp.sts_issuer),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(
                f"token_source = sandbox-sts needs [distributor.amqp] {', '.join(missing)}"
            )
        return cls.from_files(
            settings.path(amqp.sts_key),
            settings.path(amqp.sts_cert),
            amqp.sts_issuer,
            amqp.token_audience,
        )

    def token_for(self, authority_cvr: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(authority_cvr)
            if cached is not None and now < cached[1] - TOKEN_REFRESH_MARGIN:
                return cached[0]
            assertion = mint_assertion(
                sts_key=self._key,
                sts_cert=self._cert,
                issuer=self.issuer,
                audience=self.audience,
                authority_cvr=authority_cvr,
                holder_cert=self._cert,
                now=now,
                ttl=self._ttl,
            )
            text = etree.tostring(assertion, encoding="unicode")
            self._cache[authority_cvr] = (text, now + self._ttl)
            return text

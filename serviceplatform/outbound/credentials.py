"""What a call shows a peer to prove who is calling: the credential objects of the seam.

A transport asks a ``Credential`` two things before it sends, and tells it one thing after:

- ``tls_identity(certificates)``: the client certificate for mutual TLS (None: none), checked
  usable before any I/O (``CertificateExpired``, ``CertificateUnavailable``). The
  transport keeps one connection pool per identity ``key``, so calls with the same
  certificate share TLS connections and a renewed certificate gets new ones;
- ``headers()``: what the credential adds to the request (``Authorization``, ...);
- ``refused()``: the peer answered 401 to these headers; True asks the transport to send the
  request once more with fresh ``headers()`` (a token credential fetches a new token), False
  leaves the 401 an error. The transport asks at most once per call, so there is no loop.

``ClientCertificate`` (mutual TLS with a certificate of the store, the NemSMS register),
``BasicAuth`` (a Domibus WS plugin user) and ``NO_CREDENTIAL`` are today's kinds. A token
credential is one more class: the identity of its certificate, an ``Authorization`` header
from its token source, and ``refused()`` dropping the cached token.
"""

from __future__ import annotations

import base64
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from serviceplatform.errors import ConfigurationError
from serviceplatform.outbound.certstore import CertificateStore


@dataclass(frozen=True)
class TlsIdentity:
    """A client certificate, checked usable, as the files ``ssl`` loads."""

    #: Connections are pooled per key: equal keys must mean the same certificate and key.
    key: Hashable
    cert_file: str
    key_file: str


class Credential(Protocol):
    """How a call proves the caller's identity to a peer (see the module docstring)."""

    def tls_identity(self, certificates: CertificateStore | None) -> TlsIdentity | None: ...

    def headers(self) -> Mapping[str, str]: ...

    def refused(self) -> bool: ...


_NO_HEADERS: Final[Mapping[str, str]] = {}


@dataclass(frozen=True)
class ClientCertificate:
    """Mutual TLS with the store's certificate ``alias`` (the one an agreement chose)."""

    alias: str

    def tls_identity(self, certificates: CertificateStore | None) -> TlsIdentity:
        if certificates is None:
            raise ConfigurationError(f"no certificate store for client certificate {self.alias!r}")
        # Checked before any I/O: an expired or exposed certificate never reaches a handshake.
        cert_file, key_file, certificate = certificates.client_identity(self.alias)
        return TlsIdentity((self.alias, certificate.serial_number), cert_file, key_file)

    def headers(self) -> Mapping[str, str]:
        return _NO_HEADERS

    def refused(self) -> bool:
        return False  # another handshake with the same certificate cannot change the answer


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic authentication (RFC 7617, UTF-8), without a client certificate."""

    username: str
    #: Never in a repr: credentials end up in log lines through reprs.
    password: str = field(repr=False)

    def tls_identity(self, certificates: CertificateStore | None) -> TlsIdentity | None:
        return None

    def headers(self) -> Mapping[str, str]:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def refused(self) -> bool:
        return False


@dataclass(frozen=True)
class NoCredential:
    """Nothing shown: server-authenticated TLS or plain HTTP."""

    def tls_identity(self, certificates: CertificateStore | None) -> TlsIdentity | None:
        return None

    def headers(self) -> Mapping[str, str]:
        return _NO_HEADERS

    def refused(self) -> bool:
        return False


NO_CREDENTIAL: Final = NoCredential()

"""The one HTTP call of the AS4 sender, through the outbound seam: POST a packed message.

``post_message`` hands the packed message to the seam's ``HttpTransport``
(``serviceplatform.outbound``) as an ``OutboundRequest`` like every other peer call: TLS
against the partner's ``ca_cert`` (no environment, no redirects), a client certificate when
the partner asks for two-way TLS (optional in AS4), the answer read within ``MAX_ANSWER_BYTES``
and the deadline, and library errors translated once, there (``outbound.translate``).

Unlike the other peers, an AS4 partner's non-2xx answer is meaningful (Domibus answers an
``eb:Error`` signal with HTTP 500), so the request is marked ``any_status``: every HTTP answer
comes back as it is and the sender reads it; only failures without an answer raise. It is
also not idempotent for the transport (never repeated there): AS4 reception awareness
resends on the PMode's schedule, in ``sender.As4Sender``.

``open_transport`` is the same for ``[peers.<name>] kind = "as4"``.

One transport is kept open per target (``_transport``): building one means an SSL context
with its CA store, tens of milliseconds of CPU, and a kept-alive connection saves the next
message its handshake. Partners are static configuration, so the cache stays small; a
transport that falls out of it is closed by the garbage collector once no send holds it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Protocol

from serviceplatform.config import PeerSettings
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import NO_CREDENTIAL, Credential, TlsIdentity
from serviceplatform.outbound.transport import HttpTransport

#: A receipt or an error signal is a few KB; anything near this is not one.
MAX_ANSWER_BYTES: Final = 1024 * 1024
#: The peer name in the seam's log lines and error details.
PEER: Final = "as4"


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class HttpTarget:
    """Where and how to reach a partner's access point."""

    url: str
    ca_cert: str | None = None
    #: (certificate file, key file) for two-way TLS, when the partner asks for it.
    client_cert: tuple[str, str] | None = None
    connect_timeout: float = 5.0
    timeout: float = 60.0


class Post(Protocol):
    """The shape of ``post_message``, so tests can stand in."""

    def __call__(self, target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer: ...


@dataclass(frozen=True)
class _ClientFiles:
    """A client certificate given as files (the partner's two-way TLS)."""

    cert_file: str
    key_file: str

    def tls_identity(self, certificates: CertificateStore | None) -> TlsIdentity:
        key: Hashable = (self.cert_file, self.key_file)
        return TlsIdentity(key, self.cert_file, self.key_file)

    def headers(self) -> Mapping[str, str]:
        return {}

    def refused(self) -> bool:
        return False


def peer_settings(target: HttpTarget) -> PeerSettings:
    """The seam's peer settings for ``target``: its timeouts, no transport-level retries."""
    return PeerSettings(
        kind="as4",
        base_url=target.url,
        ca_cert=target.ca_cert or "",
        connect_timeout_seconds=target.connect_timeout,
        read_timeout_seconds=target.timeout,
        budget_seconds=target.connect_timeout + target.timeout,
        max_retries=0,
        pool_size=1,
    )


def open_transport(
    name: str, settings: PeerSettings, certificates: CertificateStore | None
) -> HttpTransport:
    """The peer kind ``as4``: the seam's transport with the answer size cap."""
    return HttpTransport(settings, certificates, peer=name, max_response_bytes=MAX_ANSWER_BYTES)


@lru_cache(maxsize=64)
def _transport(target: HttpTarget) -> HttpTransport:
    return open_transport(PEER, peer_settings(target), None)


def post_message(target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer:
    """POST ``body`` to ``target``; the answer whatever its status, or one SP-4xx error."""
    credential: Credential = (
        _ClientFiles(*target.client_cert) if target.client_cert else NO_CREDENTIAL
    )
    request = OutboundRequest(
        "POST",
        "",
        body=body,
        headers={"Content-Type": content_type, "MIME-Version": "1.0"},
        idempotent=False,
        any_status=True,
    )
    response = _transport(target).send(request, credential=credential)
    return HttpAnswer(response.status, response.headers.get("Content-Type", ""), response.body)

"""What a validated request tells the rest of the platform about its caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509


@dataclass(frozen=True)
class SecurityContext:
    """The facts established by inbound security validation, all of them verified."""

    #: ``dk:gov:saml:attribute:CvrNumberIdentifier``: the authority, the routing key.
    authority_cvr: str
    #: The holder-of-key certificate: the calling (consumer) system's certificate.
    holder_cert: x509.Certificate
    #: RFC 4514 subject of ``holder_cert``.
    holder_subject: str
    #: SHA-256 fingerprint of ``holder_cert`` (lower-case hex, no separators).
    holder_fingerprint: str
    issuer: str
    audience: str
    assertion_id: str
    token_not_on_or_after: datetime
    message_id: str
    action: str
    to: str
    #: ``RequestHeader/TransactionUUID`` when the caller sent one *and signed it*; None
    #: otherwise (an unsigned value is ignored as if absent).
    transaction_uuid: str | None = None

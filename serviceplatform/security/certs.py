"""Certificates as the validator uses them: parsed once, with the derived values precomputed.

A case system sends the same holder-of-key certificate (base64 in its token) with every
request for hours, so parsed certificates are kept in a small LRU keyed by that text.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HOLDER_CACHE_SIZE = 256


@dataclass(frozen=True)
class KnownCert:
    cert: x509.Certificate
    #: None when the key is not RSA: such a key cannot have made an RSA-SHA256 signature.
    rsa_key: RSAPublicKey | None
    #: DER SubjectPublicKeyInfo: a renewed certificate for the same key matches.
    spki: bytes
    #: SHA-256 of the DER certificate, lower-case hex.
    fingerprint: str
    #: RFC 4514 subject.
    subject: str


def known_cert(cert: x509.Certificate) -> KnownCert:
    key = cert.public_key()
    return KnownCert(
        cert=cert,
        rsa_key=key if isinstance(key, RSAPublicKey) else None,
        spki=key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        subject=cert.subject.rfc4514_string(),
    )


@lru_cache(maxsize=HOLDER_CACHE_SIZE)
def cert_from_b64(text: str) -> KnownCert:
    """The certificate whose DER is ``text`` (base64 without whitespace).

    Raises ValueError when ``text`` is not a certificate with a supported key.
    """
    try:
        der = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("the certificate is not base64") from exc
    try:
        return known_cert(x509.load_der_x509_certificate(der))
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"the certificate's key is not supported: {exc}") from exc

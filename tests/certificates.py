"""Certificates made in memory for tests of consumer systems: any subject, from any test CA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from serviceplatform.sandbox.pki import CertificateAuthority, new_ca, parse_subject

CASE_SUBJECT = "CN=case system,O=Supplier,C=DK"


@dataclass(frozen=True)
class MadeCert:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()


def make_cert(
    subject: str = CASE_SUBJECT,
    *,
    ca: CertificateAuthority | None = None,
    not_before: datetime | None = None,
    days: float = 365,
) -> MadeCert:
    """A client certificate with ``subject``, signed by ``ca`` (a new test CA by default)."""
    issuer = ca or new_ca("CN=Test CA,O=Tests,C=DK")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = not_before or datetime.now(UTC) - timedelta(hours=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(parse_subject(subject))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer.key, hashes.SHA256())
    )
    return MadeCert(cert, key)

"""The sandbox's test PKI: one private CA and the certificates every sandbox party needs.

``ensure_pki(directory)`` creates, on first call, a CA and, signed by it, the STS signing
certificate, the case system's holder-of-key certificate, the platform's outward (FOCES-like)
client certificate towards the NemSMS register, and the register's TLS server certificate.
Later calls reuse the files, so tokens and trust set up by one sandbox run stay valid in the
next. ``issue_certificate`` makes further certificates from the same CA, e.g. expired or
not-yet-valid ones for tests.

Everything is PEM, RSA 2048 and SHA-256; private keys are written with mode 0600. The keys
are test material only: nothing here is fit for production.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from serviceplatform.errors import ConfigurationError

#: ``saml:Issuer`` of the tokens the sandbox STS key signs.
STS_ISSUER = "https://sts.sandbox.serviceplatform.local"

CA_SUBJECT = "CN=Serviceplatform Sandbox Test CA,O=Serviceplatform Sandbox,C=DK"
STS_SUBJECT = "CN=sandbox-sts (funktionscertifikat),O=Sandbox STS,C=DK"
CLIENT_SUBJECT = (
    "CN=sandbox-case-system (funktionscertifikat),serialNumber=CVR:12345674-FID:1,"
    "O=Sandbox Supplier,C=DK"
)
PLATFORM_REGISTER_SUBJECT = (
    "CN=serviceplatform-sandbox (FOCES),serialNumber=CVR:19435075-FID:1,"
    "O=Serviceplatform Sandbox,C=DK"
)
NEMSMS_SERVER_SUBJECT = "CN=localhost,O=Sandbox NemSMS Register,C=DK"

_VALIDITY = timedelta(days=3650)
# Backdated a little so a freshly made certificate is valid on a peer whose clock lags.
_BACKDATE = timedelta(hours=1)
_KEY_SIZE = 2048
# RFC 4514 names cryptography does not know by default but Danish certificates use.
_NAME_OVERRIDES = {"serialNumber": NameOID.SERIAL_NUMBER}


@dataclass(frozen=True)
class Pki:
    """Absolute paths of the sandbox PKI files (PEM)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    sts_cert: Path
    sts_key: Path
    client_cert: Path
    client_key: Path
    platform_register_cert: Path
    platform_register_key: Path
    nemsms_server_cert: Path
    nemsms_server_key: Path


@dataclass(frozen=True)
class CertificateAuthority:
    """A loaded CA: what ``issue_certificate`` signs with."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def parse_subject(subject: str | x509.Name) -> x509.Name:
    """An ``x509.Name`` from an RFC 4514 string (``serialNumber=`` understood) or a Name."""
    if isinstance(subject, x509.Name):
        return subject
    try:
        return x509.Name.from_rfc4514_string(subject, _NAME_OVERRIDES)
    except ValueError as exc:
        raise ConfigurationError(f"not an RFC 4514 subject: {subject!r}") from exc


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    # Write beside, then rename: a reader never sees half a file, and a key file never
    # exists with looser permissions than 0600, not even for a moment.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if private:
        os.chmod(path, 0o600)


def _write_pair(prefix: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> tuple[Path, Path]:
    cert_path = prefix.with_name(prefix.name + ".crt")
    key_path = prefix.with_name(prefix.name + ".key")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(key_path, key_pem, private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert_path.resolve(), key_path.resolve()


def _create_ca(prefix: Path) -> CertificateAuthority:
    ca = new_ca(CA_SUBJECT)
    _write_pair(prefix, ca.cert, ca.key)
    return ca


def new_ca(subject: str) -> CertificateAuthority:
    """A self-signed test CA (RSA 2048, ten years, backdated an hour), kept in memory."""
    key = _new_key()
    name = parse_subject(subject)
    now = _utc_now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(cert, key)


def load_ca(cert_path: Path, key_path: Path) -> CertificateAuthority:
    """Read a CA written by ``ensure_pki`` (``pki.ca_cert``, ``pki.ca_key``)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"the sandbox CA in {cert_path.parent} cannot be read") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"the sandbox CA key {key_path} is not an RSA key")
    return CertificateAuthority(cert, key)


def issue_certificate(
    ca: CertificateAuthority,
    subject: str | x509.Name,
    *,
    not_before: datetime,
    not_after: datetime,
    server: bool = False,
    path_prefix: Path,
    key: rsa.RSAPrivateKey | None = None,
) -> tuple[Path, Path]:
    """Issue a certificate signed by ``ca`` and write ``<path_prefix>.crt`` / ``.key``.

    ``server`` makes a TLS server certificate for ``localhost`` / ``127.0.0.1``; otherwise a
    client and signing certificate. Returns the absolute (cert, key) paths.
    """
    key = key or _new_key()
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(parse_subject(subject))
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=not server,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    return _write_pair(path_prefix, cert, key)


def _paths(directory: Path) -> Pki:
    d = directory.resolve()
    return Pki(
        directory=d,
        ca_cert=d / "ca.crt",
        ca_key=d / "ca.key",
        sts_cert=d / "sts.crt",
        sts_key=d / "sts.key",
        client_cert=d / "client.crt",
        client_key=d / "client.key",
        platform_register_cert=d / "platform-register.crt",
        platform_register_key=d / "platform-register.key",
        nemsms_server_cert=d / "nemsms-server.crt",
        nemsms_server_key=d / "nemsms-server.key",
    )


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two sandbox processes (or test workers) starting together must not each make a CA.
    with open(directory / ".pki.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_pki(directory: Path) -> Pki:
    """Create the sandbox PKI in ``directory`` unless it is there already; return its paths.

    Missing leaf certificates are re-issued from the existing CA; a missing CA makes every
    certificate new (a leaf signed by a lost CA would no longer chain).
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the PKI directory {directory}") from exc
    pki = _paths(directory)
    leaves = (
        (pki.sts_cert, pki.sts_key, STS_SUBJECT, False),
        (pki.client_cert, pki.client_key, CLIENT_SUBJECT, False),
        (pki.platform_register_cert, pki.platform_register_key, PLATFORM_REGISTER_SUBJECT, False),
        (pki.nemsms_server_cert, pki.nemsms_server_key, NEMSMS_SERVER_SUBJECT, True),
    )
    with _locked(pki.directory):
        if pki.ca_cert.is_file() and pki.ca_key.is_file():
            ca = load_ca(pki.ca_cert, pki.ca_key)
            fresh = False
        else:
            ca = _create_ca(pki.directory / "ca")
            fresh = True
        now = _utc_now()
        for cert_path, key_path, subject, server in leaves:
            if fresh or not (cert_path.is_file() and key_path.is_file()):
                issue_certificate(
                    ca,
                    subject,
                    not_before=now - _BACKDATE,
                    not_after=now + _VALIDITY,
                    server=server,
                    path_prefix=cert_path.with_suffix(""),
                )
    return pki

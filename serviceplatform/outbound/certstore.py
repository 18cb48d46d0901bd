"""The outward client certificates, by alias, from one directory of PEM files.

An administrator chooses per agreement *which* certificate the platform shows the NemSMS
register (SPEC §3.2). The store holds them as ``<alias>.crt`` (the certificate, optionally
followed by its chain) and ``<alias>.key`` (the unencrypted private key), and hands the
transport the two paths only after checking that the pair is readable, matches, and is valid
now: an expired certificate must fail here with a clear error, never in a peer's TLS
handshake.

Parsing is cached by (path, mtime, size), so the check costs a ``stat`` per call and a file
replaced in place (certificate renewal) is picked up on the next call. Private key material
never appears in an error or a listing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from serviceplatform.errors import CertificateExpired, CertificateUnavailable

# An alias names two files: no separators, no leading dot, nothing a shell would mangle.
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class CertInfo:
    """One certificate of the store, for listings (``serviceplatform certificates``)."""

    alias: str
    subject: str
    issuer: str
    not_before: datetime | None
    not_after: datetime | None
    #: Whole days until ``not_after`` (negative once expired); None when unreadable.
    days_to_expiry: int | None
    #: Why the pair cannot be used (missing or mismatching key, unreadable, expired), else None.
    problem: str | None = None


@dataclass(frozen=True)
class _Parsed:
    cert: x509.Certificate
    #: Set when the key is missing, unreadable or does not belong to the certificate.
    key_problem: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _spki(public: PublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _parse_pair(alias: str, cert_path: Path, key_path: Path) -> _Parsed:
    try:
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateUnavailable(f"certificate {alias!r} cannot be read") from exc
    cert = certs[0]
    try:
        key_pem = key_path.read_bytes()
    except OSError:
        return _Parsed(cert, f"the private key of {alias!r} is missing or unreadable")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        return _Parsed(cert, f"the private key of {alias!r} is encrypted")
    except (ValueError, UnsupportedAlgorithm):
        # Deliberately no detail from the parser: it could quote the key file.
        return _Parsed(cert, f"the private key of {alias!r} is not a PEM private key")
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return _Parsed(cert, f"the private key of {alias!r} does not match its certificate")
    return _Parsed(cert, None)


class CertificateStore:
    """Client certificate pairs by alias from ``directory``; safe to share between threads."""

    def __init__(self, directory: Path, clock: Callable[[], datetime] = _utc_now) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._cache: dict[str, tuple[tuple[object, ...], _Parsed]] = {}
        self._lock = threading.Lock()

    def paths(self, alias: str) -> tuple[Path, Path]:
        """The (certificate, key) file paths of ``alias``, whether or not they exist."""
        if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
            raise CertificateUnavailable(f"{alias!r} is not a valid certificate alias")
        return (self.directory / f"{alias}.crt", self.directory / f"{alias}.key")

    def client_pair(self, alias: str) -> tuple[str, str]:
        """Paths for ``requests``' ``cert=`` after checking the pair is usable right now.

        Raises ``CertificateUnavailable`` (missing, unreadable, key does not match) or
        ``CertificateExpired`` (outside its validity period).
        """
        cert_path, key_path = self.paths(alias)
        parsed = self._parsed(alias, cert_path, key_path)
        if parsed.key_problem is not None:
            raise CertificateUnavailable(parsed.key_problem)
        problem = _validity_problem(alias, parsed.cert, self._clock())
        if problem is not None:
            raise CertificateExpired(problem)
        return (str(cert_path), str(key_path))

    def certificate(self, alias: str) -> x509.Certificate:
        """The parsed certificate of ``alias`` (no validity check)."""
        cert_path, key_path = self.paths(alias)
        return self._parsed(alias, cert_path, key_path).cert

    def list(self) -> list[CertInfo]:
        """Every ``*.crt`` of the directory, sorted by alias, with what is wrong with it."""
        try:
            cert_files = sorted(self.directory.glob("*.crt"))
        except OSError:
            return []
        now = self._clock()
        infos: list[CertInfo] = []
        for cert_path in cert_files:
            alias = cert_path.stem
            if not _ALIAS.fullmatch(alias):
                continue
            try:
                parsed = self._parsed(alias, cert_path, cert_path.with_suffix(".key"))
            except CertificateUnavailable as exc:
                infos.append(CertInfo(alias, "", "", None, None, None, exc.error_text))
                continue
            cert = parsed.cert
            not_after = cert.not_valid_after_utc
            infos.append(
                CertInfo(
                    alias=alias,
                    subject=cert.subject.rfc4514_string(),
                    issuer=cert.issuer.rfc4514_string(),
                    not_before=cert.not_valid_before_utc,
                    not_after=not_after,
                    days_to_expiry=int((not_after - now).total_seconds() // _SECONDS_PER_DAY),
                    problem=parsed.key_problem or _validity_problem(alias, cert, now),
                )
            )
        return infos

    def _parsed(self, alias: str, cert_path: Path, key_path: Path) -> _Parsed:
        cert_stamp = _stamp(cert_path)
        if cert_stamp is None:
            raise CertificateUnavailable(f"no certificate {alias!r} in the certificate store")
        stamp = (cert_path, cert_stamp, key_path, _stamp(key_path))
        cached = self._cache.get(alias)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        parsed = _parse_pair(alias, cert_path, key_path)
        with self._lock:
            self._cache[alias] = (stamp, parsed)
        return parsed


def _validity_problem(alias: str, cert: x509.Certificate, now: datetime) -> str | None:
    if now < cert.not_valid_before_utc:
        return f"certificate {alias!r} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}"
    if now > cert.not_valid_after_utc:
        return f"certificate {alias!r} expired on {cert.not_valid_after_utc:%Y-%m-%d}"
    return None

"""The outward client certificates, by alias, from one directory of PEM files.

An administrator chooses per agreement *which* certificate the platform shows the NemSMS
register (SPEC §3.2). The store holds them as ``<alias>.crt`` (the certificate, optionally
followed by its chain) and ``<alias>.key`` (the unencrypted private key), and hands the
transport the two paths only after checking that the pair is readable, matches, is private to
the platform's user, and is valid now: an expired certificate must fail here with a clear
error, never in a peer's TLS handshake.

Parsing is cached by (path, mtime, size, inode), so the check costs a ``stat`` per call and a
file replaced in place (certificate renewal, ``import_pem(..., replace=True)``) is picked up
on the next call. An outward call's check (``client_identity``) is cheaper still once a pair
has passed it: while both files' ``stat`` results (the key's mode and owner included) are
unchanged, only the validity period is checked again, against the clock of that call.
Private key material never appears in an error or a listing.

Why the key file's permissions are checked on every use: the key proves the platform's
identity (a FOCES/OCES function certificate) towards the register on behalf of every
authority. OpenSSL reads a key whatever its mode, so a key left readable by group or others
(``cp`` under the default umask makes 0644) would work fine while any local account could copy
it and impersonate the platform. Like ``ssh`` with an unprotected identity file, the store
refuses such a key (``CertificateUnavailable``) and names the fix, and ``list()`` reports it.
A key owned by another user is refused for the same reason: its owner can loosen the mode at
any time.

``import_pem`` and ``import_pkcs12`` write a pair the way the checks want it: the key as
unencrypted PKCS#8 PEM with mode 0600, the certificate (and chain) with mode 0644, each written
to a temporary file and renamed into place, in a directory created with mode 0700.
"""

from __future__ import annotations

import builtins  # the method ``list`` shadows the type inside the class
import contextlib
import hashlib
import os
import re
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from serviceplatform.errors import (
    CertificateAliasTaken,
    CertificateExpired,
    CertificateUnavailable,
)

# An alias names two files: no separators, no leading dot, nothing a shell would mangle.
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SECONDS_PER_DAY = 86400
#: Modes of what ``import_*`` writes.
KEY_MODE, CERT_MODE, DIRECTORY_MODE = 0o600, 0o644, 0o700
# Danish (OCES/FOCES) certificates carry "serialNumber=CVR:...-FID:..."; name it, not 2.5.4.5.
_NAMES = {NameOID.SERIAL_NUMBER: "serialNumber"}
# PKCS#8 and traditional (OpenSSL) encrypted PEM keys.
_ENCRYPTED_PEM = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


@dataclass(frozen=True)
class CertInfo:
    """One certificate of the store, for listings (``serviceplatform certs``)."""

    alias: str
    subject: str
    issuer: str
    not_before: datetime | None
    not_after: datetime | None
    #: Whole days until ``not_after`` (negative once expired); None when unreadable.
    days_to_expiry: int | None
    #: The first of ``problems``, else None.
    problem: str | None = None
    #: The serial number, lower-case hex; None when unreadable.
    serial: str | None = None
    #: SHA-256 of the certificate's DER encoding, lower-case hex; None when unreadable.
    fingerprint: str | None = None
    expired: bool = False
    not_yet_valid: bool = False
    #: Every reason the pair cannot be used now, in this order: the certificate or key file
    #: (unreadable, missing, encrypted, mismatching), the key file's owner and mode, and last
    #: the validity period (expired, not yet valid).
    problems: tuple[str, ...] = ()
    #: Certificates following the leaf in ``<alias>.crt`` (its chain).
    chain_length: int = 0

    @property
    def usable(self) -> bool:
        """True when ``client_pair`` would hand out the pair now."""
        return not self.problems

    def expires_within(self, days: int) -> bool:
        """True when expired or ``not_after`` is less than ``days`` days away."""
        return self.days_to_expiry is not None and self.days_to_expiry < days


#: What ``client_identity`` may reuse: (certificate stat, key stat incl. mode and owner).
_Stamps = tuple[tuple[int, int, int], tuple[int, int, int, int, int]]


@dataclass(frozen=True)
class _Ready:
    """A pair that passed every check of ``client_identity``, with what those checks read."""

    cert_file: str
    key_file: str
    stamps: _Stamps
    not_before: datetime
    not_after: datetime
    answer: tuple[str, str, x509.Certificate]


@dataclass(frozen=True)
class _Parsed:
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    #: Set when the key is missing, unreadable or does not belong to the certificate.
    key_problem: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _stamp_of(st)


def _stamp_of(st: os.stat_result | bool | None) -> tuple[int, int, int] | None:
    if not isinstance(st, os.stat_result):
        return None
    # The inode too: an atomic replace within the same clock tick still counts as a change.
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _key_stamp(st: os.stat_result) -> tuple[int, int, int, int, int]:
    # Mode and owner too: the permission check depends on them, and chmod leaves mtime.
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid)


def _ready_stamps(cert_file: str, key_file: str) -> _Stamps | None:
    """What ``client_identity``'s reuse compares: both files' stats; None if one is gone."""
    try:
        cert_st = os.stat(cert_file)
        key_st = os.stat(key_file)
    except OSError:
        return None
    return ((cert_st.st_mtime_ns, cert_st.st_size, cert_st.st_ino), _key_stamp(key_st))


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
    chain = tuple(certs[1:])
    try:
        key_pem = key_path.read_bytes()
    except OSError:
        return _Parsed(cert, chain, f"the private key of {alias!r} is missing or unreadable")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        return _Parsed(cert, chain, f"the private key of {alias!r} is encrypted")
    except (ValueError, UnsupportedAlgorithm):
        # Deliberately no detail from the parser: it could quote the key file.
        return _Parsed(cert, chain, f"the private key of {alias!r} is not a PEM private key")
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return _Parsed(cert, chain, f"the private key of {alias!r} does not match its certificate")
    return _Parsed(cert, chain, None)


def exposure(mode: int) -> str | None:
    """``"readable"`` or ``"writable"`` when group or others may read or write a file of this
    mode (its permission bits); None when it is private to its owner."""
    if not mode & 0o077:
        return None
    return "readable" if mode & 0o044 else "writable"


def key_file_problem(key_path: Path) -> str | None:
    """Why ``key_path`` is not private to this process's user, or None (also when missing).

    The text names the file, not its directory: it reaches callers in SOAP faults.
    """
    try:
        st = key_path.stat()
    except OSError:
        return None  # a missing or unreadable key is reported by parsing
    return _key_stat_problem(key_path, st)


def _key_stat_problem(key_path: Path, st: os.stat_result) -> str | None:
    mode = stat.S_IMODE(st.st_mode)
    uid = os.geteuid()
    if st.st_uid != uid:
        return (
            f"private key file {key_path.name} is owned by uid {st.st_uid}, not by the "
            f"platform's user (uid {uid}); chown it and chmod 600"
        )
    what = exposure(mode)
    if what is not None:
        return f"private key file {key_path.name} is {what} by others (mode {mode:04o}); chmod 600"
    return None


class CertificateStore:
    """Client certificate pairs by alias from ``directory``; safe to share between threads."""

    def __init__(self, directory: Path, clock: Callable[[], datetime] = _utc_now) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._cache: dict[str, tuple[tuple[object, ...], _Parsed]] = {}
        #: Pairs that passed ``client_identity``, by alias: reused while their stats hold.
        self._ready: dict[str, _Ready] = {}
        self._lock = threading.Lock()

    def paths(self, alias: str) -> tuple[Path, Path]:
        """The (certificate, key) file paths of ``alias``, whether or not they exist."""
        if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
            raise CertificateUnavailable(f"{alias!r} is not a valid certificate alias")
        return (self.directory / f"{alias}.crt", self.directory / f"{alias}.key")

    def client_pair(self, alias: str) -> tuple[str, str]:
        """Paths for ``requests``' ``cert=`` after checking the pair is usable right now.

        Raises ``CertificateUnavailable`` (missing, unreadable, key does not match, key file
        readable by others or owned by another user) or ``CertificateExpired`` (outside its
        validity period).
        """
        cert_file, key_file, _ = self.client_identity(alias)
        return (cert_file, key_file)

    def client_identity(self, alias: str) -> tuple[str, str, x509.Certificate]:
        """``client_pair``'s paths, after the same checks, and the certificate they hold.

        For every outward call: one ``stat`` per file, the key's serving both the cache
        check and the permission check. While neither stat changed since the pair last
        passed, the key's parse and permissions are known good and only the validity period
        is checked again (a ``chmod`` changes the key's mode, a renewal its inode or mtime).
        """
        ready = self._ready.get(alias)
        if ready is not None:
            stamps = _ready_stamps(ready.cert_file, ready.key_file)
            if stamps == ready.stamps and ready.not_before <= self._clock() <= ready.not_after:
                return ready.answer
        cert_path, key_path = self.paths(alias)
        try:
            key_stat: os.stat_result | None = key_path.stat()
        except OSError:
            key_stat = None
        parsed = self._parsed(alias, cert_path, key_path, key_stat)
        if parsed.key_problem is not None:
            raise CertificateUnavailable(parsed.key_problem)
        permissions = _key_stat_problem(key_path, key_stat) if key_stat is not None else None
        if permissions is not None:
            raise CertificateUnavailable(permissions)
        problem = _validity_problem(alias, parsed.cert, self._clock())
        if problem is not None:
            raise CertificateExpired(problem)
        cert_file, key_file = str(cert_path), str(key_path)
        answer = (cert_file, key_file, parsed.cert)
        stamps = _ready_stamps(cert_file, key_file)
        cached = self._cache.get(alias)
        # Remembered only if the files are still the ones parsed and checked above.
        if (
            stamps is not None
            and key_stat is not None
            and stamps[1] == _key_stamp(key_stat)
            and cached is not None
            and cached[1] is parsed
            and cached[0][1] == stamps[0]
        ):
            self._ready[alias] = _Ready(
                cert_file,
                key_file,
                stamps,
                parsed.cert.not_valid_before_utc,
                parsed.cert.not_valid_after_utc,
                answer,
            )
        return answer

    def certificate(self, alias: str) -> x509.Certificate:
        """The parsed certificate of ``alias`` (no validity check)."""
        cert_path, key_path = self.paths(alias)
        return self._parsed(alias, cert_path, key_path).cert

    def info(self, alias: str) -> CertInfo:
        """What ``list()`` says about ``alias``; ``CertificateUnavailable`` when it is absent."""
        cert_path, _ = self.paths(alias)
        if _stamp(cert_path) is None:
            raise CertificateUnavailable(f"no certificate {alias!r} in the certificate store")
        return self._info(alias, self._clock())

    def list(self) -> list[CertInfo]:
        """Every ``*.crt`` of the directory, sorted by alias, with what is wrong with it."""
        now = self._clock()
        return [self._info(alias, now) for alias in self._aliases()]

    def expiring(self, days: int) -> builtins.list[CertInfo]:
        """The certificates expiring in less than ``days`` days, the expired ones included.

        Unreadable certificates (no ``not_after``) are not among them: ``list()`` shows those.
        """
        return [info for info in self.list() if info.expires_within(days)]

    # --- administration -----------------------------------------------------------------

    def import_pem(
        self,
        alias: str,
        cert_pem: bytes,
        key_pem: bytes,
        *,
        password: bytes | None = None,
        replace: bool = False,
    ) -> CertInfo:
        """Store a PEM certificate (optionally followed by its chain) and its private key.

        ``password`` decrypts an encrypted key; the key is stored unencrypted (the platform
        must use it unattended) but readable by its owner only. Refuses an invalid alias,
        unreadable data, a wrong password and a key of another certificate
        (``CertificateUnavailable``), an expired certificate (``CertificateExpired``) and an
        alias in use unless ``replace`` (``CertificateAliasTaken``).
        """
        self.paths(alias)
        try:
            certs = x509.load_pem_x509_certificates(cert_pem)
        except ValueError as exc:
            raise CertificateUnavailable(
                f"the certificate data for {alias!r} holds no PEM X.509 certificate"
            ) from exc
        key = _load_pem_key(alias, key_pem, password)
        return self._install(alias, certs[0], key, certs[1:], replace=replace)

    def import_pkcs12(
        self, alias: str, data: bytes, password: bytes | None, *, replace: bool = False
    ) -> CertInfo:
        """Store the certificate, chain and key of a PKCS#12 (``.p12``/``.pfx``) file.

        Refuses what ``import_pem`` refuses, and a file without a key or certificate.
        """
        self.paths(alias)
        try:
            key, cert, chain = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            reason = (
                "not PKCS#12 data, or it needs a password"
                if password is None
                else "wrong password, or not PKCS#12 data"
            )
            raise CertificateUnavailable(
                f"the PKCS#12 data for {alias!r} cannot be read: {reason}"
            ) from exc
        if key is None or cert is None:
            missing = "private key" if key is None else "certificate"
            raise CertificateUnavailable(f"the PKCS#12 data for {alias!r} holds no {missing}")
        return self._install(alias, cert, key, chain, replace=replace)

    def remove(self, alias: str) -> None:
        """Delete both files of ``alias``; ``CertificateUnavailable`` when there is neither."""
        cert_path, key_path = self.paths(alias)
        if not (cert_path.exists() or key_path.exists()):
            raise CertificateUnavailable(f"no certificate {alias!r} in the certificate store")
        # Key first: a half-done removal leaves a certificate without key, reported as such.
        for path in (key_path, cert_path):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                # A directory the platform may not change: one line, as a write says it.
                raise CertificateUnavailable(f"cannot remove {path}: {exc.strerror}") from exc
        with self._lock:
            self._cache.pop(alias, None)
            self._ready.pop(alias, None)

    # --- internals ----------------------------------------------------------------------

    def _aliases(self) -> builtins.list[str]:
        try:
            cert_files = sorted(self.directory.glob("*.crt"))
        except OSError:
            return []
        return [p.stem for p in cert_files if _ALIAS.fullmatch(p.stem)]

    def _info(self, alias: str, now: datetime) -> CertInfo:
        cert_path, key_path = self.paths(alias)
        try:
            parsed = self._parsed(alias, cert_path, key_path)
        except CertificateUnavailable as exc:
            return CertInfo(
                alias, "", "", None, None, None, exc.error_text, problems=(exc.error_text,)
            )
        cert = parsed.cert
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        validity = _validity_problem(alias, cert, now)
        problems = tuple(p for p in (parsed.key_problem, key_file_problem(key_path), validity) if p)
        return CertInfo(
            alias=alias,
            subject=cert.subject.rfc4514_string(_NAMES),
            issuer=cert.issuer.rfc4514_string(_NAMES),
            not_before=not_before,
            not_after=not_after,
            days_to_expiry=int((not_after - now).total_seconds() // _SECONDS_PER_DAY),
            problem=problems[0] if problems else None,
            serial=f"{cert.serial_number:x}",
            fingerprint=_fingerprint(cert),
            expired=now > not_after,
            not_yet_valid=now < not_before,
            problems=problems,
            chain_length=len(parsed.chain),
        )

    def _parsed(
        self,
        alias: str,
        cert_path: Path,
        key_path: Path,
        key_stat: os.stat_result | bool | None = False,
    ) -> _Parsed:
        """The pair parsed, from the cache while neither file changed. ``key_stat``: the key
        file's ``stat`` if the caller has it (None: missing), False to stat it here."""
        cert_stamp = _stamp(cert_path)
        if cert_stamp is None:
            raise CertificateUnavailable(f"no certificate {alias!r} in the certificate store")
        key_stamp = _stamp(key_path) if key_stat is False else _stamp_of(key_stat)
        stamp = (cert_path, cert_stamp, key_path, key_stamp)
        cached = self._cache.get(alias)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        parsed = _parse_pair(alias, cert_path, key_path)
        with self._lock:
            self._cache[alias] = (stamp, parsed)
        return parsed

    def _install(
        self,
        alias: str,
        cert: x509.Certificate,
        key: PrivateKeyTypes,
        chain: Sequence[x509.Certificate],
        *,
        replace: bool,
    ) -> CertInfo:
        cert_path, key_path = self.paths(alias)
        if _spki(key.public_key()) != _spki(cert.public_key()):
            raise CertificateUnavailable(
                f"the private key given for {alias!r} does not belong to its certificate"
            )
        now = self._clock()
        if now > cert.not_valid_after_utc:
            raise CertificateExpired(
                f"certificate {cert.subject.rfc4514_string(_NAMES)} expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d}; {alias!r} was not imported"
            )
        if not replace and (cert_path.exists() or key_path.exists()):
            raise CertificateAliasTaken(
                f"{alias!r} is in use; replace it explicitly (certs import --replace)"
            )
        try:
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise CertificateUnavailable(
                f"the private key given for {alias!r} cannot be stored as PKCS#8"
            ) from exc
        cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain))
        self._ensure_directory()
        # Two renames, key first: a reader between them sees the new key with the old
        # certificate, which it refuses as a mismatch for that instant; it never sees half a
        # file. A crash between them leaves that mismatch for ``list()`` to report.
        _write_atomically(key_path, key_pem, KEY_MODE)
        _write_atomically(cert_path, cert_pem, CERT_MODE)
        return self._info(alias, now)

    def _ensure_directory(self) -> None:
        if self.directory.is_dir():
            return  # an existing directory's mode is the administrator's choice
        try:
            self.directory.mkdir(mode=DIRECTORY_MODE, parents=True)
            os.chmod(self.directory, DIRECTORY_MODE)  # mkdir's mode is subject to the umask
        except FileExistsError:
            pass
        except OSError as exc:
            raise CertificateUnavailable(
                f"cannot create the certificate store {self.directory}: {exc.strerror}"
            ) from exc


def _load_pem_key(alias: str, key_pem: bytes, password: bytes | None) -> PrivateKeyTypes:
    encrypted = any(marker in key_pem for marker in _ENCRYPTED_PEM)
    if encrypted and password is None:
        raise CertificateUnavailable(
            f"the private key given for {alias!r} is encrypted: give its password"
        )
    try:
        # A password given for an unencrypted key is not an error: there is nothing to undo.
        return serialization.load_pem_private_key(key_pem, password=password if encrypted else None)
    except ValueError:
        reason = "wrong password" if encrypted else "not a PEM private key"
    except TypeError:
        reason = "encrypted in a form the platform does not recognise"
    except UnsupportedAlgorithm:
        reason = "a key type the platform cannot use"
    # Deliberately no detail from the parser: it could quote the key data.
    raise CertificateUnavailable(f"the private key given for {alias!r}: {reason}")


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with exactly ``mode``, via a temporary file and a rename.

    The temporary file is created with ``mode`` already (a key never exists with looser
    permissions, not even for a moment) and renamed over ``path`` only when complete.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)  # os.open's mode is subject to the umask
            with os.fdopen(fd, "wb") as handle:
                fd = -1
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            if fd >= 0:
                os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise CertificateUnavailable(f"cannot write {path}: {exc.strerror}") from exc


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _validity_problem(alias: str, cert: x509.Certificate, now: datetime) -> str | None:
    if now < cert.not_valid_before_utc:
        return f"certificate {alias!r} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}"
    if now > cert.not_valid_after_utc:
        return f"certificate {alias!r} expired on {cert.not_valid_after_utc:%Y-%m-%d}"
    return None

"""The outward certificate store: usable pairs only, by alias, checked against a clock."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from serviceplatform.errors import CertificateAliasTaken, CertificateExpired, CertificateUnavailable
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.sandbox.pki import (
    PLATFORM_REGISTER_SUBJECT,
    CertificateAuthority,
    Pki,
    ensure_pki,
    issue_certificate,
    load_ca,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def ca(tpki: Pki) -> CertificateAuthority:
    return load_ca(tpki.ca_cert, tpki.ca_key)


def issue(ca: CertificateAuthority, directory: Path, alias: str, days: int = 365) -> None:
    issue_certificate(
        ca,
        PLATFORM_REGISTER_SUBJECT,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=days),
        path_prefix=directory / alias,
    )


def store(directory: Path, now: datetime = NOW) -> CertificateStore:
    return CertificateStore(directory, clock=lambda: now)


def test_valid_pair_gives_paths(ca, tmp_path):
    issue(ca, tmp_path, "reg")
    cert, key = store(tmp_path).client_pair("reg")
    assert (cert, key) == (str(tmp_path / "reg.crt"), str(tmp_path / "reg.key"))


def test_expired_and_not_yet_valid(ca, tmp_path):
    issue(ca, tmp_path, "reg", days=10)
    with pytest.raises(CertificateExpired, match="expired"):
        store(tmp_path, NOW + timedelta(days=11)).client_pair("reg")
    with pytest.raises(CertificateExpired, match="not valid before"):
        store(tmp_path, NOW - timedelta(days=2)).client_pair("reg")


@pytest.mark.parametrize("alias", ["missing", "../etc/passwd", ".hidden", "", "a/b"])
def test_missing_or_invalid_alias(tmp_path, alias):
    with pytest.raises(CertificateUnavailable):
        store(tmp_path).client_pair(alias)


def test_missing_key(ca, tmp_path):
    issue(ca, tmp_path, "reg")
    (tmp_path / "reg.key").unlink()
    with pytest.raises(CertificateUnavailable, match="missing"):
        store(tmp_path).client_pair("reg")


def test_key_of_another_certificate(ca, tmp_path):
    issue(ca, tmp_path, "reg")
    issue(ca, tmp_path, "other")
    shutil.copy(tmp_path / "other.key", tmp_path / "reg.key")
    with pytest.raises(CertificateUnavailable, match="does not match"):
        store(tmp_path).client_pair("reg")


def test_encrypted_or_garbage_key_never_echoed(ca, tmp_path):
    issue(ca, tmp_path, "reg")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (tmp_path / "reg.key").write_bytes(encrypted)
    with pytest.raises(CertificateUnavailable, match="encrypted"):
        store(tmp_path).client_pair("reg")
    (tmp_path / "reg.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n")
    with pytest.raises(CertificateUnavailable) as caught:
        store(tmp_path).client_pair("reg")
    assert "SECRETSTUFF" not in caught.value.error_text


def test_unreadable_certificate(tmp_path):
    (tmp_path / "reg.crt").write_text("not a certificate")
    (tmp_path / "reg.key").write_text("not a key")
    with pytest.raises(CertificateUnavailable, match="cannot be read"):
        store(tmp_path).client_pair("reg")


def test_replaced_certificate_is_picked_up(ca, tmp_path):
    issue(ca, tmp_path, "reg", days=10)
    certs = store(tmp_path, NOW + timedelta(days=20))
    with pytest.raises(CertificateExpired):
        certs.client_pair("reg")
    issue(ca, tmp_path, "reg", days=365)
    # Same-second rewrites must still count as a change.
    stat = (tmp_path / "reg.crt").stat()
    os.utime(tmp_path / "reg.crt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert certs.client_pair("reg")[0].endswith("reg.crt")


def test_list_reports_every_certificate(ca, tmp_path):
    issue(ca, tmp_path, "good", days=100)
    issue(ca, tmp_path, "old", days=0)
    issue(ca, tmp_path, "keyless")
    (tmp_path / "keyless.key").unlink()
    (tmp_path / "broken.crt").write_text("nope")
    infos = {info.alias: info for info in store(tmp_path, NOW + timedelta(days=1)).list()}
    assert sorted(infos) == ["broken", "good", "keyless", "old"]
    good = infos["good"]
    assert good.problem is None
    assert good.days_to_expiry == 99
    assert good.subject.startswith("CN=serviceplatform-sandbox (FOCES)")
    assert "Test CA" in good.issuer
    assert infos["old"].problem is not None and "expired" in infos["old"].problem
    assert infos["old"].days_to_expiry is not None and infos["old"].days_to_expiry < 0
    assert infos["keyless"].problem is not None and "missing" in infos["keyless"].problem
    assert infos["broken"].not_after is None and infos["broken"].problem


def test_pki_is_idempotent_and_keys_private(tpki, tmp_path):
    again = ensure_pki(tpki.directory)
    assert again == tpki
    assert again.ca_cert.read_bytes() == tpki.ca_cert.read_bytes()
    for key in (tpki.ca_key, tpki.sts_key, tpki.client_key, tpki.platform_register_key):
        assert key.stat().st_mode & 0o777 == 0o600
    tpki.client_cert.unlink()
    repaired = ensure_pki(tpki.directory)
    assert repaired.client_cert.is_file()
    assert repaired.ca_cert.read_bytes() == tpki.ca_cert.read_bytes()


# --- import, remove, permissions, expiry ----------------------------------------------------


@dataclass(frozen=True)
class Material:
    """A certificate and its key as bytes, the way an administrator receives them."""

    cert_pem: bytes
    key_pem: bytes
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def secrets(self) -> list[str]:
        """Strings that must never appear in any output: the PEM marker and the key's base64."""
        body = [line for line in self.key_pem.decode().splitlines() if "-----" not in line]
        return ["PRIVATE KEY", *body]


def material(
    ca: CertificateAuthority, tmp_path: Path, name: str, *, days: int = 365, start: int = -1
) -> Material:
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    cert_path, key_path = issue_certificate(
        ca,
        PLATFORM_REGISTER_SUBJECT,
        not_before=NOW + timedelta(days=start),
        not_after=NOW + timedelta(days=days),
        path_prefix=source / name,
    )
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cert_pem = cert_path.read_bytes()
    return Material(cert_pem, key_path.read_bytes(), key, x509.load_pem_x509_certificate(cert_pem))


def encrypted_pem(key: rsa.RSAPrivateKey, password: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def p12(m: Material, password: bytes | None, cas: list[x509.Certificate] | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(b"reg", m.key, m.cert, cas, encryption)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_no_secret(m: Material, text: str) -> None:
    for secret in m.secrets():
        assert secret not in text


def test_import_pem_writes_a_private_usable_pair(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    directory = tmp_path / "store" / "certs"
    certs = store(directory)
    info = certs.import_pem("reg", m.cert_pem, m.key_pem)
    assert mode(directory) == 0o700
    assert mode(directory / "reg.key") == 0o600
    assert mode(directory / "reg.crt") == 0o644
    assert sorted(p.name for p in directory.iterdir()) == ["reg.crt", "reg.key"]  # no temp files
    assert certs.client_pair("reg") == (str(directory / "reg.crt"), str(directory / "reg.key"))
    assert info.alias == "reg" and info.usable and info.problems == () and info.problem is None
    assert info.subject == PLATFORM_REGISTER_SUBJECT
    assert info.issuer == ca.cert.subject.rfc4514_string()
    assert info.serial == f"{m.cert.serial_number:x}"
    digest = hashlib.sha256(m.cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert info.fingerprint == digest
    assert (info.days_to_expiry, info.expired, info.not_yet_valid) == (365, False, False)
    assert info.chain_length == 0
    stored = serialization.load_pem_private_key((directory / "reg.key").read_bytes(), None)
    assert isinstance(stored, rsa.RSAPrivateKey)
    assert stored.private_numbers() == m.key.private_numbers()
    assert (directory / "reg.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_import_keeps_exact_modes_under_a_strict_umask(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    old = os.umask(0o077)
    try:
        store(tmp_path / "certs").import_pem("reg", m.cert_pem, m.key_pem)
    finally:
        os.umask(old)
    assert mode(tmp_path / "certs" / "reg.crt") == 0o644
    assert mode(tmp_path / "certs" / "reg.key") == 0o600


def test_an_existing_directory_keeps_its_mode(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    directory = tmp_path / "certs"
    directory.mkdir(mode=0o750)
    directory.chmod(0o750)
    store(directory).import_pem("reg", m.cert_pem, m.key_pem)
    assert mode(directory) == 0o750


def test_import_pem_with_chain_and_encrypted_key(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    chain = m.cert_pem + ca.cert.public_bytes(serialization.Encoding.PEM)
    certs = store(tmp_path / "certs")
    info = certs.import_pem("reg", chain, encrypted_pem(m.key, b"s3cret"), password=b"s3cret")
    assert info.chain_length == 1
    assert len(x509.load_pem_x509_certificates((tmp_path / "certs" / "reg.crt").read_bytes())) == 2
    # Stored unencrypted: the platform uses it unattended.
    assert b"ENCRYPTED" not in (tmp_path / "certs" / "reg.key").read_bytes()
    assert certs.client_pair("reg")[1].endswith("reg.key")
    # A password given for an unencrypted key does no harm.
    again = certs.import_pem("reg", m.cert_pem, m.key_pem, password=b"x", replace=True)
    assert again.usable


def test_encrypted_pem_key_without_or_with_a_wrong_password(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    certs = store(tmp_path / "certs")
    locked = encrypted_pem(m.key, b"s3cret")
    with pytest.raises(CertificateUnavailable, match="is encrypted: give its password") as first:
        certs.import_pem("reg", m.cert_pem, locked)
    with pytest.raises(CertificateUnavailable, match="wrong password") as second:
        certs.import_pem("reg", m.cert_pem, locked, password=b"guess")
    for caught in (first, second):
        assert caught.value.code == "SP-420"
        assert "s3cret" not in caught.value.error_text and "guess" not in caught.value.error_text
    assert not (tmp_path / "certs").exists()


@pytest.mark.parametrize("password", [None, b"p12-pass"], ids=["no-password", "password"])
def test_import_pkcs12(ca, tmp_path, password):
    m = material(ca, tmp_path, "reg")
    certs = store(tmp_path / "certs")
    info = certs.import_pkcs12("reg", p12(m, password, [ca.cert]), password)
    assert info.usable and info.chain_length == 1
    assert info.fingerprint == m.cert.fingerprint(hashes.SHA256()).hex()
    assert mode(tmp_path / "certs" / "reg.key") == 0o600
    assert certs.client_pair("reg")[0].endswith("reg.crt")


def test_pkcs12_wrong_or_missing_password_and_garbage(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    data = p12(m, b"right")
    certs = store(tmp_path / "certs")
    with pytest.raises(CertificateUnavailable, match="wrong password"):
        certs.import_pkcs12("reg", data, b"wrong")
    with pytest.raises(CertificateUnavailable, match="needs a password"):
        certs.import_pkcs12("reg", data, None)
    with pytest.raises(CertificateUnavailable, match="cannot be read"):
        certs.import_pkcs12("reg", b"not pkcs12 at all", None)
    only_cert = pkcs12.serialize_key_and_certificates(
        b"x", None, m.cert, None, serialization.NoEncryption()
    )
    with pytest.raises(CertificateUnavailable, match="holds no private key"):
        certs.import_pkcs12("reg", only_cert, None)
    assert not (tmp_path / "certs" / "reg.crt").exists()


def test_mismatching_key_is_refused_and_nothing_written(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    other = material(ca, tmp_path, "other")
    certs = store(tmp_path / "certs")
    with pytest.raises(CertificateUnavailable, match="does not belong to its certificate") as pem:
        certs.import_pem("reg", m.cert_pem, other.key_pem)
    # (cryptography will not even write a PKCS#12 file with a mismatching pair.)
    assert_no_secret(other, pem.value.error_text)
    assert certs.list() == []


def test_expired_certificate_is_refused_on_import(ca, tmp_path):
    old = material(ca, tmp_path, "old", days=-1, start=-30)
    certs = store(tmp_path / "certs")
    with pytest.raises(CertificateExpired, match=r"expired on .*'reg' was not imported"):
        certs.import_pem("reg", old.cert_pem, old.key_pem)
    with pytest.raises(CertificateExpired):
        certs.import_pkcs12("reg", p12(old, None), None)
    assert certs.list() == []
    # Not yet valid is allowed: a renewal may be staged under a new alias ahead of time.
    early = material(ca, tmp_path, "early", days=400, start=10)
    info = certs.import_pem("next", early.cert_pem, early.key_pem)
    assert info.not_yet_valid and not info.expired and not info.usable
    with pytest.raises(CertificateExpired, match="not valid before"):
        certs.client_pair("next")


@pytest.mark.parametrize("alias", ["../up", ".hidden", "", "a/b", "x" * 200, "a b"])
def test_import_refuses_an_invalid_alias(ca, tmp_path, alias):
    m = material(ca, tmp_path, "reg")
    with pytest.raises(CertificateUnavailable, match="not a valid certificate alias"):
        store(tmp_path / "certs").import_pem(alias, m.cert_pem, m.key_pem)
    assert not (tmp_path / "certs").exists()


def test_unreadable_data_never_echoes_key_material(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    certs = store(tmp_path / "certs")
    # Files given the wrong way round: the key as certificate, the certificate as key.
    with pytest.raises(CertificateUnavailable) as swapped:
        certs.import_pem("reg", m.key_pem, m.cert_pem)
    with pytest.raises(CertificateUnavailable) as garbled:
        certs.import_pem("reg", m.cert_pem, m.key_pem.replace(b"M", b"*"))
    with pytest.raises(CertificateUnavailable) as bad_p12:
        certs.import_pkcs12("reg", m.key_pem, None)
    for caught in (swapped, garbled, bad_p12):
        assert_no_secret(m, caught.value.error_text)
        assert_no_secret(m, str(caught.value))


def test_replace_semantics(ca, tmp_path):
    first = material(ca, tmp_path, "first")
    second = material(ca, tmp_path, "second", days=700)
    directory = tmp_path / "certs"
    certs = store(directory)
    certs.import_pem("reg", first.cert_pem, first.key_pem)
    assert certs.client_pair("reg")  # parsed and cached
    with pytest.raises(CertificateAliasTaken, match="--replace") as taken:
        certs.import_pem("reg", second.cert_pem, second.key_pem)
    assert taken.value.code == "SP-422"
    assert certs.certificate("reg").serial_number == first.cert.serial_number
    info = certs.import_pem("reg", second.cert_pem, second.key_pem, replace=True)
    assert info.days_to_expiry == 700
    # The same instance (as the running platform holds it) sees the new pair at once.
    assert certs.certificate("reg").serial_number == second.cert.serial_number
    assert certs.client_pair("reg")
    # A lone key file counts as in use too.
    (directory / "lone.key").write_bytes(b"")
    with pytest.raises(CertificateAliasTaken):
        certs.import_pkcs12("lone", p12(first, None), None)


def test_remove(ca, tmp_path):
    m = material(ca, tmp_path, "reg")
    certs = store(tmp_path / "certs")
    certs.import_pem("reg", m.cert_pem, m.key_pem)
    certs.client_pair("reg")
    certs.remove("reg")
    assert list((tmp_path / "certs").iterdir()) == []
    with pytest.raises(CertificateUnavailable, match="no certificate 'reg'"):
        certs.client_pair("reg")
    with pytest.raises(CertificateUnavailable, match="no certificate 'reg'"):
        certs.remove("reg")
    with pytest.raises(CertificateUnavailable, match="not a valid"):
        certs.remove("../reg")


@pytest.mark.parametrize(
    ("key_mode", "word"), [(0o644, "readable"), (0o640, "readable"), (0o604, "readable")]
)
def test_a_key_readable_by_others_is_refused_and_listed(ca, tmp_path, key_mode, word):
    issue(ca, tmp_path, "reg")
    (tmp_path / "reg.key").chmod(key_mode)
    certs = store(tmp_path)
    expected = f"private key file reg.key is {word} by others (mode {key_mode:04o}); chmod 600"
    with pytest.raises(CertificateUnavailable) as caught:
        certs.client_pair("reg")
    assert caught.value.detail == expected
    assert caught.value.code == "SP-420"
    [info] = certs.list()
    assert info.problems == (expected,) and info.problem == expected and not info.usable
    (tmp_path / "reg.key").chmod(0o600)
    assert certs.client_pair("reg") and certs.list()[0].problems == ()


def test_a_key_writable_by_group_or_owned_by_another_user(ca, tmp_path, monkeypatch):
    issue(ca, tmp_path, "reg")
    (tmp_path / "reg.key").chmod(0o620)
    with pytest.raises(CertificateUnavailable, match=r"writable by others \(mode 0620\)"):
        store(tmp_path).client_pair("reg")
    (tmp_path / "reg.key").chmod(0o400)  # read-only for the owner is fine
    assert store(tmp_path).client_pair("reg")
    owner = (tmp_path / "reg.key").stat().st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)
    with pytest.raises(CertificateUnavailable, match=f"owned by uid {owner}, not by the platform"):
        store(tmp_path).client_pair("reg")


def test_an_expired_pair_with_an_open_key_lists_both_problems(ca, tmp_path):
    issue(ca, tmp_path, "reg", days=5)
    (tmp_path / "reg.key").chmod(0o644)
    [info] = store(tmp_path, NOW + timedelta(days=10)).list()
    assert info.expired and info.days_to_expiry == -5
    assert len(info.problems) == 2
    assert "readable by others" in info.problems[0] and "expired on" in info.problems[1]


def test_expiring_includes_the_expired_and_not_the_unreadable(ca, tmp_path):
    issue(ca, tmp_path, "soon", days=12)
    issue(ca, tmp_path, "later", days=42)
    issue(ca, tmp_path, "gone", days=0)
    (tmp_path / "broken.crt").write_text("nope")
    certs = store(tmp_path, NOW + timedelta(days=2))
    assert [i.alias for i in certs.expiring(30)] == ["gone", "soon"]
    assert [i.alias for i in certs.expiring(0)] == ["gone"]
    assert [i.alias for i in certs.expiring(10)] == ["gone"]  # exactly 10 days left is not < 10
    assert [i.alias for i in certs.expiring(11)] == ["gone", "soon"]
    assert [i.alias for i in certs.expiring(41)] == ["gone", "later", "soon"]
    gone = certs.info("gone")
    assert gone.expired and gone.days_to_expiry == -2
    assert gone.problems[-1].endswith("expired on 2030-06-01")
    with pytest.raises(CertificateUnavailable, match="no certificate 'nope'"):
        certs.info("nope")


def test_client_identity_checks_as_client_pair_and_sees_a_renewal(ca, tmp_path):
    """The outward call's one-stat-per-file check: same refusals, renewal on the next call."""
    issue(ca, tmp_path, "reg")
    certs = store(tmp_path)
    cert_file, key_file, first = certs.client_identity("reg")
    assert (cert_file, key_file) == certs.client_pair("reg")
    assert first == x509.load_pem_x509_certificate((tmp_path / "reg.crt").read_bytes())
    (tmp_path / "reg.key").chmod(0o644)
    with pytest.raises(CertificateUnavailable, match="readable by others"):
        certs.client_identity("reg")
    (tmp_path / "reg.key").chmod(0o600)
    issue(ca, tmp_path, "reg")  # renewed in place: a new serial
    _, _, renewed = certs.client_identity("reg")
    assert renewed.serial_number != first.serial_number
    (tmp_path / "reg.key").unlink()
    with pytest.raises(CertificateUnavailable, match="missing or unreadable"):
        certs.client_identity("reg")


def test_client_identity_reuses_a_passed_pair_until_a_stat_or_the_clock_changes(
    ca, tmp_path, monkeypatch
):
    """A passed pair is not parsed or checked again while both files' stats hold; the
    validity period is still checked on every call, against that call's clock."""
    issue(ca, tmp_path, "reg", days=10)
    now = [NOW]
    certs = CertificateStore(tmp_path, clock=lambda: now[0])
    first = certs.client_identity("reg")
    parsed: list[str] = []
    original = certs._parsed

    def counting(alias, *rest):
        parsed.append(alias)
        return original(alias, *rest)

    monkeypatch.setattr(certs, "_parsed", counting)
    assert certs.client_identity("reg") is first
    assert parsed == []  # the reuse, not a second parse
    now[0] = NOW + timedelta(days=11)
    with pytest.raises(CertificateExpired, match="expired"):
        certs.client_identity("reg")
    now[0] = NOW
    assert certs.client_identity("reg") == first
    (tmp_path / "reg.key").chmod(0o640)  # mode only: mtime, size and inode stay
    with pytest.raises(CertificateUnavailable, match="readable by others"):
        certs.client_identity("reg")
    (tmp_path / "reg.key").chmod(0o600)
    certs.remove("reg")
    with pytest.raises(CertificateUnavailable, match="no certificate"):
        certs.client_identity("reg")

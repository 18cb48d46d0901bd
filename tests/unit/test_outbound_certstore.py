"""The outward certificate store: usable pairs only, by alias, checked against a clock."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from serviceplatform.errors import CertificateExpired, CertificateUnavailable
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

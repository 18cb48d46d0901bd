"""Instants on the wire are UTC whatever the server's own time zone, and a certificate's key
is kept as an RSA key only when it is one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from serviceplatform.security.certs import known_cert
from serviceplatform.security.wire import format_instant, parse_instant


@pytest.fixture
def copenhagen_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is not UTC (as on a server set to Danish time)."""
    monkeypatch.setenv("TZ", "Europe/Copenhagen")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_parsed_instant_is_in_utc_under_another_local_time_zone(
    copenhagen_local_time: None,
) -> None:
    value = parse_instant("2026-12-06T10:00:00+01:00")
    assert value is not None
    assert value.utcoffset() == timedelta(0)
    assert value.isoformat() == "2026-12-06T09:00:00+00:00"


def test_an_instant_is_written_in_utc_under_another_local_time_zone(
    copenhagen_local_time: None,
) -> None:
    assert format_instant(datetime(2026, 12, 6, 9, 0, tzinfo=UTC)) == "2026-12-06T09:00:00Z"
    eastern = datetime(2026, 12, 6, 12, 0, 30, tzinfo=timezone(timedelta(hours=3)))
    assert format_instant(eastern) == "2026-12-06T09:00:30Z"


def certificate(key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "holder")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_an_rsa_certificate_keeps_its_rsa_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    known = known_cert(certificate(key))
    assert known.rsa_key is not None
    assert known.rsa_key.public_numbers() == key.public_key().public_numbers()


def test_a_certificate_with_another_key_type_has_no_rsa_key() -> None:
    known = known_cert(certificate(ec.generate_private_key(ec.SECP256R1())))
    assert known.rsa_key is None
    assert known.subject == "CN=holder"

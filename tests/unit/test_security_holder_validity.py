"""The holder-of-key certificate's own validity period and the SubjectConfirmationData
``NotOnOrAfter`` are checked by the platform itself, each with its own fault code."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from serviceplatform.errors import HolderCertificateNotValid, SubjectConfirmationExpired
from serviceplatform.security.wire import SAML_NS, qn
from tests.saml_edit import resign
from tests.unit.test_security_roundtrip import NOW, Pki, check
from tests.unit.test_security_roundtrip import pki as pki

SKEW = timedelta(seconds=60)


def holder_valid(
    not_before: datetime, not_after: datetime
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "case system")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def message_from(pki: Pki, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bytes:
    return pki.message(pki.token(holder_cert=cert), holder_key=key)


# The validator's clock is NOW + 1 minute (test_security_roundtrip.make_validator).
@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [
        (NOW - timedelta(days=365), NOW - timedelta(minutes=5)),  # expired
        (NOW + timedelta(minutes=10), NOW + timedelta(days=365)),  # not yet valid
    ],
)
def test_a_holder_certificate_outside_its_validity_is_refused(
    pki: Pki, not_before: datetime, not_after: datetime
) -> None:
    key, cert = holder_valid(not_before, not_after)
    with pytest.raises(HolderCertificateNotValid):
        check(pki, message_from(pki, key, cert))


def test_a_holder_certificate_within_the_clock_skew_is_accepted(pki: Pki) -> None:
    key, cert = holder_valid(NOW - timedelta(days=1), NOW + timedelta(seconds=30))
    assert check(pki, message_from(pki, key, cert)).holder_cert == cert


def token_confirmable_until(pki: Pki, not_on_or_after: str) -> etree._Element:
    """A token whose holder-of-key SubjectConfirmationData has ``NotOnOrAfter``, signed
    again by the STS (the minting helper writes none)."""
    token = pki.token()
    data = token.find(f".//{qn(SAML_NS, 'SubjectConfirmationData')}")
    assert data is not None
    data.set("NotOnOrAfter", not_on_or_after)
    resign(token, *pki.sts)
    return token


def test_an_expired_subject_confirmation_is_refused(pki: Pki) -> None:
    # Conditions still hold for hours; the confirmation ended five minutes ago.
    token = token_confirmable_until(pki, "2026-11-22T08:55:00Z")
    with pytest.raises(SubjectConfirmationExpired):
        check(pki, pki.message(token))


def test_a_subject_confirmation_still_running_is_accepted(pki: Pki) -> None:
    token = token_confirmable_until(pki, "2026-11-22T09:30:00Z")
    assert check(pki, pki.message(token)).assertion_id == token.get("ID")


def test_a_subject_confirmation_within_the_skew_is_accepted(pki: Pki) -> None:
    # The clock is 09:01:00; NotOnOrAfter 09:00:30 plus 60 s of skew still holds.
    token = token_confirmable_until(pki, "2026-11-22T09:00:30Z")
    assert check(pki, pki.message(token)).assertion_id == token.get("ID")

"""Validator limits the round-trip tests leave open: each time window at its exact edge
with the clock skew, the KeyInfo reference form, and which part or reference a refusal names."""

from __future__ import annotations

import base64
import copy
import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from serviceplatform.errors import (
    HolderOfKeyMismatch,
    MessageSignatureInvalid,
    SignatureCoverageIncomplete,
    SubjectConfirmationExpired,
    TokenExpired,
)
from serviceplatform.security.wire import ALG_ENVELOPED, DS_NS, WSSE_NS, WSU_NS, qn
from tests.unit.test_security_holder_validity import (
    holder_valid,
    message_from,
    token_confirmable_until,
)
from tests.unit.test_security_roundtrip import NOW, Pki, check, find
from tests.unit.test_security_roundtrip import pki as pki

# The validator's clock is NOW + 1 minute (test_security_roundtrip.make_validator); the
# policy's clock skew is 60 seconds, so NOW + 2 minutes is "now + skew" and NOW is "now - skew".
SKEW = timedelta(seconds=60)
CLOCK = NOW + SKEW

# --- time windows at their edges ------------------------------------------------------------


def test_a_timestamp_created_exactly_one_skew_ahead_is_accepted(pki: Pki) -> None:
    # Created is NOW; the receiver's clock runs one skew behind: still acceptable.
    assert check(pki, pki.message(), at=NOW - SKEW).to


def test_a_timestamp_expired_less_than_one_skew_ago_is_accepted(pki: Pki) -> None:
    # Expires is NOW + 5 minutes: at that instant the skew still covers it.
    assert check(pki, pki.message(), at=NOW + timedelta(minutes=5)).to


@pytest.mark.parametrize("ahead", [timedelta(seconds=30), SKEW])
def test_a_token_valid_from_within_one_skew_ahead_is_accepted(pki: Pki, ahead: timedelta) -> None:
    token = pki.token(not_before=CLOCK + ahead)
    assert check(pki, pki.message(token)).assertion_id == token.get("ID")


def test_a_token_ending_exactly_one_skew_ago_is_refused(pki: Pki) -> None:
    # Minted eight hours (its life) before NOW: NotOnOrAfter is NOW, the clock NOW + skew.
    token = pki.token(now=NOW - timedelta(hours=8))
    with pytest.raises(TokenExpired):
        check(pki, pki.message(token))


def test_a_subject_confirmation_ending_exactly_one_skew_ago_is_refused(pki: Pki) -> None:
    token = token_confirmable_until(pki, "2026-11-22T09:00:00Z")
    with pytest.raises(SubjectConfirmationExpired):
        check(pki, pki.message(token))


@pytest.mark.parametrize("ahead", [timedelta(seconds=30), SKEW])
def test_a_holder_certificate_valid_from_within_one_skew_ahead_is_accepted(
    pki: Pki, ahead: timedelta
) -> None:
    key, cert = holder_valid(CLOCK + ahead, NOW + timedelta(days=365))
    assert check(pki, message_from(pki, key, cert)).holder_cert == cert


def test_a_holder_certificate_ending_exactly_one_skew_ago_is_accepted(pki: Pki) -> None:
    # not_valid_after is an inclusive instant (RFC 5280): NOW is still within it.
    key, cert = holder_valid(NOW - timedelta(days=1), NOW)
    assert check(pki, message_from(pki, key, cert)).holder_cert == cert


# --- the signature's KeyInfo and references -------------------------------------------------


def key_info_reference(envelope: etree._Element, uri: str) -> None:
    """Replace the message signature's KeyIdentifier with a ``wsse:Reference`` to ``uri``
    (KeyInfo lies outside SignedInfo: the signature still verifies)."""
    str_ = find(envelope, "//wsse:Security/ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference")
    for child in list(str_):
        str_.remove(child)
    etree.SubElement(str_, qn(WSSE_NS, "Reference"), URI=uri)


def test_a_key_info_reference_to_the_assertion_is_accepted(pki: Pki) -> None:
    token = pki.token()
    envelope = etree.fromstring(pki.message(token))
    key_info_reference(envelope, f"#{token.get('ID')}")
    assert check(pki, envelope).assertion_id == token.get("ID")


def test_a_key_info_reference_without_a_fragment_is_refused(pki: Pki) -> None:
    # A URI without "#" is no same-document reference, whatever follows its first character.
    token = pki.token()
    envelope = etree.fromstring(pki.message(token))
    key_info_reference(envelope, f"x{token.get('ID')}")
    with pytest.raises(HolderOfKeyMismatch):
        check(pki, envelope)


@pytest.mark.parametrize(
    "left_out", ["Framework", "Body", "Action", "MessageID", "To", "Timestamp", "ReplyTo"]
)
def test_the_refusal_names_the_unsigned_part(pki: Pki, left_out: str) -> None:
    covered = [
        p
        for p in ("Body", "Framework", "Action", "MessageID", "ReplyTo", "To", "Timestamp")
        if p != left_out
    ]
    with pytest.raises(SignatureCoverageIncomplete) as refused:
        check(pki, pki.message(covered=covered))
    assert refused.value.detail == f"not signed: {left_out}"


def test_the_refusal_names_the_dangling_reference(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    find(envelope, "//wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference[1]").set(
        "URI", "#_nowhere"
    )
    with pytest.raises(MessageSignatureInvalid) as refused:
        check(pki, envelope)
    assert refused.value.detail == "#_nowhere names no element"


def resign_signed_info(pki: Pki, envelope: etree._Element) -> None:
    """A fresh SignatureValue over the (edited) SignedInfo with the holder's key."""
    signature = find(envelope, "//wsse:Security/ds:Signature")
    signed_info = find(signature, "ds:SignedInfo")
    value = pki.holder[0].sign(
        etree.tostring(signed_info, method="c14n", exclusive=True),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    find(signature, "ds:SignatureValue").text = base64.b64encode(value).decode("ascii")


def body_reference(envelope: etree._Element) -> etree._Element:
    body_id = find(envelope, "/*/*[local-name()='Body']").get(qn(WSU_NS, "Id"))
    return find(
        envelope, f"//wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference[@URI='#{body_id}']"
    )


def test_a_resigned_signed_info_is_accepted(pki: Pki) -> None:
    # The control for the next test: the re-signing itself leaves a valid message.
    envelope = etree.fromstring(pki.message())
    resign_signed_info(pki, envelope)
    assert check(pki, envelope).to


def test_an_enveloped_transform_in_the_message_signature_is_refused(pki: Pki) -> None:
    # The Body holds no signature, so its digest is unchanged: only the policy refuses it.
    envelope = etree.fromstring(pki.message())
    transforms = find(body_reference(envelope), "ds:Transforms")
    transforms.insert(0, etree.Element(qn(DS_NS, "Transform"), Algorithm=ALG_ENVELOPED))
    resign_signed_info(pki, envelope)
    with pytest.raises(MessageSignatureInvalid):
        check(pki, envelope)


def test_an_enveloped_reference_to_the_security_header_is_refused(pki: Pki) -> None:
    # The one element the message signature lies in: an enveloped transform there would
    # digest well, so only the policy refuses it.
    envelope = etree.fromstring(pki.message())
    security = find(envelope, "//wsse:Security")
    security.set(qn(WSU_NS, "Id"), "_security")
    without = copy.deepcopy(security)
    without.remove(find(without, "ds:Signature"))
    digest = hashlib.sha256(etree.tostring(without, method="c14n", exclusive=True)).digest()
    reference = copy.deepcopy(body_reference(envelope))
    reference.set("URI", "#_security")
    find(reference, "ds:Transforms").insert(
        0, etree.Element(qn(DS_NS, "Transform"), Algorithm=ALG_ENVELOPED)
    )
    find(reference, "ds:DigestValue").text = base64.b64encode(digest).decode("ascii")
    find(envelope, "//wsse:Security/ds:Signature/ds:SignedInfo").append(reference)
    resign_signed_info(pki, envelope)
    with pytest.raises(MessageSignatureInvalid, match="enveloped"):
        check(pki, envelope)

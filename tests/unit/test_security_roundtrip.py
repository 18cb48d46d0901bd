"""Round trips: tokens minted and messages signed here, each failure refused with its own error.

``make_identity`` (a self-signed RSA 2048 key and certificate) is used by the other
``test_security_*`` modules too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import NameOID
from lxml import etree

from serviceplatform.client.request_signer import (
    build_signed_envelope,
    mint_assertion,
    sign_envelope,
)
from serviceplatform.errors import (
    AddressingHeaderMissing,
    FrameworkVersionMismatch,
    HolderOfKeyMismatch,
    MessageReplayed,
    MessageSignatureInvalid,
    SecurityError,
    SecurityHeaderMissing,
    SignatureCoverageIncomplete,
    TimestampStale,
    TokenAudienceMismatch,
    TokenAuthorityMissing,
    TokenExpired,
    TokenMalformed,
    TokenNotYetValid,
    TokenSignatureInvalid,
    TokenUntrustedIssuer,
)
from serviceplatform.security.context import SecurityContext
from serviceplatform.security.replay import MemoryReplayCache
from serviceplatform.security.validator import SecurityPolicy, TokenValidator

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ISSUER = "https://sts.test.example"
AUDIENCE = "http://entityid.test.example/service/sf2250/2"
TO = "https://sp.test.example/service/NemSMS/VedligeholdTilmelding/2"
ACTION = "urn:test:Ping"
CVR = "29189846"
NS = {
    "s12": "http://www.w3.org/2003/05/soap-envelope",
    "sbf": "urn:liberty:sb:2006-08",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "x": "urn:test",
}


def make_identity(common_name: str) -> tuple[RSAPrivateKey, x509.Certificate]:
    """A self-signed RSA 2048 certificate and its key (a test STS or case system)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DK"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@dataclass(frozen=True)
class Pki:
    sts: tuple[RSAPrivateKey, x509.Certificate]
    holder: tuple[RSAPrivateKey, x509.Certificate]
    rogue_sts: tuple[RSAPrivateKey, x509.Certificate]
    intruder: tuple[RSAPrivateKey, x509.Certificate]

    def token(self, **overrides: Any) -> etree._Element:
        arguments: dict[str, Any] = {
            "sts_key": self.sts[0],
            "sts_cert": self.sts[1],
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "authority_cvr": CVR,
            "holder_cert": self.holder[1],
            "now": NOW,
        }
        arguments.update(overrides)
        return mint_assertion(**arguments)

    def message(self, assertion: etree._Element | None = None, **overrides: Any) -> bytes:
        arguments: dict[str, Any] = {
            "assertion": assertion if assertion is not None else self.token(),
            "holder_key": self.holder[0],
            "to": TO,
            "action": ACTION,
            "now": NOW,
        }
        arguments.update(overrides)
        return build_signed_envelope(ping(), **arguments)


def ping(text: str = "hello") -> etree._Element:
    element = etree.Element("{urn:test}Ping", nsmap={"x": "urn:test"})
    etree.SubElement(element, "{urn:test}Text").text = text
    return element


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki(
        sts=make_identity("test STS"),
        holder=make_identity("test case system"),
        rogue_sts=make_identity("rogue STS"),
        intruder=make_identity("intruder"),
    )


def make_validator(
    pki: Pki,
    *,
    at: datetime = NOW + timedelta(minutes=1),
    replay: MemoryReplayCache | None = None,
    issuers: frozenset[str] = frozenset({ISSUER}),
) -> TokenValidator:
    policy = SecurityPolicy(trusted_sts_certs=(pki.sts[1],), trusted_issuers=issuers)
    return TokenValidator(policy, replay or MemoryReplayCache(), clock=lambda: at)


def check(pki: Pki, message: bytes | etree._Element, **validator: Any) -> SecurityContext:
    envelope = etree.fromstring(message) if isinstance(message, bytes) else message
    return make_validator(pki, **validator).validate(envelope, AUDIENCE)


def find(envelope: etree._Element, path: str) -> etree._Element:
    found = envelope.xpath(path, namespaces=NS)
    assert isinstance(found, list) and len(found) == 1
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


# --- accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize("soap_version", [12, 11])
def test_signed_message_is_accepted(pki: Pki, soap_version: int) -> None:
    message = pki.message(
        soap_version=soap_version,
        message_id="urn:uuid:11111111-2222-3333-4444-555555555555",
        transaction_uuid="tx-1",
    )
    context = check(pki, message)

    holder = pki.holder[1]
    assert context.authority_cvr == CVR
    assert context.holder_cert == holder
    assert context.holder_subject == holder.subject.rfc4514_string()
    assert context.holder_fingerprint == holder.fingerprint(hashes.SHA256()).hex()
    assert context.issuer == ISSUER
    assert context.audience == AUDIENCE
    assert context.message_id == "urn:uuid:11111111-2222-3333-4444-555555555555"
    assert context.action == ACTION
    assert context.to == TO
    # The signer does not sign the RequestHeader (nor do KOMBIT's clients): an unsigned
    # TransactionUUID is ignored (test_security_transaction_uuid.py has the signed one).
    assert context.transaction_uuid is None
    assert context.token_not_on_or_after == NOW + timedelta(hours=8)
    assert context.assertion_id.startswith("_")


def test_token_within_clock_skew_is_accepted(pki: Pki) -> None:
    token = pki.token(now=NOW - timedelta(hours=8), ttl=timedelta(hours=8, seconds=30))
    assert check(pki, pki.message(token)).authority_cvr == CVR


def test_message_without_reply_to_is_accepted(pki: Pki) -> None:
    assert check(pki, pki.message(omit=["ReplyTo"])).authority_cvr == CVR


def test_sts_signature_without_key_info_certificate_is_accepted(pki: Pki) -> None:
    token = pki.token()
    key_info = find(token, "ds:Signature/ds:KeyInfo")
    key_info.getparent().remove(key_info)  # type: ignore[union-attr]
    assert check(pki, pki.message(token)).authority_cvr == CVR


def test_resigning_an_envelope_replaces_the_old_headers(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message(message_id="urn:uuid:old"))
    sign_envelope(
        envelope,
        assertion=pki.token(),
        holder_key=pki.holder[0],
        to=TO,
        action=ACTION,
        message_id="urn:uuid:new",
        now=NOW,
    )
    assert check(pki, envelope).message_id == "urn:uuid:new"


# --- the token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ({"now": NOW - timedelta(hours=9)}, TokenExpired),
        ({"not_before": NOW + timedelta(minutes=10)}, TokenNotYetValid),
        ({"audience": "http://entityid.test.example/service/other/1"}, TokenAudienceMismatch),
        ({"authority_cvr": "1234"}, TokenAuthorityMissing),
        ({"authority_cvr": ""}, TokenAuthorityMissing),
        ({"issuer": "https://sts.other.example"}, TokenUntrustedIssuer),
    ],
)
def test_bad_token_is_refused(pki: Pki, token: dict[str, Any], error: type[SecurityError]) -> None:
    with pytest.raises(error):
        check(pki, pki.message(pki.token(**token)))


def test_token_from_an_unknown_sts_is_refused(pki: Pki) -> None:
    token = pki.token(sts_key=pki.rogue_sts[0], sts_cert=pki.rogue_sts[1])
    with pytest.raises(TokenUntrustedIssuer):
        check(pki, pki.message(token))


def test_unknown_sts_without_key_info_certificate_is_refused(pki: Pki) -> None:
    token = pki.token(sts_key=pki.rogue_sts[0], sts_cert=pki.rogue_sts[1])
    key_info = find(token, "ds:Signature/ds:KeyInfo")
    key_info.getparent().remove(key_info)  # type: ignore[union-attr]
    with pytest.raises(TokenUntrustedIssuer):
        check(pki, pki.message(token))


def test_token_claiming_the_trusted_sts_certificate_but_signed_by_another_key_is_refused(
    pki: Pki,
) -> None:
    token = pki.token(sts_key=pki.rogue_sts[0], sts_cert=pki.sts[1])
    with pytest.raises(TokenSignatureInvalid):
        check(pki, pki.message(token))


def test_token_changed_after_the_sts_signed_it_is_refused(pki: Pki) -> None:
    token = pki.token()
    cvr = find(token, "//saml:Attribute[@Name='dk:gov:saml:attribute:CvrNumberIdentifier']/*")
    cvr.text = "12345674"
    with pytest.raises(TokenSignatureInvalid):
        check(pki, pki.message(token))


def test_token_without_holder_of_key_confirmation_is_refused(pki: Pki) -> None:
    token = pki.token()
    find(token, "//saml:SubjectConfirmation").set("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
    with pytest.raises(TokenMalformed):
        check(pki, pki.message(token))


def test_assertion_wrapping_is_refused(pki: Pki) -> None:
    """An altered copy of a genuine assertion, carrying the genuine signature, is refused."""
    envelope = etree.fromstring(pki.message())
    assertion = find(envelope, "//wsse:Security/saml:Assertion")
    find(assertion, "//saml:AttributeValue[.='29189846']").text = "12345674"
    assertion.set("ID", "_evil")
    find(envelope, "//wsse:KeyIdentifier").text = "_evil"
    with pytest.raises(TokenSignatureInvalid):
        check(pki, envelope)


# --- the message ----------------------------------------------------------------------------


def test_body_changed_after_signing_is_refused(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    find(envelope, "//x:Text").text = "goodbye"
    with pytest.raises(MessageSignatureInvalid):
        check(pki, envelope)


def test_message_signed_by_another_key_than_the_holder_of_key_is_refused(pki: Pki) -> None:
    with pytest.raises(HolderOfKeyMismatch):
        check(pki, pki.message(holder_key=pki.intruder[0]))


def test_signature_naming_another_token_is_refused(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    find(envelope, "//wsse:KeyIdentifier").text = "_some-other-token"
    with pytest.raises(HolderOfKeyMismatch):
        check(pki, envelope)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("//s12:Header/sbf:Framework", FrameworkVersionMismatch),
        ("//s12:Header/wsa:Action", AddressingHeaderMissing),
        ("//s12:Header/wsa:MessageID", AddressingHeaderMissing),
        ("//s12:Header/wsa:To", AddressingHeaderMissing),
        ("//wsse:Security/wsu:Timestamp", SecurityHeaderMissing),
        ("//wsse:Security/saml:Assertion", SecurityHeaderMissing),
        ("//wsse:Security/ds:Signature", SecurityHeaderMissing),
        ("//s12:Header/wsse:Security", SecurityHeaderMissing),
    ],
)
def test_missing_part_is_refused(pki: Pki, path: str, error: type[SecurityError]) -> None:
    envelope = etree.fromstring(pki.message())
    part = find(envelope, path)
    part.getparent().remove(part)  # type: ignore[union-attr]
    with pytest.raises(error):
        check(pki, envelope)


@pytest.mark.parametrize(
    ("omit", "error"),
    [
        ("Framework", FrameworkVersionMismatch),
        ("Action", AddressingHeaderMissing),
        ("MessageID", AddressingHeaderMissing),
        ("To", AddressingHeaderMissing),
        ("Timestamp", SecurityHeaderMissing),
    ],
)
def test_message_signed_without_a_part_is_refused(
    pki: Pki, omit: str, error: type[SecurityError]
) -> None:
    with pytest.raises(error):
        check(pki, pki.message(omit=[omit]))


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("version", "1.1"),
        ("{urn:liberty:sb:profile}profile", "urn:liberty:sb:profile:id-wsf"),
    ],
)
def test_wrong_framework_is_refused(pki: Pki, attribute: str, value: str) -> None:
    envelope = etree.fromstring(pki.message())
    find(envelope, "//sbf:Framework").set(attribute, value)
    with pytest.raises(FrameworkVersionMismatch):
        check(pki, envelope)


def test_repeated_addressing_header_is_refused(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    action = find(envelope, "//wsa:Action")
    extra = copy.deepcopy(action)
    del extra.attrib[f"{{{NS['wsu']}}}Id"]
    extra.text = "urn:test:Other"
    action.addnext(extra)
    with pytest.raises(AddressingHeaderMissing):
        check(pki, envelope)


@pytest.mark.parametrize(
    "left_out", ["Framework", "Body", "Action", "MessageID", "To", "Timestamp", "ReplyTo"]
)
def test_signature_not_covering_a_required_part_is_refused(pki: Pki, left_out: str) -> None:
    covered = [
        p
        for p in ("Body", "Framework", "Action", "MessageID", "ReplyTo", "To", "Timestamp")
        if p != left_out
    ]
    with pytest.raises(SignatureCoverageIncomplete, match=left_out):
        check(pki, pki.message(covered=covered))


def test_duplicated_body_with_the_same_id_is_refused(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    body = find(envelope, "/s12:Envelope/s12:Body")
    etree.SubElement(find(envelope, "/s12:Envelope/s12:Header"), "{urn:evil}Wrapper").append(
        copy.deepcopy(body)
    )
    find(body, "x:Ping/x:Text").text = "evil"
    with pytest.raises(MessageSignatureInvalid):
        check(pki, envelope)


def test_moved_body_is_refused(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    body = find(envelope, "/s12:Envelope/s12:Body")
    etree.SubElement(find(envelope, "/s12:Envelope/s12:Header"), "{urn:evil}Wrapper").append(body)
    etree.SubElement(envelope, f"{{{NS['s12']}}}Body").append(ping("evil"))
    with pytest.raises(SignatureCoverageIncomplete):
        check(pki, envelope)


def test_duplicated_assertion_id_is_refused(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    assertion = find(envelope, "//wsse:Security/saml:Assertion")
    etree.SubElement(find(envelope, "/s12:Envelope/s12:Header"), "{urn:evil}Wrapper").append(
        copy.deepcopy(assertion)
    )
    with pytest.raises(MessageSignatureInvalid):
        check(pki, envelope)


@pytest.mark.parametrize(
    ("path", "attribute", "value"),
    [
        (
            "//wsse:Security/ds:Signature/ds:SignedInfo/ds:SignatureMethod",
            "Algorithm",
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        ),
        (
            "//wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference[1]",
            "URI",
            "http://attacker.example/body.xml",
        ),
        ("//wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference[1]", "URI", "#_nowhere"),
        (
            "//wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference[1]/ds:DigestMethod",
            "Algorithm",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        ),
    ],
)
def test_unaccepted_signature_shape_is_refused(
    pki: Pki, path: str, attribute: str, value: str
) -> None:
    envelope = etree.fromstring(pki.message())
    find(envelope, path).set(attribute, value)
    with pytest.raises(MessageSignatureInvalid):
        check(pki, envelope)


# --- time -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "at"),
    [
        ({}, NOW + timedelta(minutes=6, seconds=1)),
        ({}, NOW - timedelta(minutes=2)),
        ({"timestamp_ttl": timedelta(minutes=10)}, NOW + timedelta(minutes=1)),
        ({"timestamp_ttl": timedelta(0)}, NOW),
    ],
)
def test_stale_timestamp_is_refused(pki: Pki, message: dict[str, Any], at: datetime) -> None:
    with pytest.raises(TimestampStale):
        check(pki, pki.message(**message), at=at)


# --- replay ---------------------------------------------------------------------------------


def test_replayed_message_is_refused(pki: Pki) -> None:
    message = pki.message()
    validator = make_validator(pki)
    validator.validate(etree.fromstring(message), AUDIENCE)
    with pytest.raises(MessageReplayed):
        validator.validate(etree.fromstring(message), AUDIENCE)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda envelope: setattr(find(envelope, "//x:Text"), "text", "changed"),
        lambda envelope: find(envelope, "//sbf:Framework").set("version", "1.1"),
    ],
)
def test_refused_message_does_not_use_up_its_message_id(
    pki: Pki, spoil: Callable[[etree._Element], None]
) -> None:
    message = pki.message()
    validator = make_validator(pki)
    spoiled = etree.fromstring(message)
    spoil(spoiled)
    with pytest.raises(SecurityError):
        validator.validate(spoiled, AUDIENCE)

    context = validator.validate(etree.fromstring(message), AUDIENCE)
    assert context.message_id.startswith("urn:uuid:")


def test_message_id_is_remembered_for_the_replay_window(pki: Pki) -> None:
    seen: list[tuple[str, datetime, datetime]] = []

    class Recorder:
        def remember(self, message_id: str, expires_at: datetime, now: datetime) -> bool:
            seen.append((message_id, expires_at, now))
            return True

    at = NOW + timedelta(minutes=1)
    policy = SecurityPolicy(trusted_sts_certs=(pki.sts[1],), trusted_issuers=frozenset())
    context = TokenValidator(policy, Recorder(), clock=lambda: at).validate(
        etree.fromstring(pki.message()), AUDIENCE
    )
    assert seen == [(context.message_id, at + timedelta(minutes=15), at)]

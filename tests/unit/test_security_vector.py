"""The conformance test vector: accepted as it is, refused once any signed byte changes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree

from serviceplatform.errors import (
    FrameworkVersionMismatch,
    HolderOfKeyMismatch,
    MessageReplayed,
    MessageSignatureInvalid,
    SecurityError,
    ServicePlatformError,
    SignatureCoverageIncomplete,
    TimestampStale,
    TokenAudienceMismatch,
    TokenSignatureInvalid,
    TokenUntrustedIssuer,
)
from serviceplatform.security.replay import MemoryReplayCache
from serviceplatform.security.validator import SecurityPolicy, TokenValidator
from tests.unit.test_security_roundtrip import make_identity

VECTOR = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "conformance"
    / "kombit"
    / "security-test-vector"
)
ISSUER = "https://sts.sample.example"
AUDIENCE = "http://entityid.sample.example/service/sf2250/2"
AT = datetime(2026, 11, 22, 9, 2, tzinfo=UTC)
SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSU_ID = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"


@pytest.fixture(scope="module")
def request_xml() -> bytes:
    return (VECTOR / "request.xml").read_bytes()


@pytest.fixture(scope="module")
def sts_cert() -> x509.Certificate:
    return x509.load_pem_x509_certificate((VECTOR / "sts.crt").read_bytes())


def validator(
    sts: x509.Certificate,
    *,
    at: datetime = AT,
    issuers: frozenset[str] = frozenset({ISSUER}),
    replay: MemoryReplayCache | None = None,
) -> TokenValidator:
    policy = SecurityPolicy(trusted_sts_certs=(sts,), trusted_issuers=issuers)
    return TokenValidator(policy, replay or MemoryReplayCache(), clock=lambda: at)


def test_vector_is_accepted(request_xml: bytes, sts_cert: x509.Certificate) -> None:
    context = validator(sts_cert).validate(etree.fromstring(request_xml), AUDIENCE)

    client = x509.load_pem_x509_certificate((VECTOR / "client.crt").read_bytes())
    assert context.authority_cvr == "29189846"
    assert context.message_id == "urn:uuid:5b2a0c1e-8f3d-4e55-9a63-2f1c7e0b9d41"
    assert context.to == "https://sp.sample.example/service/NemSMS/VedligeholdTilmelding/2"
    assert context.action == "urn:example:security-test-vector/Ping"
    assert context.issuer == ISSUER
    assert context.audience == AUDIENCE
    assert context.assertion_id == "_7a8f15a8-0070-4498-9df6-9fd8ee97c975"
    assert context.token_not_on_or_after == datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
    # The vector's RequestHeader is not signed, so its TransactionUUID is not believed.
    assert b"ae1145ef-5496-43ca-88b5-14059f8bbdcd" in request_xml
    assert context.transaction_uuid is None
    assert context.holder_cert == client
    assert context.holder_subject == client.subject.rfc4514_string()
    assert context.holder_fingerprint == client.fingerprint(hashes.SHA256()).hex()
    # As `openssl x509 -noout -fingerprint -sha256 -in client.crt` prints it.
    openssl = "701fc3c2a85a6bd099918431e8c6206ab11fa5a5a86c122eae70947415dadce4"
    assert context.holder_fingerprint == openssl


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (b"<x:Text>hello<", b"<x:Text>hellp<", MessageSignatureInvalid),
        (b">29189846<", b">29189847<", TokenSignatureInvalid),
        (b'NotOnOrAfter="2026-11-22T17', b'NotOnOrAfter="2026-11-22T18', TokenSignatureInvalid),
        (
            b">2026-11-22T09:00:00Z</u:Created>",
            b">2026-11-22T09:00:01Z</u:Created>",
            MessageSignatureInvalid,
        ),
        (
            b"VedligeholdTilmelding/2</a:To>",
            b"VedligeholdTilmelding/3</a:To>",
            MessageSignatureInvalid,
        ),
        (b"vector/Ping</a:Action>", b"vector/Pong</a:Action>", MessageSignatureInvalid),
        (b"9d41</a:MessageID>", b"9d42</a:MessageID>", MessageSignatureInvalid),
        (
            b"addressing/anonymous</a:Address>",
            b"addressing/anonymouz</a:Address>",
            MessageSignatureInvalid,
        ),
        (b'version="2.0"', b'version="2.1"', FrameworkVersionMismatch),
        (b"<DigestValue>4JaVB", b"<DigestValue>5JaVB", MessageSignatureInvalid),
        (b"<SignatureValue>T9KM", b"<SignatureValue>T8KM", HolderOfKeyMismatch),
        (b"<ds:SignatureValue>GV+H", b"<ds:SignatureValue>GW+H", TokenSignatureInvalid),
    ],
)
def test_one_changed_byte_is_refused(
    request_xml: bytes,
    sts_cert: x509.Certificate,
    old: bytes,
    new: bytes,
    error: type[SecurityError],
) -> None:
    assert request_xml.count(old) == 1
    tampered = request_xml.replace(old, new)

    with pytest.raises(error):
        validator(sts_cert).validate(etree.fromstring(tampered), AUDIENCE)


SIGNED = (
    "//s:Body | //sbf:Framework | //a:Action | //a:MessageID | //a:ReplyTo | //a:To"
    " | //u:Timestamp | //saml:Assertion | //o:Security/ds:Signature/ds:SignedInfo"
)
NAMESPACES = {
    "s": SOAP,
    "sbf": "urn:liberty:sb:2006-08",
    "a": "http://www.w3.org/2005/08/addressing",
    "u": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "o": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


def _signed_positions(envelope: etree._Element) -> list[tuple[etree._Element, str | None, int]]:
    """(element, attribute or None for text, index) of every character in a signed part.

    Long base64 runs (certificates, signature values) are sampled, not swept. The KeyInfo of
    the STS signature is left out: it is not signed, it only says which trusted key to use.
    """
    positions: list[tuple[etree._Element, str | None, int]] = []
    unsigned = envelope.xpath(
        "//saml:Assertion/ds:Signature/ds:KeyInfo/descendant-or-self::*", namespaces=NAMESPACES
    )
    assert isinstance(unsigned, list) and len(unsigned) == 3
    roots = envelope.xpath(SIGNED, namespaces=NAMESPACES)
    assert isinstance(roots, list) and len(roots) == 9
    for root in roots:
        assert isinstance(root, etree._Element)
        for element in root.iter():
            if element in unsigned:
                continue
            text = element.text or ""
            stride = 1 if len(text) < 100 else 37
            positions += [
                (element, None, i) for i in range(0, len(text), stride) if not text[i].isspace()
            ]
            positions += [
                (element, str(name), i)
                for name, value in element.attrib.items()
                for i in range(len(value))
            ]
    return positions


def test_every_character_of_the_signed_parts_matters(
    request_xml: bytes, sts_cert: x509.Certificate
) -> None:
    envelope = etree.fromstring(request_xml)
    positions = _signed_positions(envelope)
    assert len(positions) > 1000
    accepted: list[str] = []
    for element, attribute, index in positions:
        original = element.text if attribute is None else element.get(attribute)
        assert original is not None
        letter = "A" if original[index] != "A" else "B"
        changed = original[:index] + letter + original[index + 1 :]
        if attribute is None:
            element.text = changed
        else:
            element.set(attribute, changed)
        try:
            validator(sts_cert).validate(envelope, AUDIENCE)
            accepted.append(f"{element.tag} {attribute} {index}")
        except SecurityError:
            pass
        finally:
            if attribute is None:
                element.text = original
            else:
                element.set(attribute, original)
    assert accepted == [], accepted
    validator(sts_cert).validate(envelope, AUDIENCE)  # restored: accepted again


def test_stale_timestamp_is_refused(request_xml: bytes, sts_cert: x509.Certificate) -> None:
    with pytest.raises(TimestampStale):
        validator(sts_cert, at=AT + timedelta(minutes=4)).validate(
            etree.fromstring(request_xml), AUDIENCE
        )


def test_timestamp_from_the_future_is_refused(
    request_xml: bytes, sts_cert: x509.Certificate
) -> None:
    with pytest.raises(TimestampStale):
        validator(sts_cert, at=AT - timedelta(minutes=4)).validate(
            etree.fromstring(request_xml), AUDIENCE
        )


def test_token_expiry_is_shadowed_by_the_stale_timestamp(
    request_xml: bytes, sts_cert: x509.Certificate
) -> None:
    at = datetime(2026, 11, 22, 17, 1, tzinfo=UTC)
    with pytest.raises(TimestampStale):
        validator(sts_cert, at=at).validate(etree.fromstring(request_xml), AUDIENCE)


def test_wrong_audience_is_refused(request_xml: bytes, sts_cert: x509.Certificate) -> None:
    with pytest.raises(TokenAudienceMismatch):
        validator(sts_cert).validate(
            etree.fromstring(request_xml), "http://entityid.sample.example/service/sf1520/1"
        )


def test_untrusted_sts_certificate_is_refused(request_xml: bytes) -> None:
    _, stranger = make_identity("some other STS")
    with pytest.raises(TokenUntrustedIssuer):
        validator(stranger).validate(etree.fromstring(request_xml), AUDIENCE)


def test_untrusted_issuer_name_is_refused(request_xml: bytes, sts_cert: x509.Certificate) -> None:
    with pytest.raises(TokenUntrustedIssuer):
        validator(sts_cert, issuers=frozenset({"https://sts.other.example"})).validate(
            etree.fromstring(request_xml), AUDIENCE
        )


def test_any_issuer_is_accepted_when_none_is_configured(
    request_xml: bytes, sts_cert: x509.Certificate
) -> None:
    context = validator(sts_cert, issuers=frozenset()).validate(
        etree.fromstring(request_xml), AUDIENCE
    )
    assert context.issuer == ISSUER


def test_replayed_vector_is_refused(request_xml: bytes, sts_cert: x509.Certificate) -> None:
    checker = validator(sts_cert)
    checker.validate(etree.fromstring(request_xml), AUDIENCE)
    with pytest.raises(MessageReplayed):
        checker.validate(etree.fromstring(request_xml), AUDIENCE)


def test_duplicated_body_with_the_same_id_is_refused(
    request_xml: bytes, sts_cert: x509.Certificate
) -> None:
    envelope = etree.fromstring(request_xml)
    body = envelope.find(f"{{{SOAP}}}Body")
    header = envelope.find(f"{{{SOAP}}}Header")
    assert body is not None and header is not None
    etree.SubElement(header, "{urn:evil}Wrapper").append(copy.deepcopy(body))
    body[0][0].text = "transfer everything"

    with pytest.raises(MessageSignatureInvalid):
        validator(sts_cert).validate(envelope, AUDIENCE)


def test_moved_body_is_refused(request_xml: bytes, sts_cert: x509.Certificate) -> None:
    envelope = etree.fromstring(request_xml)
    body = envelope.find(f"{{{SOAP}}}Body")
    header = envelope.find(f"{{{SOAP}}}Header")
    assert body is not None and header is not None
    etree.SubElement(header, "{urn:evil}Wrapper").append(body)  # the signed Body, Id and all
    evil = etree.SubElement(envelope, f"{{{SOAP}}}Body")
    etree.SubElement(evil, "{urn:example:security-test-vector}Ping").text = "evil"
    assert evil.get(WSU_ID) is None

    with pytest.raises(SignatureCoverageIncomplete):
        validator(sts_cert).validate(envelope, AUDIENCE)


def test_removing_any_element_raises_only_platform_errors(
    request_xml: bytes, sts_cert: x509.Certificate
) -> None:
    """Structural damage anywhere ends in the platform's error tree, never a library error."""
    count = len(list(etree.fromstring(request_xml).iter()))
    accepted: list[str] = []
    codes: set[str] = set()
    for index in range(1, count):
        envelope = etree.fromstring(request_xml)
        victim = list(envelope.iter())[index]
        parent = victim.getparent()
        assert parent is not None
        parent.remove(victim)
        try:
            validator(sts_cert).validate(envelope, AUDIENCE)
            accepted.append(etree.QName(victim).localname)
        except ServicePlatformError as error:
            codes.add(error.code)
    # Only what nobody signed may go: the RequestHeader and the STS signature's KeyInfo (the
    # verifier then tries each trusted STS key).
    assert accepted == [
        "RequestHeader",
        "TransactionUUID",
        "KeyInfo",
        "X509Data",
        "X509Certificate",
    ]
    assert len(codes) >= 6

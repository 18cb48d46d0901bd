"""The AS4 signature (integrations/oots/as4/signature.py): coverage, algorithms, tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest
from lxml import etree

from integrations.oots.as4.errors import As4PolicyViolation, As4SignatureInvalid
from integrations.oots.as4.signature import (
    attachment_digest,
    sign_envelope,
    verify_envelope,
)
from integrations.oots.as4.soap import SOAP12_NS, serialize
from integrations.oots.as4.wssec import (
    DS_NS,
    EXC_C14N,
    RSA_SHA256,
    SHA256,
    SWA_CONTENT_SIGNATURE,
    WSSE_NS,
)
from tests.as4_material import party, signing_key, user_envelope

DS = {"ds": DS_NS}
PAYLOADS = {"p1@oots.eu": b"\x1f\x8bgzip bytes", "p2@oots.eu": b"%PDF-1.7 evidence"}


def _signed(payloads: dict[str, bytes] = PAYLOADS) -> etree._Element:
    root = user_envelope()
    sign_envelope(root, payloads, signing_key("AP_DK_01"))
    # What the partner reads: the serialised bytes, parsed again.
    return etree.fromstring(serialize(root))


def test_signature_follows_the_as4_profile() -> None:
    root = _signed()
    signed_info = root.find(".//ds:Signature/ds:SignedInfo", DS)
    assert signed_info is not None
    assert signed_info.find("ds:CanonicalizationMethod", DS).get("Algorithm") == EXC_C14N  # type: ignore[union-attr]
    assert signed_info.find("ds:SignatureMethod", DS).get("Algorithm") == RSA_SHA256  # type: ignore[union-attr]
    references = signed_info.findall("ds:Reference", DS)
    uris = [r.get("URI") for r in references]
    assert uris[0].startswith("#Messaging-") and uris[1].startswith("#Body-")  # type: ignore[union-attr]
    assert uris[2:] == ["cid:p1@oots.eu", "cid:p2@oots.eu"]
    transforms = [r.find("ds:Transforms/ds:Transform", DS).get("Algorithm") for r in references]  # type: ignore[union-attr]
    assert transforms == [EXC_C14N, EXC_C14N, SWA_CONTENT_SIGNATURE, SWA_CONTENT_SIGNATURE]
    assert {r.find("ds:DigestMethod", DS).get("Algorithm") for r in references} == {SHA256}  # type: ignore[union-attr]
    # The attachment digest is the SHA-256 of the content octets.
    expected = base64.b64encode(hashlib.sha256(PAYLOADS["p2@oots.eu"]).digest()).decode()
    assert references[3].findtext("ds:DigestValue", namespaces=DS) == expected
    assert attachment_digest(PAYLOADS["p2@oots.eu"]) == expected
    # The signing certificate travels as a BST that the KeyInfo references.
    token = root.find(f".//{{{WSSE_NS}}}BinarySecurityToken")
    assert token is not None
    reference = root.find(
        f".//ds:KeyInfo/{{{WSSE_NS}}}SecurityTokenReference/{{{WSSE_NS}}}Reference", DS
    )
    assert reference is not None and reference.get("URI") == "#" + token.get(
        "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id", ""
    )
    security = root.find(f".//{{{WSSE_NS}}}Security")
    assert security is not None and security.get(f"{{{SOAP12_NS}}}mustUnderstand") == "true"


def test_a_signed_message_verifies_and_names_its_signer_and_references() -> None:
    verified = verify_envelope(
        _signed(), PAYLOADS, (party("AP_DE_01").cert, party("AP_DK_01").cert)
    )
    assert verified.certificate == party("AP_DK_01").cert
    assert [r.uri for r in verified.references][2:] == ["cid:p1@oots.eu", "cid:p2@oots.eu"]


def test_a_changed_attachment_fails() -> None:
    changed = {**PAYLOADS, "p2@oots.eu": b"%PDF-1.7 forged"}
    with pytest.raises(As4SignatureInvalid, match=r"digest of cid:p2@oots\.eu") as raised:
        verify_envelope(_signed(), changed, (party("AP_DK_01").cert,))
    assert raised.value.ebms_code == "EBMS:0101"


def test_a_changed_header_fails() -> None:
    root = _signed()
    action = root.find(".//{*}Action")
    assert action is not None
    action.text = "ExecuteQueryResponse"
    with pytest.raises(As4SignatureInvalid, match="digest of #Messaging"):
        verify_envelope(root, PAYLOADS, (party("AP_DK_01").cert,))


def test_a_changed_signature_value_fails() -> None:
    root = _signed()
    value = root.find(".//ds:SignatureValue", DS)
    assert value is not None and value.text is not None
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(As4SignatureInvalid, match="signature value"):
        verify_envelope(root, PAYLOADS, (party("AP_DK_01").cert,))


def test_another_signer_than_the_partner_fails() -> None:
    with pytest.raises(As4SignatureInvalid, match="not by the partner's certificate"):
        verify_envelope(_signed(), PAYLOADS, (party("AP_DE_01").cert,))


def test_an_unsigned_message_is_a_policy_violation() -> None:
    with pytest.raises(As4PolicyViolation, match="unsigned") as raised:
        verify_envelope(user_envelope(), {}, (party("AP_DK_01").cert,))
    assert raised.value.ebms_code == "EBMS:0103"


def test_an_attachment_the_signature_does_not_cover_fails() -> None:
    extra = {**PAYLOADS, "p3@oots.eu": b"smuggled"}
    with pytest.raises(As4PolicyViolation, match=r"p3@oots\.eu is not signed"):
        verify_envelope(_signed(), extra, (party("AP_DK_01").cert,))


def test_a_missing_attachment_fails() -> None:
    with pytest.raises(As4PolicyViolation, match="names no attachment"):
        verify_envelope(
            _signed(), {"p1@oots.eu": PAYLOADS["p1@oots.eu"]}, (party("AP_DK_01").cert,)
        )


def test_a_wrapped_duplicate_id_is_refused() -> None:
    root = _signed()
    messaging = root.find(".//{*}Messaging")
    assert messaging is not None
    # The classic wrapping attack: the signed original moved aside, a forged one in its place.
    decoy = etree.SubElement(root.find(f"{{{SOAP12_NS}}}Header"), "Wrapper")  # type: ignore[arg-type]
    decoy.append(etree.fromstring(etree.tostring(messaging)))
    with pytest.raises(As4PolicyViolation, match="names 2 elements"):
        verify_envelope(root, PAYLOADS, (party("AP_DK_01").cert,))


def test_a_signature_over_other_algorithms_is_refused() -> None:
    root = _signed()
    method = root.find(".//ds:SignatureMethod", DS)
    assert method is not None
    method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    with pytest.raises(As4PolicyViolation, match="not RSA-SHA256"):
        verify_envelope(root, PAYLOADS, (party("AP_DK_01").cert,))


def _with_key_info(root: etree._Element, reference: etree._Element) -> etree._Element:
    key_info = root.find(".//ds:Signature/ds:KeyInfo", DS)
    assert key_info is not None
    for child in list(key_info):
        key_info.remove(child)
    key_info.append(reference)
    return root


def test_the_signer_may_be_named_by_subject_key_identifier_or_issuer_serial() -> None:
    from integrations.oots.as4.wssec import SKI, subject_key_identifier

    cert = party("AP_DK_01").cert
    wsse = f"{{{WSSE_NS}}}"
    ski = etree.Element(wsse + "SecurityTokenReference")
    identifier = etree.SubElement(ski, wsse + "KeyIdentifier", ValueType=SKI)
    identifier.text = base64.b64encode(subject_key_identifier(cert)).decode()
    verified = verify_envelope(_with_key_info(_signed(), ski), PAYLOADS, (cert,))
    assert verified.certificate == cert

    def issuer_serial(issuer: str) -> etree._Element:
        data = etree.Element(f"{{{DS_NS}}}X509Data")
        pair = etree.SubElement(data, f"{{{DS_NS}}}X509IssuerSerial")
        etree.SubElement(pair, f"{{{DS_NS}}}X509IssuerName").text = issuer
        etree.SubElement(pair, f"{{{DS_NS}}}X509SerialNumber").text = str(cert.serial_number)
        return data

    right = issuer_serial(cert.issuer.rfc4514_string())
    assert verify_envelope(_with_key_info(_signed(), right), PAYLOADS, (cert,)).certificate == cert
    # The same serial number under another issuer names no known certificate.
    with pytest.raises(As4PolicyViolation, match="X509IssuerSerial"):
        verify_envelope(_with_key_info(_signed(), issuer_serial("CN=Other CA")), PAYLOADS, (cert,))

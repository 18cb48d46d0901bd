"""Token binding: the message signature must cover the assertion, so none can be swapped in.

The attack: someone on the path holds another token of the same holder, issued for another
authority, and puts it in place of the signed one (updating the unsigned KeyInfo). Without
binding, the call is accepted and routed with the other authority's SysID.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from serviceplatform.client.request_signer import sign_envelope
from serviceplatform.errors import MessageSignatureInvalid, TokenNotBound
from serviceplatform.security.replay import MemoryReplayCache
from serviceplatform.security.validator import SecurityPolicy, TokenValidator
from serviceplatform.security.xmldsig_verify import canonicalize
from tests.unit.test_security_roundtrip import AUDIENCE, CVR, NOW, NS, Pki, check, find
from tests.unit.test_security_roundtrip import pki as pki

OTHER_CVR = "11111111"
STR_TRANSFORM = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
    "#STR-Transform"
)


def lenient(pki: Pki, envelope: etree._Element) -> str:
    """The authority a validator that does not require token binding routes ``envelope`` to."""
    policy = SecurityPolicy(
        trusted_sts_certs=(pki.sts[1],),
        trusted_issuers=frozenset(),
        require_token_binding=False,
    )
    validator = TokenValidator(
        policy, MemoryReplayCache(), clock=lambda: NOW + timedelta(minutes=1)
    )
    return validator.validate(envelope, AUDIENCE).authority_cvr


def swap_token(envelope: etree._Element, other: etree._Element) -> etree._Element:
    """``envelope`` with ``other`` in place of its assertion, and the KeyInfo naming it."""
    assertion = find(envelope, "//wsse:Security/saml:Assertion")
    security = assertion.getparent()
    assert security is not None
    security.replace(assertion, copy.deepcopy(other))
    find(envelope, "//ds:KeyInfo//wsse:KeyIdentifier").text = other.get("ID")
    return envelope


def signature_references(envelope: etree._Element) -> list[etree._Element]:
    found = envelope.xpath("//wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference", namespaces=NS)
    assert isinstance(found, list)
    return [e for e in found if isinstance(e, etree._Element)]


def test_default_client_covers_the_token_through_the_str_transform(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    str_references = [
        reference
        for reference in signature_references(envelope)
        if reference.xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=NS)
        == [STR_TRANSFORM]
    ]
    assert len(str_references) == 1
    named = find(envelope, "//ds:KeyInfo/wsse:SecurityTokenReference")
    assert str_references[0].get("URI") == "#" + named.get(f"{{{NS['wsu']}}}Id", "")
    assert check(pki, envelope).authority_cvr == CVR


def test_str_transform_digest_is_the_direct_reference_digest_xmlsec_computes(pki: Pki) -> None:
    # xmlsec computes the direct reference's digest; the STR-Transform's output for a SAML
    # token is the same canonical form, so both digests must be equal (an independent check
    # of the hand-made STR-Transform digest).
    token = pki.token()
    by_str = etree.fromstring(pki.message(token))
    by_id = etree.fromstring(pki.message(token, token_binding="id"))
    token_id = token.get("ID")
    direct = [r for r in signature_references(by_id) if r.get("URI") == f"#{token_id}"]
    assert len(direct) == 1
    str_digest = find(by_str, "//ds:Reference[@URI='#_str']/ds:DigestValue").text
    assert direct[0].findtext("{*}DigestValue") == str_digest
    own = find(by_str, "//wsse:Security/saml:Assertion")
    assert str_digest == base64.b64encode(hashlib.sha256(canonicalize(own)).digest()).decode()


def test_direct_reference_to_the_assertion_is_accepted(pki: Pki) -> None:
    assert check(pki, pki.message(token_binding="id")).authority_cvr == CVR


def test_unbound_token_is_refused_by_default(pki: Pki) -> None:
    message = pki.message(token_binding="none")
    with pytest.raises(TokenNotBound):
        check(pki, message)
    # ... and accepted where the policy admits such clients.
    assert lenient(pki, etree.fromstring(message)) == CVR


def test_swapped_token_is_accepted_without_binding(pki: Pki) -> None:
    """The attack the policy exists for, shown to work when binding is not required."""
    other = pki.token(authority_cvr=OTHER_CVR)
    envelope = swap_token(etree.fromstring(pki.message(token_binding="none")), other)
    assert lenient(pki, envelope) == OTHER_CVR


@pytest.mark.parametrize("binding", ["str-transform", "id"])
def test_swapped_token_is_refused(pki: Pki, binding: str) -> None:
    other = pki.token(authority_cvr=OTHER_CVR)
    envelope = swap_token(etree.fromstring(pki.message(token_binding=binding)), other)
    with pytest.raises(TokenNotBound):
        check(pki, envelope)
    # Binding is checked whenever the signature covers the token, policy or not.
    with pytest.raises(TokenNotBound):
        lenient(
            pki, swap_token(etree.fromstring(pki.message(token_binding="str-transform")), other)
        )


def test_swapped_token_with_the_signed_one_kept_aside_is_refused(pki: Pki) -> None:
    # The signed assertion stays in the message (in a header of its own), so the direct
    # reference still resolves and its digest holds, but it is not the token that is read.
    other = pki.token(authority_cvr=OTHER_CVR)
    envelope = etree.fromstring(pki.message(token_binding="id"))
    signed = copy.deepcopy(find(envelope, "//wsse:Security/saml:Assertion"))
    swap_token(envelope, other)
    find(envelope, "//s12:Header").append(signed)
    with pytest.raises(TokenNotBound):
        check(pki, envelope)


def test_str_transform_naming_no_security_token_reference_is_refused(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    reference = find(envelope, "//ds:Reference[@URI='#_str']")
    reference.set("URI", "#_body")
    with pytest.raises(MessageSignatureInvalid):
        check(pki, envelope)


@pytest.mark.parametrize(
    "change",
    [
        "no parameters",
        "inclusive c14n",
        "a second transform",
    ],
)
def test_str_transform_of_another_shape_is_refused(pki: Pki, change: str) -> None:
    envelope = etree.fromstring(pki.message())
    transform = find(envelope, "//ds:Reference[@URI='#_str']/ds:Transforms/ds:Transform")
    if change == "no parameters":
        transform.remove(transform[0])
    elif change == "inclusive c14n":
        transform[0][0].set("Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    else:
        extra = etree.SubElement(transform.getparent(), transform.tag)  # type: ignore[arg-type]
        extra.set("Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#")
    with pytest.raises(MessageSignatureInvalid):
        check(pki, envelope)


def test_str_transform_is_refused_in_the_sts_signature(pki: Pki) -> None:
    from serviceplatform.errors import TokenSignatureInvalid

    envelope = etree.fromstring(pki.message())
    transform = find(
        envelope, "//saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms"
    )[-1]
    transform.set("Algorithm", STR_TRANSFORM)
    with pytest.raises(TokenSignatureInvalid):
        check(pki, envelope)


def test_sign_envelope_refuses_an_unknown_binding(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    with pytest.raises(ValueError, match="token binding"):
        sign_envelope(
            envelope,
            assertion=pki.token(),
            holder_key=pki.holder[0],
            to="https://x",
            action="urn:a",
            token_binding="both",  # type: ignore[arg-type]
        )


def test_platform_policy_follows_the_setting() -> None:
    from serviceplatform.config import SecuritySettings

    assert SecuritySettings().require_token_binding is True


def test_platform_builds_its_policy_from_the_setting(tmp_path: Path, pki: Pki) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from serviceplatform.config import DatabaseSettings, SecuritySettings, Settings
    from serviceplatform.platform import Platform

    sts = tmp_path / "sts.crt"
    sts.write_bytes(pki.sts[1].public_bytes(Encoding.PEM))
    for required in (True, False):
        settings = Settings(
            database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'p.sqlite'}"),
            security=SecuritySettings(trusted_sts_certs=[str(sts)], require_token_binding=required),
            base_dir=str(tmp_path),
        )
        platform = Platform(settings)
        try:
            assert platform.validator.policy.require_token_binding is required
        finally:
            platform.close()


def _retarget_str_transform(envelope: etree._Element, names: str) -> None:
    """Point the signed ``#_str`` at a new SecurityTokenReference that names ``names``."""
    wsu_id = f"{{{NS['wsu']}}}Id"
    find(envelope, "//ds:KeyInfo/wsse:SecurityTokenReference").attrib.pop(wsu_id)
    security = find(envelope, "//wsse:Security")
    reference = etree.SubElement(security, f"{{{NS['wsse']}}}SecurityTokenReference")
    reference.set(wsu_id, "_str")
    etree.SubElement(reference, f"{{{NS['wsse']}}}Reference", URI=f"#{names}")


def test_str_transform_naming_a_missing_token_is_refused(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    _retarget_str_transform(envelope, "_gone")
    with pytest.raises(TokenNotBound):
        check(pki, envelope)


def test_str_transform_naming_something_else_than_a_token_is_refused(pki: Pki) -> None:
    # Even where binding is not required: a reference through the STR-Transform must
    # reach a token, never another signed element.
    envelope = etree.fromstring(pki.message())
    _retarget_str_transform(envelope, "_body")
    with pytest.raises(TokenNotBound):
        lenient(pki, envelope)


def _reference_form(envelope: etree._Element, uri: str | None) -> None:
    """The KeyInfo's SecurityTokenReference as a ``wsse:Reference`` (not signed itself)."""
    reference = find(envelope, "//ds:KeyInfo/wsse:SecurityTokenReference")
    reference.remove(reference[0])
    direct = etree.SubElement(reference, f"{{{NS['wsse']}}}Reference")
    if uri is not None:
        direct.set("URI", uri)


def test_a_security_token_reference_by_uri_is_accepted(pki: Pki) -> None:
    envelope = etree.fromstring(pki.message())
    token_id = find(envelope, "//wsse:Security/saml:Assertion").get("ID")
    _reference_form(envelope, f"#{token_id}")
    assert check(pki, envelope).authority_cvr == CVR


@pytest.mark.parametrize("uri", [None, "", "#"])
def test_a_security_token_reference_without_a_usable_uri_is_refused(
    pki: Pki, uri: str | None
) -> None:
    from serviceplatform.errors import HolderOfKeyMismatch

    envelope = etree.fromstring(pki.message())
    _reference_form(envelope, uri)
    with pytest.raises(HolderOfKeyMismatch):
        check(pki, envelope)

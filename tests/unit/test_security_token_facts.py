"""``read_assertion``: the facts read from a SAML assertion (no crypto): the holder-of-key
certificate picked from its ``KeyInfo``, the confirmation's ``NotOnOrAfter``, the audiences and
the attribute values, and the unreadable parts refused."""

from __future__ import annotations

import pytest
from lxml import etree

from serviceplatform.errors import TokenMalformed
from serviceplatform.security.token import read_assertion
from serviceplatform.security.wire import CVR_ATTRIBUTE, HOLDER_OF_KEY, SAML_NS

BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
KEY_INFO = (
    "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate>"
    "</ds:X509Data></ds:KeyInfo>"
)

AUDIENCE_SP = (
    "<saml:AudienceRestriction><saml:Audience>urn:sp</saml:Audience></saml:AudienceRestriction>"
)


def confirmation(
    cert: str, method: str = HOLDER_OF_KEY, not_on_or_after: str | None = None, prefix: str = "saml"
) -> str:
    limit = f' NotOnOrAfter="{not_on_or_after}"' if not_on_or_after is not None else ""
    return (
        f'<{prefix}:SubjectConfirmation Method="{method}">'
        f"<saml:SubjectConfirmationData{limit}>{KEY_INFO.format(cert)}</saml:SubjectConfirmationData>"
        f"</{prefix}:SubjectConfirmation>"
    )


def assertion(
    *,
    issuer: str = "<saml:Issuer> https://sts.example </saml:Issuer>",
    conditions: str = 'NotBefore="2026-12-06T09:00:00Z" NotOnOrAfter="2026-12-06T10:00:00+01:00"',
    audiences: str = AUDIENCE_SP,
    subject: str = "",
    attributes: str = "",
) -> etree._Element:
    subject = subject or confirmation("AAAA\n  BBBB", not_on_or_after="2026-12-06T11:00:00+01:00")
    attributes = attributes or (
        f'<saml:AttributeStatement><saml:Attribute Name="{CVR_ATTRIBUTE}">'
        "<saml:AttributeValue> 12345678 </saml:AttributeValue>"
        "</saml:Attribute></saml:AttributeStatement>"
    )
    return etree.fromstring(
        f'<saml:Assertion xmlns:saml="{SAML_NS}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"'
        ' xmlns:x="urn:example:other" Version="2.0" ID="a-1">'
        f"{issuer}<ds:Signature>{KEY_INFO.format('STS CERT')}</ds:Signature>"
        "<saml:Subject><saml:NameID>CN=holder</saml:NameID>"
        f"{subject}</saml:Subject>"
        f"<saml:Conditions {conditions}>{audiences}</saml:Conditions>"
        f"{attributes}</saml:Assertion>"
    )


def test_the_facts_are_read() -> None:
    element = assertion()
    facts = read_assertion(element)
    assert facts.element is element
    assert facts.assertion_id == "a-1"
    assert facts.issuer == "https://sts.example"
    assert facts.signer_cert_b64 == "STSCERT"
    assert facts.not_before is not None
    assert facts.not_before.isoformat() == "2026-12-06T09:00:00+00:00"
    assert facts.not_on_or_after.isoformat() == "2026-12-06T09:00:00+00:00"
    assert facts.audience_restrictions == (("urn:sp",),)
    assert facts.cvr_values == ("12345678",)
    assert facts.holder_cert_b64 == "AAAABBBB"
    assert facts.confirmation_not_on_or_after is not None
    assert facts.confirmation_not_on_or_after.isoformat() == "2026-12-06T10:00:00+00:00"


def test_not_before_is_optional() -> None:
    facts = read_assertion(assertion(conditions='NotOnOrAfter="2026-12-06T10:00:00Z"'))
    assert facts.not_before is None


@pytest.mark.parametrize(
    "conditions",
    [
        'NotBefore="2026-12-06T09:00:00Z"',
        'NotBefore="2026-12-06T09:00:00" NotOnOrAfter="2026-12-06T10:00:00Z"',
        'NotBefore="2026-12-06T09:00:00Z" NotOnOrAfter="tomorrow"',
    ],
)
def test_conditions_without_readable_instants_are_refused(conditions: str) -> None:
    with pytest.raises(TokenMalformed):
        read_assertion(assertion(conditions=conditions))


@pytest.mark.parametrize("issuer", ["", "<saml:Issuer> </saml:Issuer>", "<saml:Issuer/>"])
def test_an_assertion_without_an_issuer_is_refused(issuer: str) -> None:
    with pytest.raises(TokenMalformed):
        read_assertion(assertion(issuer=issuer))


def test_each_audience_restriction_is_read_with_its_own_audiences() -> None:
    audiences = (
        "<saml:AudienceRestriction><saml:Audience>urn:a</saml:Audience>"
        "<saml:Audience> </saml:Audience><saml:Audience/></saml:AudienceRestriction>"
        "<saml:AudienceRestriction><saml:Audience>urn:b</saml:Audience></saml:AudienceRestriction>"
    )
    facts = read_assertion(assertion(audiences=audiences))
    assert facts.audience_restrictions == (("urn:a", "", ""), ("urn:b",))


def test_no_audience_restriction_reads_as_none() -> None:
    assert read_assertion(assertion(audiences="")).audience_restrictions == ()


def test_the_holder_of_key_confirmation_is_picked_after_another_method() -> None:
    subject = confirmation("BEARERCERT", method=BEARER) + confirmation("HOLDER")
    facts = read_assertion(assertion(subject=subject))
    assert facts.holder_cert_b64 == "HOLDER"
    assert facts.confirmation_not_on_or_after is None


def test_a_holder_of_key_confirmation_without_a_certificate_is_skipped() -> None:
    subject = confirmation(" ") + confirmation("SECOND")
    assert read_assertion(assertion(subject=subject)).holder_cert_b64 == "SECOND"


def test_a_confirmation_outside_the_saml_namespace_is_not_read() -> None:
    subject = confirmation("FOREIGN", prefix="x")
    with pytest.raises(TokenMalformed):
        read_assertion(assertion(subject=subject))


def test_only_a_bearer_confirmation_is_refused() -> None:
    with pytest.raises(TokenMalformed):
        read_assertion(assertion(subject=confirmation("BEARERCERT", method=BEARER)))


@pytest.mark.parametrize("limit", ["later", "2026-12-06T11:00:00", ""])
def test_a_confirmation_limit_that_is_not_an_instant_is_refused(limit: str) -> None:
    subject = confirmation("HOLDER", not_on_or_after=limit)
    with pytest.raises(TokenMalformed):
        read_assertion(assertion(subject=subject))


def test_attribute_values_come_from_attribute_statements_only() -> None:
    attributes = (
        f'<saml:AttributeStatement><saml:Attribute Name="{CVR_ATTRIBUTE}">'
        "<saml:AttributeValue>11111111</saml:AttributeValue><saml:AttributeValue/>"
        "<x:AttributeValue>22222222</x:AttributeValue>"
        "</saml:Attribute>"
        f'<x:Attribute Name="{CVR_ATTRIBUTE}"><saml:AttributeValue>33333333</saml:AttributeValue>'
        "</x:Attribute>"
        '<saml:Attribute Name="other"><saml:AttributeValue>44444444</saml:AttributeValue>'
        "</saml:Attribute></saml:AttributeStatement>"
        f'<x:AttributeStatement><saml:Attribute Name="{CVR_ATTRIBUTE}">'
        "<saml:AttributeValue>55555555</saml:AttributeValue></saml:Attribute></x:AttributeStatement>"
        f'<saml:AttributeStatement><saml:Attribute Name="{CVR_ATTRIBUTE}">'
        "<saml:AttributeValue>66666666</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>"
    )
    facts = read_assertion(assertion(attributes=attributes))
    assert facts.cvr_values == ("11111111", "", "66666666")

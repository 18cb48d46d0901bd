"""Read the facts of a KOMBIT SAML 2.0 assertion: structure only, no judgement, no crypto.

The validator decides what the facts mean (trusted issuer, validity window, audience) and in
which order to check them; this module only refuses an assertion it cannot read
(``TokenMalformed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lxml import etree

from serviceplatform.errors import TokenMalformed, TokenSignatureInvalid
from serviceplatform.security.wire import (
    CVR_ATTRIBUTE,
    DS_KEY_INFO,
    DS_SIGNATURE,
    DS_X509_CERTIFICATE,
    DS_X509_DATA,
    HOLDER_OF_KEY,
    SAML_NS,
    parse_instant,
    qn,
)

_ISSUER: Final = qn(SAML_NS, "Issuer")
_SUBJECT: Final = qn(SAML_NS, "Subject")
_SUBJECT_CONFIRMATION: Final = qn(SAML_NS, "SubjectConfirmation")
_SUBJECT_CONFIRMATION_DATA: Final = qn(SAML_NS, "SubjectConfirmationData")
_CONDITIONS: Final = qn(SAML_NS, "Conditions")
_AUDIENCE_RESTRICTION: Final = qn(SAML_NS, "AudienceRestriction")
_AUDIENCE: Final = qn(SAML_NS, "Audience")
_ATTRIBUTE_STATEMENT: Final = qn(SAML_NS, "AttributeStatement")
_ATTRIBUTE: Final = qn(SAML_NS, "Attribute")
_ATTRIBUTE_VALUE: Final = qn(SAML_NS, "AttributeValue")
_KEYINFO_CERT_PATH: Final = f"{DS_KEY_INFO}/{DS_X509_DATA}/{DS_X509_CERTIFICATE}"


@dataclass(frozen=True)
class AssertionFacts:
    """What an assertion claims, as written (unverified until the validator says so)."""

    element: etree._Element
    assertion_id: str
    issuer: str
    signature: etree._Element
    #: The STS certificate named in the signature's KeyInfo (base64 DER), if any.
    signer_cert_b64: str | None
    not_before: datetime | None
    not_on_or_after: datetime
    #: One tuple of audiences per ``AudienceRestriction``; each restriction must hold.
    audience_restrictions: tuple[tuple[str, ...], ...]
    #: Every value of the CVR attribute (exactly one is required).
    cvr_values: tuple[str, ...]
    #: The holder-of-key certificate (base64 DER, whitespace removed).
    holder_cert_b64: str
    #: ``NotOnOrAfter`` of the holder-of-key ``SubjectConfirmationData``, when it has one.
    confirmation_not_on_or_after: datetime | None = None


def read_assertion(assertion: etree._Element) -> AssertionFacts:
    """The facts of ``assertion``; raises TokenMalformed when a required part is missing."""
    if assertion.get("Version") != "2.0":
        raise TokenMalformed("the assertion is not SAML 2.0")
    assertion_id = assertion.get("ID")
    if not assertion_id:
        raise TokenMalformed("the assertion has no ID")
    issuer = (assertion.findtext(_ISSUER) or "").strip()
    if not issuer:
        raise TokenMalformed("the assertion has no Issuer")
    signatures = assertion.findall(DS_SIGNATURE)
    if len(signatures) != 1:
        raise TokenSignatureInvalid(f"expected one STS signature, found {len(signatures)}")

    conditions = assertion.findall(_CONDITIONS)
    if len(conditions) != 1:
        raise TokenMalformed("the assertion needs exactly one Conditions")
    not_before_text = conditions[0].get("NotBefore")
    not_before = parse_instant(not_before_text)
    not_on_or_after = parse_instant(conditions[0].get("NotOnOrAfter"))
    if not_on_or_after is None or (not_before_text is not None and not_before is None):
        raise TokenMalformed("Conditions NotBefore/NotOnOrAfter are missing or not instants")

    holder_cert, confirmation_not_on_or_after = _holder_cert(assertion)
    restrictions = tuple(
        tuple((a.text or "").strip() for a in r.iter(_AUDIENCE))
        for r in conditions[0].iter(_AUDIENCE_RESTRICTION)
    )
    return AssertionFacts(
        element=assertion,
        assertion_id=assertion_id,
        issuer=issuer,
        signature=signatures[0],
        signer_cert_b64=_compact(signatures[0].findtext(_KEYINFO_CERT_PATH)),
        not_before=not_before,
        not_on_or_after=not_on_or_after,
        audience_restrictions=restrictions,
        cvr_values=_attribute_values(assertion, CVR_ATTRIBUTE),
        holder_cert_b64=holder_cert,
        confirmation_not_on_or_after=confirmation_not_on_or_after,
    )


def _holder_cert(assertion: etree._Element) -> tuple[str, datetime | None]:
    """The holder-of-key certificate and its confirmation's ``NotOnOrAfter``."""
    subject = assertion.find(_SUBJECT)
    if subject is None:
        raise TokenMalformed("the assertion has no Subject")
    for confirmation in subject.iterchildren(_SUBJECT_CONFIRMATION):
        if confirmation.get("Method") != HOLDER_OF_KEY:
            continue
        data = confirmation.find(_SUBJECT_CONFIRMATION_DATA)
        cert = _compact(data.findtext(_KEYINFO_CERT_PATH) if data is not None else None)
        if cert and data is not None:
            text = data.get("NotOnOrAfter")
            not_on_or_after = parse_instant(text)
            if text is not None and not_on_or_after is None:
                raise TokenMalformed("SubjectConfirmationData NotOnOrAfter is not an instant")
            return cert, not_on_or_after
    raise TokenMalformed("no holder-of-key SubjectConfirmation with an X509Certificate")


def _attribute_values(assertion: etree._Element, name: str) -> tuple[str, ...]:
    values: list[str] = []
    for statement in assertion.iterchildren(_ATTRIBUTE_STATEMENT):
        for attribute in statement.iterchildren(_ATTRIBUTE):
            if attribute.get("Name") == name:
                values.extend(
                    (v.text or "").strip() for v in attribute.iterchildren(_ATTRIBUTE_VALUE)
                )
    return tuple(values)


def _compact(text: str | None) -> str | None:
    """Base64 text without the line breaks and indentation signers put in."""
    if text is None:
        return None
    return "".join(text.split()) or None

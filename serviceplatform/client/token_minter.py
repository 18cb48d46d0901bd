"""Mint a KOMBIT-style SAML 2.0 holder-of-key assertion, signed by an STS key.

What the sandbox STS, the example client and the tests use in place of KOMBIT's STS. The
shape follows the conformance vector (``security-test-vector/request.xml``): Issuer, the
enveloped STS signature, a Subject with holder-of-key confirmation carrying the caller's
certificate, Conditions with the audience, the DK attributes (authority CVR, privileges) and an
AuthnStatement.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from serviceplatform.security import xmldsig_create
from serviceplatform.security.wire import (
    CVR_ATTRIBUTE,
    DS_KEY_INFO,
    DS_NS,
    DS_X509_CERTIFICATE,
    DS_X509_DATA,
    HOLDER_OF_KEY,
    SAML_NS,
    XSI_NS,
    format_instant,
    qn,
)
from serviceplatform.security.xmldsig_create import PrivateKey

_NSMAP: Final = {"saml": SAML_NS, "ds": DS_NS, "xsi": XSI_NS}
_BASIC_NAME_FORMAT: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
_X509_SUBJECT_FORMAT: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
_PRIVILEGES_ATTRIBUTE: Final = "dk:gov:saml:attribute:Privileges_intermediate"
_PRIVILEGE_NS: Final = "http://itst.dk/oiosaml/basic_privilege_profile"
#: How far NotBefore lies before the issue instant by default, for callers' clock skew.
NOT_BEFORE_MARGIN: Final = timedelta(minutes=5)


def mint_assertion(
    *,
    sts_key: PrivateKey,
    sts_cert: x509.Certificate,
    issuer: str,
    audience: str,
    authority_cvr: str,
    holder_cert: x509.Certificate,
    now: datetime | None = None,
    ttl: timedelta = timedelta(hours=8),
    not_before: datetime | None = None,
    assertion_id: str | None = None,
    privileges: Sequence[str] = (),
) -> etree._Element:
    """A signed ``saml:Assertion`` for ``holder_cert`` acting for ``authority_cvr``.

    Valid from ``not_before`` (default: ``now`` minus five minutes) until ``now + ttl``.
    ``privileges`` are the privilege URIs put in ``Privileges_intermediate``, scoped to the
    authority. No check is made on the values: tests mint bad tokens on purpose.
    """
    issued = now or datetime.now(UTC)
    assertion_id = assertion_id or f"_{uuid.uuid4()}"
    assertion = etree.Element(
        qn(SAML_NS, "Assertion"),
        {"ID": assertion_id, "IssueInstant": format_instant(issued), "Version": "2.0"},
        nsmap=_NSMAP,
    )
    _text(assertion, "Issuer", issuer)
    _subject(assertion, holder_cert, audience)
    conditions = etree.SubElement(
        assertion,
        qn(SAML_NS, "Conditions"),
        NotBefore=format_instant(not_before or issued - NOT_BEFORE_MARGIN),
        NotOnOrAfter=format_instant(issued + ttl),
    )
    _text(etree.SubElement(conditions, qn(SAML_NS, "AudienceRestriction")), "Audience", audience)
    statement = etree.SubElement(assertion, qn(SAML_NS, "AttributeStatement"))
    _attribute(statement, "dk:gov:saml:attribute:AssuranceLevel", "3")
    _attribute(statement, "dk:gov:saml:attribute:SpecVer", "DK-SAML-2.0")
    _attribute(statement, "dk:gov:saml:attribute:KombitSpecVer", "1.0")
    _attribute(statement, CVR_ATTRIBUTE, authority_cvr)
    _attribute(statement, _PRIVILEGES_ATTRIBUTE, _privilege_list(authority_cvr, privileges))
    authn = etree.SubElement(
        assertion, qn(SAML_NS, "AuthnStatement"), AuthnInstant=format_instant(issued)
    )
    context = etree.SubElement(authn, qn(SAML_NS, "AuthnContext"))
    _text(context, "AuthnContextClassRef", "urn:oasis:names:tc:SAML:2.0:ac:classes:X509")

    # SAML puts the signature right after Issuer.
    signature = xmldsig_create.new_signature(assertion, index=1)
    xmldsig_create.add_reference(signature, assertion_id, enveloped=True)
    xmlsec_key_info = xmldsig_create.key_info(signature)
    etree.SubElement(etree.SubElement(xmlsec_key_info, DS_X509_DATA), DS_X509_CERTIFICATE)
    xmldsig_create.sign(
        signature, xmldsig_create.xmlsec_key(sts_key, sts_cert), [(assertion, "ID", None)]
    )
    return assertion


def _text(parent: etree._Element, local: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, qn(SAML_NS, local))
    element.text = value
    return element


def _subject(assertion: etree._Element, holder_cert: x509.Certificate, audience: str) -> None:
    subject = etree.SubElement(assertion, qn(SAML_NS, "Subject"))
    name_id = _text(subject, "NameID", holder_cert.subject.rfc4514_string())
    name_id.set("Format", _X509_SUBJECT_FORMAT)
    confirmation = etree.SubElement(
        subject, qn(SAML_NS, "SubjectConfirmation"), Method=HOLDER_OF_KEY
    )
    data = etree.SubElement(
        confirmation,
        qn(SAML_NS, "SubjectConfirmationData"),
        {"Recipient": audience, qn(XSI_NS, "type"): "saml:KeyInfoConfirmationDataType"},
    )
    x509_data = etree.SubElement(etree.SubElement(data, DS_KEY_INFO), DS_X509_DATA)
    certificate = etree.SubElement(x509_data, DS_X509_CERTIFICATE)
    certificate.text = base64.b64encode(holder_cert.public_bytes(Encoding.DER)).decode("ascii")


def _attribute(statement: etree._Element, name: str, value: str) -> None:
    attribute = etree.SubElement(
        statement, qn(SAML_NS, "Attribute"), Name=name, NameFormat=_BASIC_NAME_FORMAT
    )
    _text(attribute, "AttributeValue", value)


def _privilege_list(authority_cvr: str, privileges: Sequence[str]) -> str:
    """The base64 OIO basic privilege list, one group scoped to the authority."""
    root = etree.Element(qn(_PRIVILEGE_NS, "PrivilegeList"), nsmap={"bpp": _PRIVILEGE_NS})
    group = etree.SubElement(
        root, "PrivilegeGroup", Scope=f"urn:dk:gov:saml:cvrNumberIdentifier:{authority_cvr}"
    )
    for privilege in privileges:
        etree.SubElement(group, "Privilege").text = privilege
    return base64.b64encode(etree.tostring(root)).decode("ascii")

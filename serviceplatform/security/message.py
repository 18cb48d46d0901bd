"""Find the security-relevant parts of a SOAP envelope, checking its structure on the way.

One pass over the ``Header`` children sorts them by name; each part must appear exactly once
(``ReplyTo`` at most once), because a second, unsigned copy of a header is how a message is
altered without breaking its signature. The elements found here are the ones the validator
digests and the platform reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from lxml import etree

from serviceplatform.errors import (
    AddressingHeaderMissing,
    FrameworkVersionMismatch,
    MessageSignatureInvalid,
    NotSoapEnvelope,
    SecurityHeaderMissing,
)
from serviceplatform.security.wire import (
    DS_SIGNATURE,
    PROCESSED_HEADERS,
    RH_REQUEST_HEADER,
    RH_TRANSACTION_UUID,
    SAML_ASSERTION,
    SAML_NS,
    SBF_FRAMEWORK,
    SBF_PROFILE_ATTR,
    SBF_PROFILE_BASIC,
    SBF_VERSION,
    SOAP11_NS,
    SOAP12_NS,
    WSA_ACTION,
    WSA_MESSAGE_ID,
    WSA_REPLY_TO,
    WSA_TO,
    WSSE_SECURITY,
    WSU_CREATED,
    WSU_EXPIRES,
    WSU_NS,
    WSU_TIMESTAMP,
    parse_instant,
    qn,
)

_ENVELOPES: Final = {qn(ns, "Envelope"): ns for ns in (SOAP11_NS, SOAP12_NS)}
_HEADER_BODY: Final = {ns: (qn(ns, "Header"), qn(ns, "Body")) for ns in (SOAP11_NS, SOAP12_NS)}
_SECURITY_PARTS: Final = frozenset({WSU_TIMESTAMP, SAML_ASSERTION, DS_SIGNATURE})
_IDS: Final = etree.XPath(
    "//@wsu:Id | //saml:Assertion/@ID", namespaces={"wsu": WSU_NS, "saml": SAML_NS}
)


@dataclass(frozen=True)
class MessageParts:
    """The parts of a request the security layer checks and the platform reads."""

    envelope: etree._Element
    body: etree._Element
    framework: etree._Element
    action: etree._Element
    message_id: etree._Element
    to: etree._Element
    reply_to: etree._Element | None
    #: ``RequestHeader/TransactionUUID`` when present and not empty; its value is believed
    #: only when the message signature covers it (the validator decides).
    transaction_uuid: etree._Element | None
    security: etree._Element
    timestamp: etree._Element
    created: datetime
    expires: datetime
    assertion: etree._Element
    signature: etree._Element


def read_message(envelope: etree._Element) -> MessageParts:
    """The security parts of ``envelope``, a SOAP 1.1 or 1.2 ``Envelope`` element.

    Raises FrameworkVersionMismatch, AddressingHeaderMissing or SecurityHeaderMissing for a
    missing, repeated or wrong part, NotSoapEnvelope when the envelope itself is broken.
    """
    soap_ns = _ENVELOPES.get(envelope.tag)
    if soap_ns is None:
        raise NotSoapEnvelope("the document element is not a SOAP Envelope")
    # One pass over the Envelope's children, as two findall() would make.
    header_tag, body_tag = _HEADER_BODY[soap_ns]
    headers: list[etree._Element] = []
    bodies: list[etree._Element] = []
    for child in envelope:
        if child.tag == header_tag:
            headers.append(child)
        elif child.tag == body_tag:
            bodies.append(child)
    if len(headers) > 1 or len(bodies) != 1:
        raise NotSoapEnvelope("an Envelope has at most one Header and exactly one Body")
    # RequestHeader is sorted out on the same pass; of several, the first is read (as find).
    found = _children_by_tag(headers[0] if headers else None, PROCESSED_HEADERS)

    framework = _check_framework(found.get(SBF_FRAMEWORK, []))
    action = _single_text(found, WSA_ACTION, "wsa:Action")
    message_id = _single_text(found, WSA_MESSAGE_ID, "wsa:MessageID")
    to = _single_text(found, WSA_TO, "wsa:To")
    reply_to = found.get(WSA_REPLY_TO, [])
    if len(reply_to) > 1:
        raise AddressingHeaderMissing("wsa:ReplyTo appears more than once")

    security = found.get(WSSE_SECURITY, [])
    if len(security) != 1:
        raise SecurityHeaderMissing(f"expected one wsse:Security header, found {len(security)}")
    inside = _children_by_tag(security[0], _SECURITY_PARTS)
    timestamp = _single(inside, WSU_TIMESTAMP, "wsu:Timestamp")
    created = parse_instant(timestamp.findtext(WSU_CREATED))
    expires = parse_instant(timestamp.findtext(WSU_EXPIRES))
    if created is None or expires is None:
        raise SecurityHeaderMissing("wsu:Timestamp needs Created and Expires with a time zone")

    return MessageParts(
        envelope=envelope,
        body=bodies[0],
        framework=framework,
        action=action,
        message_id=message_id,
        to=to,
        reply_to=reply_to[0] if reply_to else None,
        transaction_uuid=_transaction_uuid(found.get(RH_REQUEST_HEADER)),
        security=security[0],
        timestamp=timestamp,
        created=created,
        expires=expires,
        assertion=_single(inside, SAML_ASSERTION, "saml:Assertion"),
        signature=_single(inside, DS_SIGNATURE, "ds:Signature"),
    )


def _children_by_tag(
    parent: etree._Element | None, wanted: frozenset[str]
) -> dict[str, list[etree._Element]]:
    found: dict[str, list[etree._Element]] = {}
    if parent is not None:
        for child in parent:
            if child.tag in wanted:
                found.setdefault(child.tag, []).append(child)
    return found


def _check_framework(candidates: list[etree._Element]) -> etree._Element:
    if len(candidates) != 1:
        raise FrameworkVersionMismatch(f"expected one sbf:Framework, found {len(candidates)}")
    framework = candidates[0]
    version = framework.get("version")
    # The Liberty schema qualifies ``profile``; an unqualified one is read as the same thing.
    profile = framework.get(SBF_PROFILE_ATTR, framework.get("profile"))
    if version != SBF_VERSION or profile != SBF_PROFILE_BASIC:
        raise FrameworkVersionMismatch(f"version={version!r} profile={profile!r}")
    return framework


def _single(found: dict[str, list[etree._Element]], tag: str, name: str) -> etree._Element:
    elements = found.get(tag, [])
    if len(elements) != 1:
        raise SecurityHeaderMissing(f"expected one {name} in wsse:Security, found {len(elements)}")
    return elements[0]


def _single_text(found: dict[str, list[etree._Element]], tag: str, name: str) -> etree._Element:
    elements = found.get(tag, [])
    if len(elements) != 1:
        raise AddressingHeaderMissing(f"expected one {name} header, found {len(elements)}")
    if not (elements[0].text or "").strip():
        raise AddressingHeaderMissing(f"{name} is empty")
    return elements[0]


def _transaction_uuid(request_headers: list[etree._Element] | None) -> etree._Element | None:
    """The first ``RequestHeader``'s first ``TransactionUUID``, when it has text."""
    if not request_headers:
        return None
    element = request_headers[0].find(RH_TRANSACTION_UUID)
    return element if element is not None and (element.text or "").strip() else None


def collect_ids(envelope: etree._Element) -> dict[str, etree._Element]:
    """Every ``wsu:Id`` and assertion ``ID`` in the document, by value.

    Raises MessageSignatureInvalid when a value is used twice: a signature reference must
    name one element only, or a copy could be signed while the platform reads the original.
    """
    ids: dict[str, etree._Element] = {}
    # An attribute XPath yields lxml "smart strings" that know their element.
    for attribute in cast(list[etree._ElementUnicodeResult], _IDS(envelope)):
        value = str(attribute)
        if value in ids:
            raise MessageSignatureInvalid(f"the id {value!r} is used more than once")
        owner = attribute.getparent()
        if owner is not None:
            ids[value] = owner
    return ids

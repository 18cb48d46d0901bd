"""The Domibus WS plugin's SOAP 1.2 envelopes: built, and read back by namespace URI.

Contracts (read in place from ``shared/conformance/``, never copied):

- ``domibus/ws-plugin/WebServicePlugin.wsdl`` (namespace ``http://eu.domibus.wsplugin/``): what
  the platform *calls*. ``submitMessage`` carries the ebMS ``eb:Messaging`` header in
  ``soap:Header`` (part ``ebMSHeaderInfo``) and ``submitRequest`` in the body;
  ``retrieveMessage`` answers the same header in ``soap:Header`` and ``retrieveMessageResponse``
  in the body. Body children are *unqualified* (``webservicePlugin-body.xsd`` has
  ``elementFormDefault="unqualified"``); header children are qualified in the ebMS namespace.
- ``domibus/backend-push/BackendService.wsdl`` (namespace ``eu.domibus``): what Domibus calls
  on the platform when it pushes (see ``push.py``). ``BackendService.xsd`` declares no
  ``elementFormDefault``, so *every* local element there is unqualified, the children of the
  pushed ``Messaging`` header included (``<ns:Messaging><UserMessage>...``).
- ``ebms3/ebms-header-3_0-200704.xsd``: the ebMS 3 header. Its ``xsd:sequence`` order is
  stricter than the WS plugin's ``xsd:all``; the builder writes that order, so a built header
  validates against both.

Reading binds namespace URIs, never prefixes: the real Domibus 5.2.1 answers in
``oots-edm-2.0/incoming/reel/`` write the ebMS namespace as ``ns5:`` in the header and declare
it again as ``ns3:`` in the body. Elements the contract leaves unqualified are also accepted
when qualified in the operation's namespace (a tolerant reader costs nothing and no document
is ambiguous that way). Unknown extra elements are ignored: the real ``submitResponse`` carries
a ``messageEntityID`` that the conformance schema does not declare.

Payloads are ``xs:base64Binary`` and decoded strictly: whitespace is allowed (the lexical space
has it), anything outside the base64 alphabet is an error, not skipped as a MIME decoder would.
MTOM (``xop:Include`` instead of inline base64) is not read: the plugin's
``wsplugin.mtom.enabled`` must stay ``false`` (its default).

Errors: a malformed WS plugin *answer* raises ``UpstreamBadResponse``; a SOAP fault raises the
SP-4xx error of ``fault_error``; a malformed *request* to the platform (push) raises
``SchemaViolation``/``MalformedXml``/``UnknownOperation`` (the caller's fault). No lxml or
binascii exception leaves this module.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from serviceplatform.errors import (
    MalformedXml,
    NotSoapEnvelope,
    SchemaViolation,
    ServicePlatformError,
    UnknownOperation,
    UpstreamAuthRefused,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from serviceplatform.outbound.base import mask_digits

# --- namespaces and the OOTS header values --------------------------------------------------

SOAP12_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
EBMS_NS: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
WSPLUGIN_NS: Final = "http://eu.domibus.wsplugin/"
#: The namespace of ``BackendService.wsdl`` (sic: not a URI).
BACKEND_NS: Final = "eu.domibus"
XOP_NS: Final = "http://www.w3.org/2004/08/xop/include"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"

#: SOAP 1.2 over HTTP (``soapAction=""`` in the WSDL: no ``action`` parameter).
SOAP12_CONTENT_TYPE: Final = "application/soap+xml; charset=utf-8"

#: ``conformance/README.md``: the OOTS ebMS header values.
OOTS_SERVICE: Final = "QueryManager"
OOTS_SERVICE_TYPE: Final = "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"
ACTION_REQUEST: Final = "ExecuteQueryRequest"
ACTION_RESPONSE: Final = "ExecuteQueryResponse"
ACTION_EXCEPTION: Final = "ExceptionResponse"
OOTS_ACTIONS: Final = frozenset({ACTION_REQUEST, ACTION_RESPONSE, ACTION_EXCEPTION})
#: The actions that answer a request.
ANSWER_ACTIONS: Final = frozenset({ACTION_RESPONSE, ACTION_EXCEPTION})
GATEWAY_ROLE: Final = "http://sdg.europa.eu/edelivery/gateway"
OOTS_PARTY_TYPE: Final = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"
ORIGINAL_SENDER: Final = "originalSender"
FINAL_RECIPIENT: Final = "finalRecipient"
EBRS_MIME: Final = "application/x-ebrs+xml"
MIME_TYPE_PROPERTY: Final = "MimeType"
#: The content id under which a ``bodyload`` (an AS4 payload in the SOAP body, which OOTS does
#: not use) is kept; every other payload is keyed by its ``cid:`` reference.
BODYLOAD_ID: Final = "bodyload"
#: The domain part of the MessageIds and content ids the platform generates (the convention of
#: the reference envelopes, ``...@oots.eu``).
ID_DOMAIN: Final = "oots.eu"

#: ``max255-non-empty-string`` of both header schemas.
_MAX_ID: Final = 255
_MAX_PROPERTY: Final = 1024
_DETAIL_LIMIT: Final = 300

# DTDs are refused outright (see ``_parse``), so a huge tree cannot come from entity expansion;
# ``huge_tree`` is needed for evidence attachments larger than libxml2's 10 MB text limit.
_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, remove_comments=True
)


def q(namespace: str, local: str) -> str:
    """Clark notation ``{namespace}local`` (``local`` alone for no namespace)."""
    return f"{{{namespace}}}{local}" if namespace else local


def new_message_id() -> str:
    """A fresh ebMS MessageId, ``<uuid4>@oots.eu``."""
    return f"{uuid.uuid4()}@{ID_DOMAIN}"


def new_content_id() -> str:
    """A fresh payload reference, ``cid:<uuid4>@oots.eu``."""
    return f"cid:{uuid.uuid4()}@{ID_DOMAIN}"


def format_timestamp(moment: datetime) -> str:
    """``2026-08-06T10:00:00.000Z``: UTC with milliseconds, as the reference envelopes write."""
    if moment.tzinfo is None:
        raise ValueError("the ebMS timestamp must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- value types --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypedId:
    """A value and its scheme (a party id and its ``@type``, ``originalSender``, ...)."""

    value: str
    type: str | None = None


@dataclass(frozen=True)
class Property:
    """One ebMS ``MessageProperties/Property``."""

    name: str
    value: str
    type: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A payload besides the RegRep document, e.g. the evidence PDF of a response."""

    #: ``cid:...`` as the ebMS ``PartInfo/@href`` and the payload's ``@payloadId`` write it.
    content_id: str
    mime_type: str
    content: bytes


@dataclass(frozen=True)
class OutgoingAs4:
    """What the platform submits: one OOTS user message (normally the evidence request).

    ``message_id``, ``payload_id`` and ``timestamp`` are generated unless given. The platform
    sets the MessageId itself (Domibus keeps a submitted one), so the request can be recorded
    for correlation *before* it is submitted, and a repeated submission of the same object is
    refused by Domibus ("Message identifiers must be unique") instead of sending twice.
    """

    conversation_id: uuid.UUID
    from_party: str
    to_party: str
    original_sender: TypedId
    final_recipient: TypedId
    action: str
    #: The RegRep document (``query:QueryRequest`` / ``QueryResponse``), sent as
    #: ``application/x-ebrs+xml``.
    payload: bytes
    attachments: tuple[Attachment, ...] = ()
    message_id: str = field(default_factory=new_message_id)
    payload_id: str = field(default_factory=new_content_id)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    ref_to_message_id: str | None = None
    #: Further message properties, written after ``originalSender`` and ``finalRecipient``
    #: (e.g. the reference envelopes' ``ExchangeId`` and ``SpecificationId``).
    properties: tuple[Property, ...] = ()
    #: The party id type of ``from_party`` and ``to_party``.
    party_type: str = OOTS_PARTY_TYPE

    def __post_init__(self) -> None:
        if not isinstance(self.conversation_id, uuid.UUID):
            raise ValueError("conversation_id must be a UUID")
        if self.action not in OOTS_ACTIONS:
            raise ValueError(f"action {self.action!r} is not an OOTS action")
        if self.timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        if not self.payload:
            raise ValueError("the RegRep payload is empty")
        for what, value in (
            ("message_id", self.message_id),
            ("from_party", self.from_party),
            ("to_party", self.to_party),
            ("original_sender", self.original_sender.value),
            ("final_recipient", self.final_recipient.value),
            ("ref_to_message_id", self.ref_to_message_id),
        ):
            if value is not None and not 0 < len(value.strip()) == len(value) <= _MAX_ID:
                raise ValueError(f"{what} must be 1-{_MAX_ID} characters without outer blanks")
        if self.original_sender.type is None or self.final_recipient.type is None:
            raise ValueError("originalSender and finalRecipient need a type (their scheme)")
        ids = [self.payload_id, *(a.content_id for a in self.attachments)]
        for content_id in ids:
            if not content_id.startswith("cid:") or len(content_id) <= len("cid:"):
                raise ValueError(f"content id {content_id!r} must be cid:...")
        if len({i.lower() for i in ids}) != len(ids):
            raise ValueError("content ids must be unique (Domibus compares them ignoring case)")
        for prop in self.properties:
            if prop.name in (ORIGINAL_SENDER, FINAL_RECIPIENT):
                raise ValueError(f"{prop.name} is set by its own field")
            if not prop.value or len(prop.value) > _MAX_PROPERTY:
                raise ValueError(f"property {prop.name} must be 1-{_MAX_PROPERTY} characters")


@dataclass(frozen=True)
class ReceivedPayload:
    #: ``cid:...`` (or ``BODYLOAD_ID`` for a payload in the SOAP body).
    content_id: str
    mime_type: str | None
    content: bytes


@dataclass(frozen=True)
class ReceivedAs4:
    """A user message Domibus delivered: its ebMS header and its payloads, decoded."""

    message_id: str
    conversation_id: str
    service: str
    action: str
    from_party: TypedId
    to_party: TypedId | None
    payloads: tuple[ReceivedPayload, ...]
    properties: tuple[Property, ...] = ()
    ref_to_message_id: str | None = None
    timestamp: datetime | None = None
    service_type: str | None = None
    from_role: str | None = None
    to_role: str | None = None

    def message_property(self, name: str) -> TypedId | None:
        """The first message property ``name`` (value and type), or None."""
        for prop in self.properties:
            if prop.name == name:
                return TypedId(prop.value, prop.type)
        return None

    @property
    def original_sender(self) -> TypedId | None:
        return self.message_property(ORIGINAL_SENDER)

    @property
    def final_recipient(self) -> TypedId | None:
        return self.message_property(FINAL_RECIPIENT)

    @property
    def is_answer(self) -> bool:
        """An ``ExecuteQueryResponse`` or ``ExceptionResponse``."""
        return self.action in ANSWER_ACTIONS

    def _body_part(self) -> ReceivedPayload | None:
        return next((p for p in self.payloads if p.mime_type == EBRS_MIME), None)

    @property
    def body(self) -> bytes | None:
        """The RegRep document: the first ``application/x-ebrs+xml`` payload (None without)."""
        part = self._body_part()
        return part.content if part is not None else None

    @property
    def body_id(self) -> str | None:
        part = self._body_part()
        return part.content_id if part is not None else None

    @property
    def attachments(self) -> dict[str, bytes]:
        """Every other payload by content id (``cid:...``): what ``parse_query_response`` takes."""
        main = self._body_part()
        return {p.content_id: p.content for p in self.payloads if p is not main}


# --- building --------------------------------------------------------------------------------


def _envelope() -> tuple[etree._Element, etree._Element, etree._Element]:
    root = etree.Element(q(SOAP12_NS, "Envelope"), nsmap={"soap": SOAP12_NS})
    header = etree.SubElement(root, q(SOAP12_NS, "Header"))
    body = etree.SubElement(root, q(SOAP12_NS, "Body"))
    return root, header, body


def _serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    element = etree.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _eb(
    parent: etree._Element, local: str, text: str | None = None, **attrib: str
) -> etree._Element:
    return _sub(parent, q(EBMS_NS, local), text, **attrib)


def _party(parent: etree._Element, local: str, party: str, party_type: str) -> None:
    element = _eb(parent, local)
    _eb(element, "PartyId", party, type=party_type)
    _eb(element, "Role", GATEWAY_ROLE)


def _property(parent: etree._Element, prop: Property) -> None:
    attrib = {"name": prop.name}
    if prop.type is not None:
        attrib["type"] = prop.type
    _eb(parent, "Property", prop.value, **attrib)


def _part_info(parent: etree._Element, content_id: str, mime_type: str) -> None:
    part = _eb(parent, "PartInfo", href=content_id)
    properties = _eb(part, "PartProperties")
    _eb(properties, "Property", mime_type, name=MIME_TYPE_PROPERTY)


def _payload(parent: etree._Element, content_id: str, mime_type: str, content: bytes) -> None:
    payload = _sub(parent, "payload", payloadId=content_id, contentType=mime_type)
    _sub(payload, "value", base64.b64encode(content).decode("ascii"))


def build_messaging(message: OutgoingAs4) -> etree._Element:
    """The ``eb:Messaging`` header of ``message`` (ebMS 3 element order)."""
    messaging = etree.Element(q(EBMS_NS, "Messaging"), nsmap={"eb": EBMS_NS})
    user = _eb(messaging, "UserMessage")
    info = _eb(user, "MessageInfo")
    _eb(info, "Timestamp", format_timestamp(message.timestamp))
    _eb(info, "MessageId", message.message_id)
    if message.ref_to_message_id is not None:
        _eb(info, "RefToMessageId", message.ref_to_message_id)
    parties = _eb(user, "PartyInfo")
    _party(parties, "From", message.from_party, message.party_type)
    _party(parties, "To", message.to_party, message.party_type)
    collaboration = _eb(user, "CollaborationInfo")
    _eb(collaboration, "Service", OOTS_SERVICE, type=OOTS_SERVICE_TYPE)
    _eb(collaboration, "Action", message.action)
    _eb(collaboration, "ConversationId", str(message.conversation_id))
    properties = _eb(user, "MessageProperties")
    sender, recipient = message.original_sender, message.final_recipient
    _property(properties, Property(ORIGINAL_SENDER, sender.value, sender.type))
    _property(properties, Property(FINAL_RECIPIENT, recipient.value, recipient.type))
    for prop in message.properties:
        _property(properties, prop)
    payload_info = _eb(user, "PayloadInfo")
    _part_info(payload_info, message.payload_id, EBRS_MIME)
    for attachment in message.attachments:
        _part_info(payload_info, attachment.content_id, attachment.mime_type)
    return messaging


def build_submit_request(message: OutgoingAs4) -> bytes:
    """``submitMessage``: the ebMS header in ``soap:Header``, each part base64 in ``payload``.

    No ``bodyload``: OOTS carries the RegRep document as an attachment (``PartInfo/@href``);
    the reference envelopes' ``<bodyload><value>cid:bodyload</value></bodyload>`` is not
    base64 and fails the plugin's own schema.
    """
    root, header, body = _envelope()
    header.append(build_messaging(message))
    request = etree.SubElement(body, q(WSPLUGIN_NS, "submitRequest"), nsmap={"ws": WSPLUGIN_NS})
    _payload(request, message.payload_id, EBRS_MIME, message.payload)
    for attachment in message.attachments:
        _payload(request, attachment.content_id, attachment.mime_type, attachment.content)
    return _serialize(root)


def build_list_pending_request(
    *,
    message_id: str | None = None,
    conversation_id: str | None = None,
    ref_to_message_id: str | None = None,
    from_party_id: str | None = None,
    final_recipient: str | None = None,
    original_sender: str | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> bytes:
    """``listPendingMessages``, optionally filtered (the schema's element order)."""
    root, _header, body = _envelope()
    request = etree.SubElement(
        body, q(WSPLUGIN_NS, "listPendingMessagesRequest"), nsmap={"ws": WSPLUGIN_NS}
    )
    for local, value in (
        ("messageId", message_id),
        ("conversationId", conversation_id),
        ("refToMessageId", ref_to_message_id),
        ("fromPartyId", from_party_id),
        ("finalRecipient", final_recipient),
        ("originalSender", original_sender),
    ):
        if value is not None:
            if not 0 < len(value) <= _MAX_ID:
                raise ValueError(f"{local} must be 1-{_MAX_ID} characters")
            _sub(request, local, value)
    for local, moment in (("receivedFrom", received_from), ("receivedTo", received_to)):
        if moment is not None:
            _sub(request, local, format_timestamp(moment))
    return _serialize(root)


def _message_id_request(local: str, message_id: str) -> tuple[etree._Element, etree._Element]:
    if not 0 < len(message_id) <= _MAX_ID:
        raise ValueError(f"messageID must be 1-{_MAX_ID} characters")
    root, _header, body = _envelope()
    request = etree.SubElement(body, q(WSPLUGIN_NS, local), nsmap={"ws": WSPLUGIN_NS})
    _sub(request, "messageID", message_id)
    return root, request


def build_retrieve_request(message_id: str, *, mark_as_downloaded: bool = False) -> bytes:
    """``retrieveMessage``; ``markAsDownloaded`` false by default: the platform marks the
    message itself (``markMessageAsDownloaded``) once it has stored it."""
    root, request = _message_id_request("retrieveMessageRequest", message_id)
    request.set("markAsDownloaded", "true" if mark_as_downloaded else "false")
    return _serialize(root)


def build_mark_as_downloaded_request(message_id: str) -> bytes:
    """``markMessageAsDownloaded``: the acknowledgement that takes a message off the pending
    list (Domibus sets it ``DOWNLOADED``)."""
    root, _request = _message_id_request("markMessageAsDownloadedRequest", message_id)
    return _serialize(root)


def build_status_request(message_id: str) -> bytes:
    """``getStatus``: what the access point knows of a message (``NOT_FOUND`` if nothing)."""
    root, _request = _message_id_request("statusRequest", message_id)
    return _serialize(root)


def build_push_success() -> bytes:
    """The answer to a push operation: every ``BackendService`` output message is empty."""
    root = etree.Element(q(SOAP12_NS, "Envelope"), nsmap={"soap": SOAP12_NS})
    etree.SubElement(root, q(SOAP12_NS, "Body"))
    return _serialize(root)


def build_push_fault(error: ServicePlatformError, *, sender: bool | None = None) -> bytes:
    """A SOAP 1.2 fault with ``BackendFaultDetail{code, message}`` (``BackendService.xsd``).

    ``soap:Sender`` for the caller's errors, else ``soap:Receiver``; ``sender`` overrides.
    """
    sender = error.client_fault if sender is None else sender
    root = etree.Element(q(SOAP12_NS, "Envelope"), nsmap={"soap": SOAP12_NS})
    body = etree.SubElement(root, q(SOAP12_NS, "Body"))
    fault = _sub(body, q(SOAP12_NS, "Fault"))
    code = _sub(fault, q(SOAP12_NS, "Code"))
    _sub(code, q(SOAP12_NS, "Value"), "soap:Sender" if sender else "soap:Receiver")
    reason = _sub(fault, q(SOAP12_NS, "Reason"))
    _sub(reason, q(SOAP12_NS, "Text"), error.error_text, **{q(XML_NS, "lang"): "en"})
    detail = _sub(fault, q(SOAP12_NS, "Detail"))
    backend = etree.SubElement(
        detail, q(BACKEND_NS, "BackendFaultDetail"), nsmap={"ns": BACKEND_NS}
    )
    _sub(backend, "code", error.code)
    _sub(backend, "message", error.error_text)
    return _serialize(root)


# --- reading: shared ------------------------------------------------------------------------


class _Malformed(ValueError):
    """What cannot be read; each entry point turns it into its platform error."""


class _Syntax(_Malformed):
    pass


class _NotEnvelope(_Malformed):
    pass


def _parse(body: bytes) -> etree._Element:
    """A SOAP 1.2 envelope's root; raises ``_Malformed`` (``MalformedXml`` via ``_syntax``)."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise _Syntax(f"not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise _Syntax("a document type declaration is not accepted")
    if root.tag != q(SOAP12_NS, "Envelope"):
        raise _NotEnvelope(f"root element is {root.tag}, expected a SOAP 1.2 Envelope")
    return root


def _body_child(root: etree._Element) -> etree._Element:
    body = root.find(q(SOAP12_NS, "Body"))
    if body is None:
        raise _NotEnvelope("the envelope has no Body")
    elements = [child for child in body if isinstance(child.tag, str)]
    if len(elements) != 1:
        raise _Malformed(f"the Body holds {len(elements)} elements, expected one")
    return elements[0]


def _kids(
    element: etree._Element, local: str, namespaces: tuple[str, ...]
) -> Iterator[etree._Element]:
    return element.iterchildren(*(q(ns, local) for ns in namespaces))


def _kid(
    element: etree._Element | None, local: str, namespaces: tuple[str, ...]
) -> etree._Element | None:
    if element is None:
        return None
    return next(_kids(element, local, namespaces), None)


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    value = "".join(str(part) for part in element.itertext()).strip()
    return value or None


def _required(element: etree._Element | None, what: str) -> str:
    value = _text(element)
    if value is None:
        raise _Malformed(f"{what} is missing or empty")
    if len(value) > _MAX_ID:
        raise _Malformed(f"{what} is longer than {_MAX_ID} characters")
    return value


def _optional(element: etree._Element | None, what: str) -> str | None:
    return None if _text(element) is None else _required(element, what)


def _read_timestamp(value: str | None) -> datetime | None:
    """Lenient: the timestamp is informational, an odd one must not lose a message."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Domibus writes UTC; a value without an offset is read as UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def strict_base64(value: str) -> bytes:
    """``xs:base64Binary``: whitespace allowed, any other character outside base64 an error."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Malformed(f"payload value is not base64: {exc}") from exc


@dataclass(frozen=True)
class _Header:
    message_id: str
    conversation_id: str
    service: str
    service_type: str | None
    action: str
    from_party: TypedId
    from_role: str | None
    to_party: TypedId | None
    to_role: str | None
    ref_to_message_id: str | None
    timestamp: datetime | None
    properties: tuple[Property, ...]
    #: ``PartInfo/@href`` (None: the body payload) -> ``MimeType`` part property.
    parts: tuple[tuple[str | None, str | None], ...]


def _read_party(
    parent: etree._Element | None, local: str, ns: tuple[str, ...], *, required: bool
) -> tuple[TypedId | None, str | None]:
    element = _kid(parent, local, ns)
    if element is None:
        if required:
            raise _Malformed(f"PartyInfo/{local} is missing")
        return None, None
    party = _kid(element, "PartyId", ns)
    if party is None:
        raise _Malformed(f"{local}/PartyId is missing")
    value = _required(party, f"{local}/PartyId")
    return TypedId(value, party.get("type")), _optional(_kid(element, "Role", ns), "Role")


def _read_properties(parent: etree._Element | None, ns: tuple[str, ...]) -> tuple[Property, ...]:
    if parent is None:
        return ()
    found = []
    for prop in _kids(parent, "Property", ns):
        name = prop.get("name")
        if not name:
            raise _Malformed("a Property has no name")
        found.append(Property(name, _text(prop) or "", prop.get("type")))
    return tuple(found)


def _read_header(messaging: etree._Element, ns: tuple[str, ...]) -> _Header:
    """The ``UserMessage`` of a ``Messaging`` header whose children are in ``ns``."""
    user = _kid(messaging, "UserMessage", ns)
    if user is None:
        raise _Malformed("Messaging has no UserMessage")
    info = _kid(user, "MessageInfo", ns)
    parties = _kid(user, "PartyInfo", ns)
    collaboration = _kid(user, "CollaborationInfo", ns)
    if collaboration is None:
        raise _Malformed("UserMessage has no CollaborationInfo")
    service = _kid(collaboration, "Service", ns)
    from_party, from_role = _read_party(parties, "From", ns, required=True)
    to_party, to_role = _read_party(parties, "To", ns, required=False)
    if from_party is None:
        raise _Malformed("PartyInfo/From is missing")
    parts: list[tuple[str | None, str | None]] = []
    payload_info = _kid(user, "PayloadInfo", ns)
    for part in _kids(payload_info, "PartInfo", ns) if payload_info is not None else ():
        properties = _read_properties(_kid(part, "PartProperties", ns), ns)
        mime = next((p.value for p in properties if p.name.lower() == "mimetype"), None)
        href = part.get("href")
        parts.append((href.strip() if href else None, mime))
    return _Header(
        message_id=_required(_kid(info, "MessageId", ns), "MessageInfo/MessageId"),
        conversation_id=_required(
            _kid(collaboration, "ConversationId", ns), "CollaborationInfo/ConversationId"
        ),
        service=_required(service, "CollaborationInfo/Service"),
        service_type=service.get("type") if service is not None else None,
        action=_required(_kid(collaboration, "Action", ns), "CollaborationInfo/Action"),
        from_party=from_party,
        from_role=from_role,
        to_party=to_party,
        to_role=to_role,
        ref_to_message_id=_optional(_kid(info, "RefToMessageId", ns), "RefToMessageId"),
        timestamp=_read_timestamp(_text(_kid(info, "Timestamp", ns))),
        properties=_read_properties(_kid(user, "MessageProperties", ns), ns),
        parts=tuple(parts),
    )


def _read_payloads(
    operation: etree._Element, ns: tuple[str, ...], parts: Iterable[tuple[str | None, str | None]]
) -> tuple[ReceivedPayload, ...]:
    declared = dict(parts)
    by_id = {href.lower(): (href, mime) for href, mime in declared.items() if href is not None}
    found: list[ReceivedPayload] = []
    seen: set[str] = set()
    for local in ("bodyload", "payload"):
        for element in _kids(operation, local, ns):
            value = _kid(element, "value", ns)
            if value is None:
                raise _Malformed(f"a {local} has no value")
            if value.find(q(XOP_NS, "Include")) is not None:
                raise _Malformed("MTOM payloads are not read: set wsplugin.mtom.enabled=false")
            content = strict_base64(value.text or "")
            if local == "bodyload":
                content_id, declared_mime = BODYLOAD_ID, declared.get(None)
            else:
                payload_id = (element.get("payloadId") or "").strip()
                if not payload_id:
                    raise _Malformed("a payload has no payloadId")
                content_id, declared_mime = by_id.get(payload_id.lower(), (payload_id, None))
            if content_id.lower() in seen:
                raise _Malformed(f"payload {content_id} occurs twice")
            seen.add(content_id.lower())
            mime = element.get("contentType") or element.get("mimeType") or declared_mime
            found.append(ReceivedPayload(content_id, mime, content))
    missing = [href for href in declared if (href or BODYLOAD_ID).lower() not in seen]
    if missing:
        raise _Malformed(
            f"PartInfo without its payload: {', '.join(h or '(body)' for h in missing)}"
        )
    return tuple(found)


def _received(header: _Header, payloads: tuple[ReceivedPayload, ...]) -> ReceivedAs4:
    return ReceivedAs4(
        message_id=header.message_id,
        conversation_id=header.conversation_id,
        service=header.service,
        service_type=header.service_type,
        action=header.action,
        from_party=header.from_party,
        from_role=header.from_role,
        to_party=header.to_party,
        to_role=header.to_role,
        ref_to_message_id=header.ref_to_message_id,
        timestamp=header.timestamp,
        properties=header.properties,
        payloads=payloads,
    )


# --- reading the WS plugin's answers ----------------------------------------------------------

_BODY_NS: Final = ("", WSPLUGIN_NS)
_EBMS: Final = (EBMS_NS,)
_WS_CODE: Final = re.compile(r"^WS_PLUGIN[_:]0*(\d+)$")


def fault_error(fault: etree._Element, operation: str, status: int | None = None) -> UpstreamError:
    """The SP-4xx error for a SOAP 1.2 fault of the WS plugin.

    ``FaultDetail/code`` decides (Domibus writes ``WS_PLUGIN:0009`` from one place and the
    enum name ``WS_PLUGIN_0005`` from another; both read the same):

    ==========================================  =======================
    code                                        error
    ==========================================  =======================
    ``WS_PLUGIN:0009`` (no message with id)     UpstreamNotFound
    ``WS_PLUGIN:0002`` (authentication)         UpstreamAuthRefused
    ``WS_PLUGIN:0001`` (generic), ``:0006``     UpstreamUnavailable
    other ``WS_PLUGIN``, ``EBMS:xxxx``          UpstreamRejected
    no detail, ``soap:Receiver``                UpstreamUnavailable
    no detail, any other code (``Sender``...)   UpstreamRejected
    ==========================================  =======================
    """
    soap_code = _text(fault.find(f"{q(SOAP12_NS, 'Code')}/{q(SOAP12_NS, 'Value')}")) or ""
    reason = _text(fault.find(f"{q(SOAP12_NS, 'Reason')}/{q(SOAP12_NS, 'Text')}"))
    detail = next(fault.iter(q(WSPLUGIN_NS, "FaultDetail")), None)
    code = _text(_kid(detail, "code", _BODY_NS)) if detail is not None else None
    message = _text(_kid(detail, "message", _BODY_NS)) if detail is not None else None
    text = mask_digits(
        f"{operation}: " + ": ".join(part for part in (code, message or reason) if part)
    )[:_DETAIL_LIMIT]
    error_type: type[UpstreamError]
    number = _WS_CODE.match(code or "")
    if number is not None:
        error_type = {
            9: UpstreamNotFound,
            2: UpstreamAuthRefused,
            1: UpstreamUnavailable,
            6: UpstreamUnavailable,
        }.get(int(number.group(1)), UpstreamRejected)
    elif code:
        error_type = UpstreamRejected
    elif soap_code.rpartition(":")[2] == "Receiver":
        error_type = UpstreamUnavailable
    else:
        error_type = UpstreamRejected
    return error_type(text, status=status)


def _bad(operation: str, problem: str) -> UpstreamBadResponse:
    return UpstreamBadResponse(mask_digits(f"{operation}: {problem}")[:_DETAIL_LIMIT])


def find_fault(body: bytes) -> etree._Element | None:
    """The ``soap:Fault`` of ``body`` when it is a SOAP 1.2 fault envelope, else None."""
    try:
        root = _parse(body)
        child = _body_child(root)
    except _Malformed:
        return None
    return child if child.tag == q(SOAP12_NS, "Fault") else None


def _open_response(
    body: bytes, operation: str, expected: str
) -> tuple[etree._Element, etree._Element]:
    """The envelope root and its Body's ``{wsplugin}expected`` element; faults raise."""
    try:
        root = _parse(body)
        child = _body_child(root)
    except _Malformed as exc:
        raise _bad(operation, str(exc)) from exc
    if child.tag == q(SOAP12_NS, "Fault"):
        raise fault_error(child, operation)
    if child.tag != q(WSPLUGIN_NS, expected):
        raise _bad(operation, f"the Body holds {child.tag}, expected {expected}")
    return root, child


def _message_ids(element: etree._Element) -> list[str]:
    return [value for value in (_text(m) for m in _kids(element, "messageID", _BODY_NS)) if value]


def parse_submit_response(body: bytes) -> str:
    """The MessageId Domibus gave the submitted message (``submitResponse/messageID``)."""
    _root, response = _open_response(body, "submitMessage", "submitResponse")
    ids = _message_ids(response)
    if len(ids) != 1:
        raise _bad("submitMessage", f"submitResponse holds {len(ids)} messageIDs, expected one")
    return ids[0]


def parse_list_pending_response(body: bytes) -> list[str]:
    """The pending MessageIds, in Domibus' order (none: an empty list)."""
    _root, response = _open_response(body, "listPendingMessages", "listPendingMessagesResponse")
    return _message_ids(response)


def parse_mark_as_downloaded_response(body: bytes) -> str | None:
    """The MessageId Domibus marked downloaded."""
    _root, response = _open_response(
        body, "markMessageAsDownloaded", "markMessageAsDownloadedResponse"
    )
    ids = _message_ids(response)
    return ids[0] if ids else None


def parse_status_response(body: bytes) -> str:
    """The ``messageStatus`` of ``getStatusResponse`` (e.g. ``SEND_ENQUEUED``, ``NOT_FOUND``)."""
    _root, response = _open_response(body, "getStatus", "getStatusResponse")
    status = _text(response)
    if not status:
        raise _bad("getStatus", "getStatusResponse holds no status")
    return status


def parse_retrieve_response(body: bytes) -> ReceivedAs4:
    """The retrieved message: the ebMS header of ``soap:Header`` and the body's payloads."""
    root, response = _open_response(body, "retrieveMessage", "retrieveMessageResponse")
    try:
        messaging = root.find(f"{q(SOAP12_NS, 'Header')}/{q(EBMS_NS, 'Messaging')}")
        if messaging is None:
            raise _Malformed("no ebMS Messaging header")
        header = _read_header(messaging, _EBMS)
        return _received(header, _read_payloads(response, _BODY_NS, header.parts))
    except _Malformed as exc:
        raise _bad("retrieveMessage", str(exc)) from exc


def parse_submit_request(body: bytes) -> ReceivedAs4:
    """Read a ``submitMessage`` request back (what a simulated access point receives)."""
    try:
        root = _parse(body)
        request = _body_child(root)
        if request.tag != q(WSPLUGIN_NS, "submitRequest"):
            raise UnknownOperation(f"{request.tag} is not submitRequest")
        messaging = root.find(f"{q(SOAP12_NS, 'Header')}/{q(EBMS_NS, 'Messaging')}")
        if messaging is None:
            raise _Malformed("no ebMS Messaging header")
        header = _read_header(messaging, _EBMS)
        return _received(header, _read_payloads(request, _BODY_NS, header.parts))
    except _Malformed as exc:
        raise _request_error(exc) from exc


# --- reading Domibus' push calls (BackendService.wsdl) ----------------------------------------

#: The push operations of ``BackendService.wsdl`` and what each body element carries.
PUSH_OPERATIONS: Final = frozenset(
    {
        "submitRequest",
        "sendSuccess",
        "sendFailure",
        "receiveSuccess",
        "receiveFailure",
        "delete",
        "deleteBatch",
        "messageStatusChange",
    }
)
_PUSH_NS: Final = ("", BACKEND_NS)


@dataclass(frozen=True)
class PushCall:
    """One push of Domibus: the operation and what it carried."""

    operation: str
    #: ``submitRequest``: the whole message.
    message: ReceivedAs4 | None = None
    #: Every other operation: the MessageId(s) it is about (``deleteBatch``: several).
    message_ids: tuple[str, ...] = ()
    #: ``messageStatusChange``: the new status (``ACKNOWLEDGED``, ``SEND_FAILURE``, ...).
    status: str | None = None


def _request_error(exc: _Malformed) -> ServicePlatformError:
    if isinstance(exc, _Syntax):
        return MalformedXml(str(exc).removeprefix("not well-formed XML: "))
    if isinstance(exc, _NotEnvelope):
        return NotSoapEnvelope(str(exc))
    return SchemaViolation(str(exc))


def parse_push_request(body: bytes) -> PushCall:
    """Read one ``BackendService`` call; raises SP-1xx errors for what cannot be read."""
    try:
        root = _parse(body)
        request = _body_child(root)
        if etree.QName(request).namespace != BACKEND_NS:
            raise UnknownOperation(f"{request.tag} is not a BackendService operation")
        operation = etree.QName(request).localname
        if operation not in PUSH_OPERATIONS:
            raise UnknownOperation(f"{{{BACKEND_NS}}}{operation} is not a BackendService operation")
        if operation == "submitRequest":
            messaging = root.find(f"{q(SOAP12_NS, 'Header')}/{q(BACKEND_NS, 'Messaging')}")
            if messaging is None:
                raise _Malformed("submitRequest without its Messaging header")
            header = _read_header(messaging, _PUSH_NS)
            message = _received(header, _read_payloads(request, _PUSH_NS, header.parts))
            return PushCall(operation, message=message, message_ids=(message.message_id,))
        if operation == "deleteBatch":
            ids = tuple(v for v in (_text(e) for e in _kids(request, "messageIds", _PUSH_NS)) if v)
            return PushCall(operation, message_ids=ids)
        message_id = _required(_kid(request, "messageID", _PUSH_NS), f"{operation}/messageID")
        status = None
        if operation == "messageStatusChange":
            status = _required(_kid(request, "messageStatus", _PUSH_NS), "messageStatus")
        return PushCall(operation, message_ids=(message_id,), status=status)
    except _Malformed as exc:
        raise _request_error(exc) from exc

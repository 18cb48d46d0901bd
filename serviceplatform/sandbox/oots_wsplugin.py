"""The Domibus WS plugin contract as the simulated gateway speaks it: envelopes in and out.

The contract is ``domibus/ws-plugin/WebServicePlugin.wsdl`` (namespace
``http://eu.domibus.wsplugin/``, SOAP 1.2, document/literal, body elements unqualified). What
goes out is shaped like the envelopes captured on a real Domibus 5.2.1
(``oots-edm-2.0/incoming/reel/``): no XML declaration, ``soap:`` for SOAP 1.2, the ebMS header
as ``ns5:Messaging`` (declaring ``xmime`` and ``ns4`` = the plugin namespace), the body
operation as ``ns2:...`` declaring ``ns2``/``ns3``/``xmime``/``ns5`` as Domibus does, payloads
as ``<payload payloadId="cid:..." contentType="..."><value>base64</value></payload>``. MTOM is
off (``wsplugin.mtom.enabled=false``, the default): payloads travel inline, base64.

Faults are SOAP 1.2 faults carrying the WSDL's ``FaultDetail`` (``code``, ``message``) with the
plugin's error codes (Domibus 5 ``eu.domibus.plugin.ws.webservice.ErrorCode``):
``WS_PLUGIN:0001`` generic, ``0002`` authentication, ``0003`` PMode, ``0004`` parties,
``0005`` payloads, ``0007`` invalid message, ``0009`` no message with that id. A request
Domibus would not understand (not SOAP 1.2, unknown operation) is a ``soap:Sender`` fault, a
refused message a ``soap:Receiver`` fault (what CXF does with a declared fault), HTTP 500.

``validate_submission`` checks the ebMS header a backend submits against what OOTS requires
(``conformance/README.md``): service ``QueryManager`` of type
``urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0``, action ``ExecuteQueryRequest``, both roles
``http://sdg.europa.eu/edelivery/gateway``, both party ids of type
``urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots``, properties ``originalSender`` and
``finalRecipient`` each with a ``type``, a UUID ``ConversationId``, and one payload of
``application/x-ebrs+xml`` that is announced in ``PayloadInfo`` and present in the body.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lxml import etree

SOAP12_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
EBMS_NS: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
WSPLUGIN_NS: Final = "http://eu.domibus.wsplugin/"
XMIME_NS: Final = "http://www.w3.org/2005/05/xmlmime"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
DEFAULT_MPC: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC"

OOTS_SERVICE: Final = "QueryManager"
OOTS_SERVICE_TYPE: Final = "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"
EXECUTE_QUERY_REQUEST: Final = "ExecuteQueryRequest"
EBRS_MIME: Final = "application/x-ebrs+xml"
SOAP_CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"

_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


class WsPluginFault(Exception):
    """A SOAP fault to answer; ``sender`` faults blame the request's form, others its content."""

    def __init__(self, code: str, message: str, *, sender: bool = False, status: int = 500):
        super().__init__(message)
        self.code = code
        self.message = message
        self.sender = sender
        self.status = status


def _e(tag: str) -> str:
    return f"{{{EBMS_NS}}}{tag}"


# --- reading requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SoapRequest:
    operation: str
    body: etree._Element
    messaging: etree._Element | None


def parse_request(data: bytes, content_type: str) -> SoapRequest:
    """The operation element of a WS plugin request (SOAP 1.2, no MTOM)."""
    if content_type.lower().startswith("multipart/"):
        raise WsPluginFault(
            "WS_PLUGIN:0005",
            "MTOM/XOP requests are not accepted (wsplugin.mtom.enabled=false): send the payloads "
            "inline, base64 in payload/value",
            sender=True,
        )
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise WsPluginFault("WS_PLUGIN:0001", f"not well-formed XML: {exc}", sender=True) from exc
    if root.getroottree().docinfo.internalDTD is not None:
        raise WsPluginFault("WS_PLUGIN:0001", "a DOCTYPE is not accepted", sender=True)
    if root.tag == f"{{{SOAP11_NS}}}Envelope":
        raise WsPluginFault(
            "WS_PLUGIN:0001",
            "a SOAP 1.1 envelope; the WS plugin binding is SOAP 1.2 "
            f"({SOAP12_NS}, Content-Type application/soap+xml)",
            sender=True,
        )
    if root.tag != f"{{{SOAP12_NS}}}Envelope":
        raise WsPluginFault("WS_PLUGIN:0001", f"not a SOAP 1.2 envelope: {root.tag}", sender=True)
    body = root.find(f"{{{SOAP12_NS}}}Body")
    operations = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if len(operations) != 1:
        raise WsPluginFault(
            "WS_PLUGIN:0001", "soap:Body must hold exactly one operation element", sender=True
        )
    operation = operations[0]
    name = etree.QName(operation)
    if name.namespace != WSPLUGIN_NS:
        raise WsPluginFault(
            "WS_PLUGIN:0001",
            f"unexpected body element {operation.tag}: the operations are in {WSPLUGIN_NS}",
            sender=True,
        )
    messaging = root.find(f"{{{SOAP12_NS}}}Header/{_e('Messaging')}")
    return SoapRequest(name.localname, operation, messaging)


def child_text(element: etree._Element, name: str) -> str | None:
    """Text of an unqualified child (the plugin's body elements), stripped; None if absent."""
    found = element.find(name)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


@dataclass(frozen=True)
class Party:
    party_id: str
    type: str
    role: str


@dataclass(frozen=True)
class Property:
    name: str
    value: str
    type: str | None = None


@dataclass(frozen=True)
class Payload:
    cid: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Submission:
    """A validated ``submitMessage``: the ebMS header values and the decoded payloads."""

    message_id: str | None
    conversation_id: str
    ref_to_message_id: str | None
    sender: Party
    receiver: Party
    properties: tuple[Property, ...]
    payloads: tuple[Payload, ...]
    agreement_ref: str | None = None

    def prop(self, name: str) -> Property:
        return next(p for p in self.properties if p.name == name)

    @property
    def ebrs_payload(self) -> Payload:
        return next(p for p in self.payloads if p.content_type == EBRS_MIME)


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _invalid(message: str) -> WsPluginFault:
    return WsPluginFault("WS_PLUGIN:0007", message)


def _party(user_message: etree._Element, side: str) -> Party:
    element = user_message.find(f"{_e('PartyInfo')}/{_e(side)}")
    if element is None:
        raise WsPluginFault("WS_PLUGIN:0004", f"PartyInfo/{side} is missing")
    party_id = element.find(_e("PartyId"))
    value = _text(party_id)
    if party_id is None or value is None:
        raise WsPluginFault("WS_PLUGIN:0004", f"PartyInfo/{side}/PartyId is missing or empty")
    role = _text(element.find(_e("Role")))
    if role is None:
        raise WsPluginFault("WS_PLUGIN:0004", f"PartyInfo/{side}/Role is missing")
    return Party(value, party_id.get("type") or "", role)


def validate_submission(request: SoapRequest, *, party_type: str, role: str) -> Submission:
    """The ``submitMessage`` request read and checked; ``WsPluginFault`` says what is wrong."""
    if request.messaging is None:
        raise _invalid("the ebMS header (soap:Header/eb:Messaging) is missing")
    user_message = request.messaging.find(_e("UserMessage"))
    if user_message is None:
        raise _invalid("eb:Messaging has no eb:UserMessage")
    info = user_message.find(_e("MessageInfo"))
    message_id = _text(None if info is None else info.find(_e("MessageId")))
    ref_to = _text(None if info is None else info.find(_e("RefToMessageId")))
    if message_id is not None and (len(message_id) > 255 or any(c.isspace() for c in message_id)):
        raise _invalid(f"MessageId [{message_id}] is not a valid message id")
    sender, receiver = _party(user_message, "From"), _party(user_message, "To")
    for side, party in (("From", sender), ("To", receiver)):
        if party.type != party_type:
            raise WsPluginFault(
                "WS_PLUGIN:0004",
                f"PartyInfo/{side}/PartyId/@type is [{party.type}], OOTS requires [{party_type}]",
            )
        if party.role != role:
            raise WsPluginFault(
                "WS_PLUGIN:0004",
                f"PartyInfo/{side}/Role is [{party.role}], OOTS requires [{role}]",
            )
    collaboration = user_message.find(_e("CollaborationInfo"))
    if collaboration is None:
        raise _invalid("CollaborationInfo is missing")
    service = collaboration.find(_e("Service"))
    if _text(service) != OOTS_SERVICE or service is None:
        raise WsPluginFault(
            "WS_PLUGIN:0003",
            f"Service is [{_text(service)}], OOTS requires [{OOTS_SERVICE}]: no PMode leg matches",
        )
    if service.get("type") != OOTS_SERVICE_TYPE:
        raise WsPluginFault(
            "WS_PLUGIN:0003",
            f"Service/@type is [{service.get('type')}], OOTS requires [{OOTS_SERVICE_TYPE}]: "
            "no PMode leg matches",
        )
    action = _text(collaboration.find(_e("Action")))
    if action != EXECUTE_QUERY_REQUEST:
        raise WsPluginFault(
            "WS_PLUGIN:0003",
            f"Action is [{action}]; the simulated network takes [{EXECUTE_QUERY_REQUEST}] from "
            "the platform (ExecuteQueryResponse/ExceptionResponse come back from providers)",
        )
    conversation_id = _text(collaboration.find(_e("ConversationId")))
    if conversation_id is None:
        raise _invalid("ConversationId is missing: OOTS requires one (a UUID)")
    try:
        uuid.UUID(conversation_id)
    except ValueError:
        raise _invalid(f"ConversationId [{conversation_id}] is not a UUID") from None
    agreement = _text(collaboration.find(_e("AgreementRef")))
    properties = tuple(
        Property(item.get("name") or "", _text(item) or "", item.get("type"))
        for item in user_message.iterfind(f"{_e('MessageProperties')}/{_e('Property')}")
    )
    for name in ("originalSender", "finalRecipient"):
        found = [p for p in properties if p.name == name]
        if len(found) != 1:
            raise _invalid(f"MessageProperties must hold one property [{name}], found {len(found)}")
        if not found[0].value:
            raise _invalid(f"property [{name}] is empty")
        if not found[0].type:
            raise _invalid(f"property [{name}] needs a type attribute (its identifier scheme)")
    payloads = _payloads(request.body, user_message)
    return Submission(
        message_id=message_id,
        conversation_id=conversation_id,
        ref_to_message_id=ref_to,
        sender=sender,
        receiver=receiver,
        properties=properties,
        payloads=payloads,
        agreement_ref=agreement,
    )


def _payloads(body: etree._Element, user_message: etree._Element) -> tuple[Payload, ...]:
    announced: dict[str, str | None] = {}
    for part in user_message.iterfind(f"{_e('PayloadInfo')}/{_e('PartInfo')}"):
        href = (part.get("href") or "").strip()
        mime = [
            _text(p)
            for p in part.iterfind(f"{_e('PartProperties')}/{_e('Property')}")
            if p.get("name") == "MimeType"
        ]
        announced[href.removeprefix("cid:")] = mime[0] if mime else None
    payloads = []
    for element in body.iterfind("payload"):
        cid = (element.get("payloadId") or "").strip().removeprefix("cid:")
        if cid not in announced:
            raise WsPluginFault(
                "WS_PLUGIN:0005",
                f"payload [cid:{cid}] is not announced in PayloadInfo (PartInfo/@href)",
            )
        value = element.find("value")
        text = "" if value is None or value.text is None else value.text
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise WsPluginFault(
                "WS_PLUGIN:0005", f"payload [cid:{cid}] is not base64 (payload/value)"
            ) from None
        kind = element.get("contentType") or announced[cid] or "application/octet-stream"
        payloads.append(Payload(cid, kind, data))
    missing = set(announced) - {p.cid for p in payloads}
    if missing:
        raise WsPluginFault(
            "WS_PLUGIN:0005",
            f"PayloadInfo announces {sorted('cid:' + m for m in missing)} but the body does not "
            "carry them",
        )
    bodies = [p for p in payloads if p.content_type == EBRS_MIME]
    if len(bodies) != 1:
        raise WsPluginFault(
            "WS_PLUGIN:0005",
            f"an OOTS message carries exactly one {EBRS_MIME} payload (MimeType part property "
            f"or payload/@contentType), found {len(bodies)}",
        )
    return tuple(payloads)


# --- writing answers -----------------------------------------------------------------------------


@dataclass
class Message:
    """A message in the gateway, as its ebMS header describes it."""

    message_id: str
    conversation_id: str
    action: str
    sender: Party
    receiver: Party
    properties: tuple[Property, ...]
    payloads: tuple[Payload, ...]
    timestamp: datetime
    ref_to_message_id: str | None = None
    service: str = OOTS_SERVICE
    service_type: str = OOTS_SERVICE_TYPE


def envelope(body_content: etree._Element, header: etree._Element | None = None) -> bytes:
    root = etree.Element(f"{{{SOAP12_NS}}}Envelope", nsmap={"soap": SOAP12_NS})
    if header is not None:
        etree.SubElement(root, f"{{{SOAP12_NS}}}Header").append(header)
    etree.SubElement(root, f"{{{SOAP12_NS}}}Body").append(body_content)
    return bytes(etree.tostring(root, encoding="UTF-8"))


def operation(local: str) -> etree._Element:
    """A body operation element with the namespace declarations Domibus writes."""
    return etree.Element(
        f"{{{WSPLUGIN_NS}}}{local}",
        nsmap={"ns2": WSPLUGIN_NS, "ns3": EBMS_NS, "xmime": XMIME_NS, "ns5": SOAP12_NS},
    )


def _sub(
    parent: etree._Element, local: str, text: str | None = None, **attrib: str
) -> etree._Element:
    element = etree.SubElement(parent, _e(local), attrib)
    if text is not None:
        element.text = text
    return element


def messaging_header(message: Message) -> etree._Element:
    """``eb:Messaging`` of a message handed to the backend (retrieve, mark as downloaded)."""
    root = etree.Element(
        _e("Messaging"), nsmap={"xmime": XMIME_NS, "ns5": EBMS_NS, "ns4": WSPLUGIN_NS}
    )
    user = _sub(root, "UserMessage", mpc=DEFAULT_MPC)
    info = _sub(user, "MessageInfo")
    _sub(info, "Timestamp", message.timestamp.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    _sub(info, "MessageId", message.message_id)
    if message.ref_to_message_id:
        _sub(info, "RefToMessageId", message.ref_to_message_id)
    parties = _sub(user, "PartyInfo")
    for side, party in (("From", message.sender), ("To", message.receiver)):
        element = _sub(parties, side)
        _sub(element, "PartyId", party.party_id, type=party.type)
        _sub(element, "Role", party.role)
    collaboration = _sub(user, "CollaborationInfo")
    _sub(collaboration, "Service", message.service, type=message.service_type)
    _sub(collaboration, "Action", message.action)
    _sub(collaboration, "ConversationId", message.conversation_id)
    if message.properties:
        properties = _sub(user, "MessageProperties")
        for prop in message.properties:
            attrib = {"name": prop.name}
            if prop.type:
                attrib["type"] = prop.type
            _sub(properties, "Property", prop.value, **attrib)
    if message.payloads:
        payload_info = _sub(user, "PayloadInfo")
        for payload in message.payloads:
            part = _sub(payload_info, "PartInfo", href=f"cid:{payload.cid}")
            _sub(_sub(part, "PartProperties"), "Property", payload.content_type, name="MimeType")
    return root


def retrieve_response(message: Message) -> bytes:
    body = operation("retrieveMessageResponse")
    for payload in message.payloads:
        element = etree.SubElement(
            body, "payload", payloadId=f"cid:{payload.cid}", contentType=payload.content_type
        )
        etree.SubElement(element, "value").text = base64.b64encode(payload.data).decode("ascii")
    return envelope(body, messaging_header(message))


def message_ids_response(local: str, message_ids: Sequence[str]) -> bytes:
    """``listPendingMessagesResponse`` / ``listPushFailedMessagesResponse``."""
    body = operation(local)
    for message_id in message_ids:
        etree.SubElement(body, "messageID").text = message_id
    return envelope(body)


def submit_response(message_id: str, entity_id: int) -> bytes:
    body = operation("submitResponse")
    etree.SubElement(body, "messageID").text = message_id
    etree.SubElement(body, "messageEntityID").text = str(entity_id)
    return envelope(body)


def mark_downloaded_response(message: Message) -> bytes:
    body = operation("markMessageAsDownloadedResponse")
    etree.SubElement(body, "messageID").text = message.message_id
    return envelope(body, messaging_header(message))


def status_response(status: str) -> bytes:
    body = operation("getStatusResponse")
    body.text = status
    return envelope(body)


def empty_response(local: str) -> bytes:
    return envelope(operation(local))


def empty_body() -> bytes:
    """A response without body parts (``rePushFailedMessagesResponse`` has none)."""
    root = etree.Element(f"{{{SOAP12_NS}}}Envelope", nsmap={"soap": SOAP12_NS})
    etree.SubElement(root, f"{{{SOAP12_NS}}}Body")
    return bytes(etree.tostring(root, encoding="UTF-8"))


def fault_envelope(fault: WsPluginFault) -> bytes:
    root = etree.Element(f"{{{SOAP12_NS}}}Envelope", nsmap={"soap": SOAP12_NS})
    body = etree.SubElement(root, f"{{{SOAP12_NS}}}Body")
    element = etree.SubElement(body, f"{{{SOAP12_NS}}}Fault")
    code = etree.SubElement(element, f"{{{SOAP12_NS}}}Code")
    value = "soap:Sender" if fault.sender else "soap:Receiver"
    etree.SubElement(code, f"{{{SOAP12_NS}}}Value").text = value
    reason = etree.SubElement(element, f"{{{SOAP12_NS}}}Reason")
    text = etree.SubElement(reason, f"{{{SOAP12_NS}}}Text")
    text.set(f"{{{XML_NS}}}lang", "en")
    text.text = fault.message
    detail = etree.SubElement(element, f"{{{SOAP12_NS}}}Detail")
    fault_detail = etree.SubElement(
        detail, f"{{{WSPLUGIN_NS}}}FaultDetail", nsmap={"ns4": WSPLUGIN_NS}
    )
    etree.SubElement(fault_detail, "code").text = fault.code
    etree.SubElement(fault_detail, "message").text = fault.message
    return bytes(etree.tostring(root, encoding="UTF-8"))

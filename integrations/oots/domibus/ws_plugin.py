"""The Domibus WS plugin's SOAP 1.2 operations: request bodies built, answers read.

Contract (read in place from ``shared/conformance/``, never copied):
``domibus/ws-plugin/WebServicePlugin.wsdl`` (namespace ``http://eu.domibus.wsplugin/``), what
the platform *calls*. ``submitMessage`` carries the ebMS ``eb:Messaging`` header in
``soap:Header`` (part ``ebMSHeaderInfo``, built by ``as4.ebms``) and ``submitRequest`` in the
body; ``retrieveMessage`` answers the same header in ``soap:Header`` and
``retrieveMessageResponse`` in the body. Body children are *unqualified*
(``webservicePlugin-body.xsd`` has ``elementFormDefault="unqualified"``) and also accepted when
qualified in the plugin namespace; header children are qualified in the ebMS namespace.
Unknown extra elements are ignored: the real ``submitResponse`` carries a ``messageEntityID``
that the conformance schema does not declare.

Payloads are ``xs:base64Binary`` elements of the body (``write_payload``/``read_payloads``,
also what Domibus' push carries, see ``backend_service``) and decoded strictly: whitespace is
allowed (the lexical space has it), anything outside the base64 alphabet is an error, not
skipped as a MIME decoder would. MTOM (``xop:Include`` instead of inline base64) is not read:
the plugin's ``wsplugin.mtom.enabled`` must stay ``false`` (its default).

Errors: a malformed answer raises ``UpstreamBadResponse``; a SOAP fault raises the SP-4xx
error of ``fault_error``; a malformed ``submitRequest`` read by ``parse_submit_request`` (what a
simulated access point receives) raises the caller's SP-1xx error. No lxml or binascii
exception leaves this module.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from lxml import etree

from integrations.oots.as4.ebms import build_messaging, read_user_message, received_message
from integrations.oots.as4.model import (
    BODYLOAD_ID,
    EBMS_NS,
    EBRS_MIME,
    MAX_ID,
    OutgoingAs4,
    ReceivedAs4,
    ReceivedPayload,
    format_timestamp,
)
from integrations.oots.as4.soap import (
    SOAP12_NS,
    Malformed,
    body_child,
    find_child,
    find_children,
    new_envelope,
    parse_envelope,
    q,
    request_error,
    serialize,
    sub,
    text_of,
)
from serviceplatform.errors import (
    UnknownOperation,
    UpstreamAuthRefused,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from serviceplatform.logmask import mask_cpr_numbers

WSPLUGIN_NS: Final = "http://eu.domibus.wsplugin/"
XOP_NS: Final = "http://www.w3.org/2004/08/xop/include"

_DETAIL_LIMIT: Final = 300
_BODY_NS: Final = ("", WSPLUGIN_NS)
_EBMS: Final = (EBMS_NS,)
_WS_CODE: Final = re.compile(r"^WS_PLUGIN[_:]0*(\d+)$")

# --- payloads -----------------------------------------------------------------------------------


def write_payload(parent: etree._Element, content_id: str, mime_type: str, content: bytes) -> None:
    """One ``payload`` element: ``payloadId`` and ``contentType``, the content base64."""
    payload = sub(parent, "payload", payloadId=content_id, contentType=mime_type)
    sub(payload, "value", base64.b64encode(content).decode("ascii"))


def strict_base64(value: str) -> bytes:
    """``xs:base64Binary``: whitespace allowed, any other character outside base64 an error."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed(f"payload value is not base64: {exc}") from exc


def read_payloads(
    operation: etree._Element, ns: tuple[str, ...], parts: Iterable[tuple[str | None, str | None]]
) -> tuple[ReceivedPayload, ...]:
    """The ``bodyload``/``payload`` children of ``operation``, each matched to its
    ``PartInfo`` (``parts``: href -> MimeType); a declared part without its payload is an error.
    """
    declared = dict(parts)
    by_id = {href.lower(): (href, mime) for href, mime in declared.items() if href is not None}
    found: list[ReceivedPayload] = []
    seen: set[str] = set()
    for local in ("bodyload", "payload"):
        for element in find_children(operation, local, ns):
            value = find_child(element, "value", ns)
            if value is None:
                raise Malformed(f"a {local} has no value")
            if value.find(q(XOP_NS, "Include")) is not None:
                raise Malformed("MTOM payloads are not read: set wsplugin.mtom.enabled=false")
            content = strict_base64(value.text or "")
            if local == "bodyload":
                content_id, declared_mime = BODYLOAD_ID, declared.get(None)
            else:
                payload_id = (element.get("payloadId") or "").strip()
                if not payload_id:
                    raise Malformed("a payload has no payloadId")
                content_id, declared_mime = by_id.get(payload_id.lower(), (payload_id, None))
            if content_id.lower() in seen:
                raise Malformed(f"payload {content_id} occurs twice")
            seen.add(content_id.lower())
            mime = element.get("contentType") or element.get("mimeType") or declared_mime
            found.append(ReceivedPayload(content_id, mime, content))
    missing = [href for href in declared if (href or BODYLOAD_ID).lower() not in seen]
    if missing:
        raise Malformed(
            f"PartInfo without its payload: {', '.join(h or '(body)' for h in missing)}"
        )
    return tuple(found)


# --- building the requests ---------------------------------------------------------------------


def build_submit_request(message: OutgoingAs4) -> bytes:
    """``submitMessage``: the ebMS header in ``soap:Header``, each part base64 in ``payload``.

    No ``bodyload``: OOTS carries the RegRep document as an attachment (``PartInfo/@href``);
    the reference envelopes' ``<bodyload><value>cid:bodyload</value></bodyload>`` is not
    base64 and fails the plugin's own schema.
    """
    root, header, body = new_envelope()
    header.append(build_messaging(message))
    request = etree.SubElement(body, q(WSPLUGIN_NS, "submitRequest"), nsmap={"ws": WSPLUGIN_NS})
    write_payload(request, message.payload_id, EBRS_MIME, message.payload)
    for attachment in message.attachments:
        write_payload(request, attachment.content_id, attachment.mime_type, attachment.content)
    return serialize(root)


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
    root, _header, body = new_envelope()
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
            if not 0 < len(value) <= MAX_ID:
                raise ValueError(f"{local} must be 1-{MAX_ID} characters")
            sub(request, local, value)
    for local, moment in (("receivedFrom", received_from), ("receivedTo", received_to)):
        if moment is not None:
            sub(request, local, format_timestamp(moment))
    return serialize(root)


def _message_id_request(local: str, message_id: str) -> tuple[etree._Element, etree._Element]:
    if not 0 < len(message_id) <= MAX_ID:
        raise ValueError(f"messageID must be 1-{MAX_ID} characters")
    root, _header, body = new_envelope()
    request = etree.SubElement(body, q(WSPLUGIN_NS, local), nsmap={"ws": WSPLUGIN_NS})
    sub(request, "messageID", message_id)
    return root, request


def build_retrieve_request(message_id: str, *, mark_as_downloaded: bool = False) -> bytes:
    """``retrieveMessage``; ``markAsDownloaded`` false by default: the platform marks the
    message itself (``markMessageAsDownloaded``) once it has stored it."""
    root, request = _message_id_request("retrieveMessageRequest", message_id)
    request.set("markAsDownloaded", "true" if mark_as_downloaded else "false")
    return serialize(root)


def build_mark_as_downloaded_request(message_id: str) -> bytes:
    """``markMessageAsDownloaded``: the acknowledgement that takes a message off the pending
    list (Domibus sets it ``DOWNLOADED``)."""
    root, _request = _message_id_request("markMessageAsDownloadedRequest", message_id)
    return serialize(root)


def build_status_request(message_id: str) -> bytes:
    """``getStatus``: what the access point knows of a message (``NOT_FOUND`` if nothing)."""
    root, _request = _message_id_request("statusRequest", message_id)
    return serialize(root)


# --- reading the answers -----------------------------------------------------------------------


def _masked(text: str) -> str:
    """A peer's text with every run of ten digits (a possible CPR number) masked."""
    return mask_cpr_numbers(text, touching_letters=True)


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
    soap_code = text_of(fault.find(f"{q(SOAP12_NS, 'Code')}/{q(SOAP12_NS, 'Value')}")) or ""
    reason = text_of(fault.find(f"{q(SOAP12_NS, 'Reason')}/{q(SOAP12_NS, 'Text')}"))
    detail = next(fault.iter(q(WSPLUGIN_NS, "FaultDetail")), None)
    code = text_of(find_child(detail, "code", _BODY_NS)) if detail is not None else None
    message = text_of(find_child(detail, "message", _BODY_NS)) if detail is not None else None
    text = _masked(
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
    return UpstreamBadResponse(_masked(f"{operation}: {problem}")[:_DETAIL_LIMIT])


def find_fault(body: bytes) -> etree._Element | None:
    """The ``soap:Fault`` of ``body`` when it is a SOAP 1.2 fault envelope, else None."""
    try:
        root = parse_envelope(body)
        child = body_child(root)
    except Malformed:
        return None
    return child if child.tag == q(SOAP12_NS, "Fault") else None


def _open_response(
    body: bytes, operation: str, expected: str
) -> tuple[etree._Element, etree._Element]:
    """The envelope root and its Body's ``{wsplugin}expected`` element; faults raise."""
    try:
        root = parse_envelope(body)
        child = body_child(root)
    except Malformed as exc:
        raise _bad(operation, str(exc)) from exc
    if child.tag == q(SOAP12_NS, "Fault"):
        raise fault_error(child, operation)
    if child.tag != q(WSPLUGIN_NS, expected):
        raise _bad(operation, f"the Body holds {child.tag}, expected {expected}")
    return root, child


def _message_ids(element: etree._Element) -> list[str]:
    return [
        value
        for value in (text_of(m) for m in find_children(element, "messageID", _BODY_NS))
        if value
    ]


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
    status = text_of(response)
    if not status:
        raise _bad("getStatus", "getStatusResponse holds no status")
    return status


def parse_retrieve_response(body: bytes) -> ReceivedAs4:
    """The retrieved message: the ebMS header of ``soap:Header`` and the body's payloads."""
    root, response = _open_response(body, "retrieveMessage", "retrieveMessageResponse")
    try:
        messaging = root.find(f"{q(SOAP12_NS, 'Header')}/{q(EBMS_NS, 'Messaging')}")
        if messaging is None:
            raise Malformed("no ebMS Messaging header")
        header = read_user_message(messaging, _EBMS)
        return received_message(header, read_payloads(response, _BODY_NS, header.parts))
    except Malformed as exc:
        raise _bad("retrieveMessage", str(exc)) from exc


def parse_submit_request(body: bytes) -> ReceivedAs4:
    """Read a ``submitMessage`` request back (what a simulated access point receives)."""
    try:
        root = parse_envelope(body)
        request = body_child(root)
        if request.tag != q(WSPLUGIN_NS, "submitRequest"):
            raise UnknownOperation(f"{request.tag} is not submitRequest")
        messaging = root.find(f"{q(SOAP12_NS, 'Header')}/{q(EBMS_NS, 'Messaging')}")
        if messaging is None:
            raise Malformed("no ebMS Messaging header")
        header = read_user_message(messaging, _EBMS)
        return received_message(header, read_payloads(request, _BODY_NS, header.parts))
    except Malformed as exc:
        raise request_error(exc) from exc

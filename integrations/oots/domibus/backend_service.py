"""Domibus' push to the platform (``BackendService.wsdl``): the calls read, the replies built.

Contract (read in place from ``shared/conformance/``): ``domibus/backend-push/`` (namespace
``eu.domibus``), what Domibus calls on the platform when it pushes; ``push.py`` serves it.
``BackendService.xsd`` declares no ``elementFormDefault``, so *every* local element there is
unqualified, the children of the pushed ``Messaging`` header included
(``<ns:Messaging><UserMessage>...``); they are also accepted when qualified in ``eu.domibus``.
A pushed message carries its payloads as the WS plugin's answers do (``ws_plugin.read_payloads``).

``parse_push_request`` reads one call into a ``PushCall``; what cannot be read is the caller's
SP-1xx error (``SchemaViolation``, ``MalformedXml``, ``UnknownOperation``...). The replies:
``build_push_success`` (every output message of the WSDL is empty) and ``build_push_fault``
(``BackendFaultDetail{code, message}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lxml import etree

from integrations.oots.as4.ebms import read_user_message, received_message
from integrations.oots.as4.model import ReceivedAs4
from integrations.oots.as4.soap import (
    SOAP12_NS,
    XML_NS,
    Malformed,
    body_child,
    find_child,
    find_children,
    parse_envelope,
    q,
    request_error,
    required_text,
    serialize,
    sub,
    text_of,
)
from integrations.oots.domibus.ws_plugin import read_payloads
from serviceplatform.errors import ServicePlatformError, UnknownOperation

#: The namespace of ``BackendService.wsdl`` (sic: not a URI).
BACKEND_NS: Final = "eu.domibus"

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


def parse_push_request(body: bytes) -> PushCall:
    """Read one ``BackendService`` call; raises SP-1xx errors for what cannot be read."""
    try:
        root = parse_envelope(body)
        request = body_child(root)
        if etree.QName(request).namespace != BACKEND_NS:
            raise UnknownOperation(f"{request.tag} is not a BackendService operation")
        operation = etree.QName(request).localname
        if operation not in PUSH_OPERATIONS:
            raise UnknownOperation(f"{{{BACKEND_NS}}}{operation} is not a BackendService operation")
        if operation == "submitRequest":
            messaging = root.find(f"{q(SOAP12_NS, 'Header')}/{q(BACKEND_NS, 'Messaging')}")
            if messaging is None:
                raise Malformed("submitRequest without its Messaging header")
            header = read_user_message(messaging, _PUSH_NS)
            message = received_message(header, read_payloads(request, _PUSH_NS, header.parts))
            return PushCall(operation, message=message, message_ids=(message.message_id,))
        if operation == "deleteBatch":
            ids = tuple(
                v for v in (text_of(e) for e in find_children(request, "messageIds", _PUSH_NS)) if v
            )
            return PushCall(operation, message_ids=ids)
        message_id = required_text(
            find_child(request, "messageID", _PUSH_NS), f"{operation}/messageID"
        )
        status = None
        if operation == "messageStatusChange":
            status = required_text(find_child(request, "messageStatus", _PUSH_NS), "messageStatus")
        return PushCall(operation, message_ids=(message_id,), status=status)
    except Malformed as exc:
        raise request_error(exc) from exc


# --- the replies ------------------------------------------------------------------------


def build_push_success() -> bytes:
    """The answer to a push operation: every ``BackendService`` output message is empty."""
    root = etree.Element(q(SOAP12_NS, "Envelope"), nsmap={"soap": SOAP12_NS})
    etree.SubElement(root, q(SOAP12_NS, "Body"))
    return serialize(root)


def build_push_fault(error: ServicePlatformError, *, sender: bool | None = None) -> bytes:
    """A SOAP 1.2 fault with ``BackendFaultDetail{code, message}`` (``BackendService.xsd``).

    ``soap:Sender`` for the caller's errors, else ``soap:Receiver``; ``sender`` overrides.
    """
    sender = error.client_fault if sender is None else sender
    root = etree.Element(q(SOAP12_NS, "Envelope"), nsmap={"soap": SOAP12_NS})
    body = etree.SubElement(root, q(SOAP12_NS, "Body"))
    fault = sub(body, q(SOAP12_NS, "Fault"))
    code = sub(fault, q(SOAP12_NS, "Code"))
    sub(code, q(SOAP12_NS, "Value"), "soap:Sender" if sender else "soap:Receiver")
    reason = sub(fault, q(SOAP12_NS, "Reason"))
    sub(reason, q(SOAP12_NS, "Text"), error.error_text, **{q(XML_NS, "lang"): "en"})
    detail = sub(fault, q(SOAP12_NS, "Detail"))
    backend = etree.SubElement(
        detail, q(BACKEND_NS, "BackendFaultDetail"), nsmap={"ns": BACKEND_NS}
    )
    sub(backend, "code", error.code)
    sub(backend, "message", error.error_text)
    return serialize(root)

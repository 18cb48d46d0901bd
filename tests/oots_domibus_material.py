"""The conformance material of the OOTS AS4 and Domibus tests, shared by unit and integration.

Read in place from ``shared/conformance/`` (never copied): the WS plugin schemas of
``WebServicePlugin.wsdl``, the ebMS 3 header schema, ``BackendService.xsd``, the reference
envelopes of ``oots-edm-2.0/reference/soap/`` and the real Domibus 5.2.1 answers of
``incoming/reel/``; and the documents the tests make from them: a deterministic outgoing
request, what Domibus pushes, WS plugin faults, the same document under other prefixes.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from lxml import etree

from integrations.oots.as4.model import (
    ACTION_EXCEPTION,
    ACTION_REQUEST,
    ACTION_RESPONSE,
    EBMS_NS,
    EBRS_MIME,
    Attachment,
    OutgoingAs4,
    Property,
    TypedId,
)
from integrations.oots.as4.soap import SOAP12_NS
from integrations.oots.domibus.backend_service import (
    BACKEND_NS,
)
from integrations.oots.domibus.ws_plugin import (
    WSPLUGIN_NS,
    parse_retrieve_response,
)
from tests.official_schemas import XSD_NS, schema_files, wrapped_schema

CONFORMANCE: Final = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"


WS_PLUGIN: Final = CONFORMANCE / "domibus" / "ws-plugin"


BACKEND_XSD: Final = CONFORMANCE / "domibus" / "backend-push" / "BackendService.xsd"


EBMS3_XSD: Final = CONFORMANCE / "ebms3" / "ebms-header-3_0-200704.xsd"


EDM_2_0: Final = CONFORMANCE / "oots-edm-2.0"


REEL: Final = EDM_2_0 / "incoming" / "reel"


INCOMING: Final = EDM_2_0 / "incoming"


REFERENCE_SOAP: Final = EDM_2_0 / "reference" / "soap"


#: The real retrieveMessage answers of ``reel/``: (file, action, conversation, payload types).
REEL_RETRIEVED: Final = {
    "requete.xml": (ACTION_REQUEST, "1589c463-ccb7-4c0e-8044-c7198d844c16", [EBRS_MIME]),
    "requete.demarcheInconnue.xml": (
        ACTION_REQUEST,
        "11446f65-f2a9-4c39-953c-6bd04189d8a3",
        [EBRS_MIME],
    ),
    "reponseAvecPieceJointe.xml": (
        ACTION_RESPONSE,
        "1589c463-ccb7-4c0e-8044-c7198d844c16",
        [EBRS_MIME, "application/pdf"],
    ),
    "erreurObjetIntrouvable.xml": (
        ACTION_EXCEPTION,
        "11446f65-f2a9-4c39-953c-6bd04189d8a3",
        [EBRS_MIME],
    ),
}


REEL_ANSWER: Final = REEL / "reponseAvecPieceJointe.xml"


#: The conversation of the real request and its answer.
REEL_CONVERSATION: Final = uuid.UUID("1589c463-ccb7-4c0e-8044-c7198d844c16")


PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


XML_NS: Final = "http://www.w3.org/XML/1998/namespace"


def regrep_request() -> bytes:
    """A real v2.0 RegRep request body (the payload of ``reel/requete.xml``)."""
    body = parse_retrieve_response((REEL / "requete.xml").read_bytes()).body
    assert body is not None
    return body


def outgoing(**changes: object) -> OutgoingAs4:
    """A Danish authority's evidence request to a German provider, deterministic ids."""
    values: dict[str, object] = {
        "conversation_id": REEL_CONVERSATION,
        "from_party": "AP_DK_01",
        "to_party": "AP_DE_01",
        "original_sender": TypedId("29189846", "urn:cef.eu:names:identifier:EAS:0184"),
        "final_recipient": TypedId("DE73524311", "urn:cef.eu:names:identifier:EAS:9930"),
        "action": ACTION_REQUEST,
        "payload": regrep_request(),
        "message_id": "0f5d8b1e-0000-4000-8000-000000000001@oots.eu",
        "payload_id": "cid:0f5d8b1e-0000-4000-8000-000000000000@oots.eu",
        "timestamp": datetime(2026, 8, 6, 10, 0, 0, 123456, tzinfo=UTC),
    }
    values.update(changes)
    return OutgoingAs4(**values)  # type: ignore[arg-type]


def ws_plugin_schema() -> etree.XMLSchema:
    files = schema_files(WS_PLUGIN / "WebServicePlugin.wsdl")
    return wrapped_schema(files, Path(tempfile.mkdtemp(prefix="wsplugin-")))


def ebms3_schema() -> etree.XMLSchema:
    """The ebMS 3 header schema; its ``xml`` namespace import has no location: give one."""
    top = etree.Element(f"{{{XSD_NS}}}schema", nsmap={"xsd": XSD_NS})
    for namespace, location in ((XML_NS, WS_PLUGIN / "xml.xsd"), (EBMS_NS, EBMS3_XSD)):
        etree.SubElement(
            top, f"{{{XSD_NS}}}import", namespace=namespace, schemaLocation=location.as_uri()
        )
    return etree.XMLSchema(top)


def backend_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(BACKEND_XSD), PARSER))


def attributes_of(element: etree._Element) -> dict[str, str]:
    return {str(name): str(value) for name, value in element.attrib.items()}


def push_submit_envelope(retrieve_answer: bytes) -> bytes:
    """What Domibus pushes (``SUBMIT_MESSAGE``) for the message of a retrieveMessage answer.

    ``WSPluginMessageBuilder`` marshals ``Messaging`` of ``BackendService.xsd`` into the header
    and ``submitRequest`` into the body. That schema has no ``elementFormDefault``: every
    element below the two global ones is unqualified; payloads carry ``payloadId`` and
    ``mimeType``.
    """
    source = etree.fromstring(retrieve_answer, PARSER)
    root = etree.Element(f"{{{SOAP12_NS}}}Envelope", nsmap={"soap": SOAP12_NS})
    header = etree.SubElement(root, f"{{{SOAP12_NS}}}Header")
    messaging = source.find(f"{{{SOAP12_NS}}}Header/{{{EBMS_NS}}}Messaging")
    assert messaging is not None
    pushed = etree.SubElement(header, f"{{{BACKEND_NS}}}Messaging", nsmap={"ns": BACKEND_NS})

    def copy(element: etree._Element, parent: etree._Element) -> None:
        clone = etree.SubElement(parent, etree.QName(element).localname, attributes_of(element))
        clone.text = element.text
        for child in element:
            copy(child, clone)

    for child in messaging:
        copy(child, pushed)
    body = etree.SubElement(root, f"{{{SOAP12_NS}}}Body")
    request = etree.SubElement(body, f"{{{BACKEND_NS}}}submitRequest", nsmap={"ns": BACKEND_NS})
    answer = source.find(f"{{{SOAP12_NS}}}Body/{{{WSPLUGIN_NS}}}retrieveMessageResponse")
    assert answer is not None
    for payload in answer.iterfind("payload"):
        attributes = {"payloadId": payload.get("payloadId") or ""}
        if payload.get("contentType"):
            attributes["mimeType"] = payload.get("contentType") or ""
        element = etree.SubElement(request, "payload", attributes)
        etree.SubElement(element, "value").text = payload.findtext("value")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def push_notification(operation: str, *message_ids: str, status: str | None = None) -> bytes:
    root = etree.Element(f"{{{SOAP12_NS}}}Envelope", nsmap={"soap": SOAP12_NS})
    body = etree.SubElement(root, f"{{{SOAP12_NS}}}Body")
    element = etree.SubElement(body, f"{{{BACKEND_NS}}}{operation}", nsmap={"ns": BACKEND_NS})
    for message_id in message_ids:
        name = "messageIds" if operation == "deleteBatch" else "messageID"
        etree.SubElement(element, name).text = message_id
    if status is not None:
        etree.SubElement(element, "messageStatus").text = status
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def fault_envelope(
    code: str | None, message: str = "It failed", soap_code: str = "Receiver"
) -> bytes:
    detail = (
        f'<soap:Detail><ns2:FaultDetail xmlns:ns2="{WSPLUGIN_NS}"><code>{code}</code>'
        f"<message>{message}</message></ns2:FaultDetail></soap:Detail>"
        if code is not None
        else ""
    )
    return (
        f'<soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body><soap:Fault>'
        f"<soap:Code><soap:Value>soap:{soap_code}</soap:Value></soap:Code>"
        f'<soap:Reason><soap:Text xml:lang="en">{message}</soap:Text></soap:Reason>'
        f"{detail}</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


def mark_response(message_id: str) -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body>'
        f'<ns2:markMessageAsDownloadedResponse xmlns:ns2="{WSPLUGIN_NS}">'
        f"<messageID>{message_id}</messageID></ns2:markMessageAsDownloadedResponse>"
        f"</soap:Body></soap:Envelope>"
    ).encode()


def reprefixed(document: bytes) -> bytes:
    """The same document with every namespace under a new prefix (``x0``, ``x1``, ...)."""
    root = etree.fromstring(document, PARSER)
    prefixes: dict[str, str] = {}

    def copy(element: etree._Element) -> etree._Element:
        namespace = etree.QName(element).namespace
        nsmap = {}
        if namespace:
            nsmap[prefixes.setdefault(namespace, f"x{len(prefixes)}")] = namespace
        clone = etree.Element(element.tag, attributes_of(element), nsmap=nsmap)
        clone.text, clone.tail = element.text, element.tail
        for child in element:
            clone.append(copy(child))
        return clone

    return bytes(etree.tostring(copy(root)))


def assert_valid(schema: etree.XMLSchema, document: bytes | etree._Element) -> None:
    tree = etree.fromstring(document, PARSER) if isinstance(document, bytes) else document
    assert schema.validate(tree), str(schema.error_log)


def with_attachment() -> OutgoingAs4:
    pdf = Attachment("cid:evidence-1@pdf.oots.eu", "application/pdf", b"%PDF-1.7\n...")
    return outgoing(
        action=ACTION_RESPONSE,
        attachments=(pdf,),
        ref_to_message_id="request-1@oots.eu",
        properties=(Property("SpecificationId", "oots-edm:v2.0"),),
    )

"""The WS plugin and push envelopes against the conformance contracts and real captures.

Judges (read in place, never copied): the WS plugin schemas of ``WebServicePlugin.wsdl``, the
ebMS 3 header schema, ``BackendService.xsd``, the reference envelopes of
``oots-edm-2.0/reference/soap/`` and the real Domibus 5.2.1 answers of ``incoming/reel/``.

What the captures show (and the code relies on):

- ``reel/`` answers bind the ebMS namespace to ``ns5`` in the header and declare it again as
  ``ns3`` in the body, where ``ns5`` is the SOAP namespace: prefixes mean nothing;
- the real ``submitResponse`` has a ``messageEntityID`` that the conformance body schema does
  not declare (it fails that schema), so readers ignore unknown elements;
- the real answers carry no ``RefToMessageId``: correlation works by ConversationId;
- the reference submit envelopes write ``<bodyload><value>cid:bodyload</value></bodyload>``,
  which is not base64 and fails the plugin's schema; ``reponse.soumission.xml`` also wraps its
  PDF's base64 in parentheses. The platform writes no bodyload and decodes strictly;
- ``reference/soap/recuperationMessage.xml`` has no ``markAsDownloaded``, i.e. the default
  ``true``: Domibus would mark the message downloaded before the backend stored it.
"""

from __future__ import annotations

import base64
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pytest
from lxml import etree

from integrations.oots.as4.ebms import build_messaging
from integrations.oots.as4.model import (
    ACTION_EXCEPTION,
    ACTION_REQUEST,
    ACTION_RESPONSE,
    EBMS_NS,
    EBRS_MIME,
    GATEWAY_ROLE,
    OOTS_PARTY_TYPE,
    OOTS_SERVICE,
    OOTS_SERVICE_TYPE,
    Attachment,
    OutgoingAs4,
    Property,
    ReceivedAs4,
    TypedId,
    format_timestamp,
)
from integrations.oots.as4.soap import SOAP12_NS
from integrations.oots.domibus.backend_service import (
    BACKEND_NS,
    build_push_fault,
    build_push_success,
    parse_push_request,
)
from integrations.oots.domibus.ws_plugin import (
    WSPLUGIN_NS,
    build_list_pending_request,
    build_mark_as_downloaded_request,
    build_retrieve_request,
    build_status_request,
    build_submit_request,
    fault_error,
    find_fault,
    parse_list_pending_response,
    parse_mark_as_downloaded_response,
    parse_retrieve_response,
    parse_submit_request,
    parse_submit_response,
)
from integrations.oots.edm import EdmError, Evidence, parse_query_request, parse_query_response
from serviceplatform.errors import (
    MalformedXml,
    NotSoapEnvelope,
    SchemaViolation,
    SecurityError,
    StorageError,
    UnknownOperation,
    UpstreamAuthRefused,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tests.official_schemas import XSD_NS, schema_files, wrapped_schema

CONFORMANCE: Final = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
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
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

XML_NS: Final = "http://www.w3.org/XML/1998/namespace"


# --- shared material (also used by the integration tests) ----------------------------------------


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
    return etree.XMLSchema(etree.parse(str(BACKEND_XSD), _PARSER))


def _attributes(element: etree._Element) -> dict[str, str]:
    return {str(name): str(value) for name, value in element.attrib.items()}


def push_submit_envelope(retrieve_answer: bytes) -> bytes:
    """What Domibus pushes (``SUBMIT_MESSAGE``) for the message of a retrieveMessage answer.

    ``WSPluginMessageBuilder`` marshals ``Messaging`` of ``BackendService.xsd`` into the header
    and ``submitRequest`` into the body. That schema has no ``elementFormDefault``: every
    element below the two global ones is unqualified; payloads carry ``payloadId`` and
    ``mimeType``.
    """
    source = etree.fromstring(retrieve_answer, _PARSER)
    root = etree.Element(f"{{{SOAP12_NS}}}Envelope", nsmap={"soap": SOAP12_NS})
    header = etree.SubElement(root, f"{{{SOAP12_NS}}}Header")
    messaging = source.find(f"{{{SOAP12_NS}}}Header/{{{EBMS_NS}}}Messaging")
    assert messaging is not None
    pushed = etree.SubElement(header, f"{{{BACKEND_NS}}}Messaging", nsmap={"ns": BACKEND_NS})

    def copy(element: etree._Element, parent: etree._Element) -> None:
        clone = etree.SubElement(parent, etree.QName(element).localname, _attributes(element))
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
    root = etree.fromstring(document, _PARSER)
    prefixes: dict[str, str] = {}

    def copy(element: etree._Element) -> etree._Element:
        namespace = etree.QName(element).namespace
        nsmap = {}
        if namespace:
            nsmap[prefixes.setdefault(namespace, f"x{len(prefixes)}")] = namespace
        clone = etree.Element(element.tag, _attributes(element), nsmap=nsmap)
        clone.text, clone.tail = element.text, element.tail
        for child in element:
            clone.append(copy(child))
        return clone

    return bytes(etree.tostring(copy(root)))


@pytest.fixture(scope="module")
def wsplugin() -> etree.XMLSchema:
    return ws_plugin_schema()


@pytest.fixture(scope="module")
def ebms3() -> etree.XMLSchema:
    return ebms3_schema()


def _assert_valid(schema: etree.XMLSchema, document: bytes | etree._Element) -> None:
    tree = etree.fromstring(document, _PARSER) if isinstance(document, bytes) else document
    assert schema.validate(tree), str(schema.error_log)


# --- building -----------------------------------------------------------------------------------


def _with_attachment() -> OutgoingAs4:
    pdf = Attachment("cid:evidence-1@pdf.oots.eu", "application/pdf", b"%PDF-1.7\n...")
    return outgoing(
        action=ACTION_RESPONSE,
        attachments=(pdf,),
        ref_to_message_id="request-1@oots.eu",
        properties=(Property("SpecificationId", "oots-edm:v2.0"),),
    )


@pytest.mark.parametrize("message", [outgoing(), _with_attachment()], ids=["request", "answer"])
def test_submit_envelope_validates_against_the_ws_plugin_and_ebms3_schemas(
    message: OutgoingAs4, wsplugin: etree.XMLSchema, ebms3: etree.XMLSchema
) -> None:
    envelope = build_submit_request(message)
    _assert_valid(wsplugin, envelope)
    root = etree.fromstring(envelope, _PARSER)
    messaging = root.find(f"{{{SOAP12_NS}}}Header/{{{EBMS_NS}}}Messaging")
    assert messaging is not None
    _assert_valid(ebms3, etree.ElementTree(messaging).getroot())
    _assert_valid(ebms3, build_messaging(message))


def test_submit_envelope_carries_the_oots_header_values() -> None:
    message = _with_attachment()
    root = etree.fromstring(build_submit_request(message), _PARSER)
    eb = {"eb": EBMS_NS}
    user = root.find(f"{{{SOAP12_NS}}}Header/{{{EBMS_NS}}}Messaging/{{{EBMS_NS}}}UserMessage")
    assert user is not None
    assert user.findtext("eb:MessageInfo/eb:Timestamp", namespaces=eb) == (
        "2026-08-06T10:00:00.123Z"
    )
    assert user.findtext("eb:MessageInfo/eb:RefToMessageId", namespaces=eb) == "request-1@oots.eu"
    for side, party in (("From", "AP_DK_01"), ("To", "AP_DE_01")):
        party_id = user.find(f"eb:PartyInfo/eb:{side}/eb:PartyId", namespaces=eb)
        assert party_id is not None
        assert (party_id.text, party_id.get("type")) == (party, OOTS_PARTY_TYPE)
        assert user.findtext(f"eb:PartyInfo/eb:{side}/eb:Role", namespaces=eb) == GATEWAY_ROLE
    service = user.find("eb:CollaborationInfo/eb:Service", namespaces=eb)
    assert service is not None
    assert (service.text, service.get("type")) == (OOTS_SERVICE, OOTS_SERVICE_TYPE)
    assert user.findtext("eb:CollaborationInfo/eb:Action", namespaces=eb) == ACTION_RESPONSE
    conversation = user.findtext("eb:CollaborationInfo/eb:ConversationId", namespaces=eb)
    assert uuid.UUID(conversation or "") == REEL_CONVERSATION
    properties = [
        (p.get("name"), p.text, p.get("type"))
        for p in user.iterfind("eb:MessageProperties/eb:Property", namespaces=eb)
    ]
    assert properties == [
        ("originalSender", "29189846", "urn:cef.eu:names:identifier:EAS:0184"),
        ("finalRecipient", "DE73524311", "urn:cef.eu:names:identifier:EAS:9930"),
        ("SpecificationId", "oots-edm:v2.0", None),
    ]
    parts = [
        (part.get("href"), part.findtext("eb:PartProperties/eb:Property", namespaces=eb))
        for part in user.iterfind("eb:PayloadInfo/eb:PartInfo", namespaces=eb)
    ]
    assert parts == [
        ("cid:0f5d8b1e-0000-4000-8000-000000000000@oots.eu", EBRS_MIME),
        ("cid:evidence-1@pdf.oots.eu", "application/pdf"),
    ]
    request = root.find(f"{{{SOAP12_NS}}}Body/{{{WSPLUGIN_NS}}}submitRequest")
    assert request is not None
    assert request.find("bodyload") is None
    payloads = [
        (p.get("payloadId"), p.get("contentType"), base64.b64decode(p.findtext("value") or ""))
        for p in request.iterfind("payload")
    ]
    assert payloads == [
        ("cid:0f5d8b1e-0000-4000-8000-000000000000@oots.eu", EBRS_MIME, message.payload),
        ("cid:evidence-1@pdf.oots.eu", "application/pdf", b"%PDF-1.7\n..."),
    ]


def _normalized(element: etree._Element) -> object:
    """A comparable form: names by URI, attributes, text without blanks, base64 decoded."""
    text = (element.text or "").strip()
    if etree.QName(element).localname == "value" and text:
        text = base64.b64decode(text.strip("()"))  # type: ignore[assignment]
    children = [
        _normalized(child)
        for child in element
        if isinstance(child.tag, str) and etree.QName(child).localname != "bodyload"
    ]
    return (element.tag, _attributes(element), text, children)


def test_submit_envelope_is_the_reference_document() -> None:
    """``reference/soap/requete.soumission.xml`` with its values, minus its bodyload."""
    reference = etree.parse(str(REFERENCE_SOAP / "requete.soumission.xml"), _PARSER).getroot()
    value = reference.findtext(f".//{{{WSPLUGIN_NS}}}submitRequest/payload/value")
    message = OutgoingAs4(
        conversation_id=uuid.UUID("e0a6a5b7-6b2e-4b9c-9a63-8f0c6d3a1b24"),
        from_party="AP_FR_01",
        to_party="AP_DE_01",
        original_sender=TypedId("00000000000002", "urn:cef.eu:names:identifier:EAS:0009"),
        final_recipient=TypedId("DE73524311", "urn:cef.eu:names:identifier:EAS:9930"),
        action=ACTION_REQUEST,
        payload=base64.b64decode(value or ""),
        message_id="1a2b3c4d-0000-4000-8000-000000000001@oots.eu",
        payload_id="cid:1a2b3c4d-0000-4000-8000-000000000000@oots.eu",
        timestamp=datetime(2026, 8, 6, 10, 0, tzinfo=UTC),
        properties=(
            Property("ExchangeId", "1a2b3c4d-0000-4000-8000-000000000002"),
            Property("SpecificationId", "oots-edm:v2.0"),
        ),
    )
    built = etree.fromstring(build_submit_request(message), _PARSER)
    assert _normalized(built) == _normalized(reference)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("listeMessagesEnAttente.xml", {}),
        (
            "listeMessagesEnAttente.filtree.xml",
            {"conversation_id": "e0a6a5b7-6b2e-4b9c-9a63-8f0c6d3a1b24"},
        ),
    ],
)
def test_list_pending_envelope_is_the_reference_document(
    name: str, kwargs: dict[str, str], wsplugin: etree.XMLSchema
) -> None:
    built = build_list_pending_request(**kwargs)  # type: ignore[arg-type]
    _assert_valid(wsplugin, built)
    reference = etree.parse(str(REFERENCE_SOAP / name), _PARSER).getroot()
    assert _normalized(etree.fromstring(built, _PARSER)) == _normalized(reference)


def test_retrieve_envelope_is_the_reference_document_but_never_marks(
    wsplugin: etree.XMLSchema,
) -> None:
    built = build_retrieve_request("1a2b3c4d-0000-4000-8000-000000009999@oots.eu")
    _assert_valid(wsplugin, built)
    root = etree.fromstring(built, _PARSER)
    request = root.find(f"{{{SOAP12_NS}}}Body/{{{WSPLUGIN_NS}}}retrieveMessageRequest")
    assert request is not None
    # The reference relies on the schema default (true); the platform marks after storing.
    assert request.attrib.pop("markAsDownloaded") == "false"
    reference = etree.parse(str(REFERENCE_SOAP / "recuperationMessage.xml"), _PARSER).getroot()
    assert _normalized(root) == _normalized(reference)


def test_every_filter_and_the_mark_request_validate(wsplugin: etree.XMLSchema) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    _assert_valid(
        wsplugin,
        build_list_pending_request(
            message_id="m@x",
            conversation_id="c",
            ref_to_message_id="r@x",
            from_party_id="AP_DE_01",
            final_recipient="29189846",
            original_sender="DE73524311",
            received_from=moment,
            received_to=moment,
        ),
    )
    _assert_valid(wsplugin, build_mark_as_downloaded_request("m@x"))
    _assert_valid(wsplugin, build_retrieve_request("m@x", mark_as_downloaded=True))
    _assert_valid(wsplugin, build_status_request("m@x"))


def test_submit_request_reads_back_to_the_same_message() -> None:
    message = _with_attachment()
    read = parse_submit_request(build_submit_request(message))
    assert read.message_id == message.message_id
    assert read.conversation_id == str(message.conversation_id)
    assert read.ref_to_message_id == "request-1@oots.eu"
    assert read.timestamp == datetime(2026, 8, 6, 10, 0, 0, 123000, tzinfo=UTC)
    assert (read.from_party, read.to_party) == (
        TypedId("AP_DK_01", OOTS_PARTY_TYPE),
        TypedId("AP_DE_01", OOTS_PARTY_TYPE),
    )
    assert read.original_sender == message.original_sender
    assert read.final_recipient == message.final_recipient
    assert read.body == message.payload
    assert read.attachments == {"cid:evidence-1@pdf.oots.eu": b"%PDF-1.7\n..."}


@pytest.mark.parametrize(
    "change",
    [
        {"action": "Ping"},
        {"conversation_id": "not-a-uuid"},
        {"timestamp": datetime(2026, 1, 1)},
        {"payload": b""},
        {"from_party": ""},
        {"to_party": " AP_DE_01"},
        {"message_id": "x" * 256},
        {"original_sender": TypedId("29189846")},
        {"payload_id": "no-cid"},
        {"attachments": (Attachment("cid:A@x", "application/pdf", b"1"),), "payload_id": "cid:a@x"},
        {"properties": (Property("finalRecipient", "x"),)},
    ],
)
def test_an_outgoing_message_the_gateway_would_refuse_is_not_built(
    change: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        outgoing(**change)


def test_timestamps_are_utc_milliseconds() -> None:
    moment = datetime.fromisoformat("2026-08-06T12:00:00.999999+02:00")
    assert format_timestamp(moment) == "2026-08-06T10:00:00.999Z"


# --- reading the WS plugin's answers ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REEL_RETRIEVED))
def test_real_retrieve_answers_are_read(name: str) -> None:
    action, conversation, types = REEL_RETRIEVED[name]
    message = parse_retrieve_response((REEL / name).read_bytes())
    assert message.action == action
    assert message.conversation_id == conversation
    assert (message.service, message.service_type) == (OOTS_SERVICE, OOTS_SERVICE_TYPE)
    assert message.from_party == TypedId("blue_gw", OOTS_PARTY_TYPE)
    assert message.from_role == message.to_role == GATEWAY_ROLE
    assert message.message_id.endswith("@oots.eu")
    assert message.ref_to_message_id is None  # the real answers carry none
    assert message.timestamp is not None and message.timestamp.tzinfo is not None
    assert message.original_sender is not None and message.final_recipient is not None
    assert message.message_property("SpecificationId") == TypedId("oots-edm:v2.0")
    assert [p.mime_type for p in message.payloads] == types
    assert all(p.content_id.startswith("cid:") for p in message.payloads)
    body = message.body
    assert body is not None
    if action == ACTION_REQUEST:
        assert parse_query_request(body).procedure in ("00", "T3")
    else:
        outcome = parse_query_response(body, message.attachments)
        assert isinstance(outcome, Evidence if action == ACTION_RESPONSE else EdmError)


def test_the_real_answer_carries_the_pdf_as_an_attachment() -> None:
    message = parse_retrieve_response(REEL_ANSWER.read_bytes())
    assert message.message_id == "5a540a49-8f06-4bc5-9947-1e6dc35b4a6f@oots.eu"
    assert message.final_recipient == TypedId(
        "00000000000002", "urn:cef.eu:names:identifier:EAS:0009"
    )
    assert list(message.attachments) == ["cid:802edbd4-fdfb-4345-84bd-0b7f17549075@pdf.oots.fr"]
    (pdf,) = message.attachments.values()
    assert pdf.startswith(b"%PDF")
    outcome = parse_query_response(message.body or b"", message.attachments)
    assert isinstance(outcome, Evidence) and outcome.content == pdf


@pytest.mark.parametrize("name", sorted(REEL_RETRIEVED))
def test_prefixes_do_not_matter(name: str) -> None:
    original = (REEL / name).read_bytes()
    assert reprefixed(original) != original
    assert parse_retrieve_response(reprefixed(original)) == parse_retrieve_response(original)


@pytest.mark.parametrize("path", sorted(INCOMING.glob("*.xml")), ids=lambda p: p.name)
def test_hand_made_incoming_answers_are_read(path: Path) -> None:
    """No ``contentType`` on these payloads: the type is the PartInfo's MimeType property."""
    message = parse_retrieve_response(path.read_bytes())
    assert message.payloads[0].mime_type == EBRS_MIME
    assert message.body is not None and b"QueryRe" in message.body


def test_real_list_and_submit_answers_are_read() -> None:
    pending = parse_list_pending_response((REEL / "listeMessagesEnAttente.xml").read_bytes())
    assert pending == ["45fa5345-5a18-4691-945f-531f9568729f@oots.eu"]
    empty = (REEL / "listeMessagesEnAttente.vide.xml").read_bytes()
    assert parse_list_pending_response(empty) == []
    # messageEntityID is not in the conformance schema: ignored.
    submitted = parse_submit_response((REEL / "soumissionMessage.xml").read_bytes())
    assert submitted == "45fa5345-5a18-4691-945f-531f9568729f@oots.eu"
    assert parse_mark_as_downloaded_response(mark_response("m@x")) == "m@x"


def test_the_real_submit_answer_fails_the_conformance_schema_it_is_read_against(
    wsplugin: etree.XMLSchema,
) -> None:
    document = etree.parse(str(REEL / "soumissionMessage.xml"), _PARSER)
    assert not wsplugin.validate(document)
    assert "messageEntityID" in str(wsplugin.error_log)


@pytest.mark.parametrize(
    ("code", "soap_code", "expected"),
    [
        ("WS_PLUGIN:0009", "Receiver", UpstreamNotFound),
        ("WS_PLUGIN_0009", "Receiver", UpstreamNotFound),
        ("WS_PLUGIN:0002", "Receiver", UpstreamAuthRefused),
        ("WS_PLUGIN:0001", "Receiver", UpstreamUnavailable),
        ("WS_PLUGIN_0005", "Receiver", UpstreamRejected),
        ("WS_PLUGIN:0007", "Receiver", UpstreamRejected),
        ("EBMS:0004", "Receiver", UpstreamRejected),
        (None, "Receiver", UpstreamUnavailable),
        (None, "Sender", UpstreamRejected),
    ],
)
def test_faults_become_upstream_errors(
    code: str | None, soap_code: str, expected: type[UpstreamError]
) -> None:
    envelope = fault_envelope(code, "Message with id [1234567890@x] not found", soap_code)
    with pytest.raises(expected) as caught:
        parse_retrieve_response(envelope)
    assert type(caught.value) is expected
    assert caught.value.error_text.count("retrieveMessage") == 1
    assert "1234567890" not in caught.value.error_text  # ten digits could be a CPR number
    fault = find_fault(envelope)
    assert fault is not None
    assert type(fault_error(fault, "x", 500)) is expected


def _retrieve_answer_with(old: bytes, new: bytes) -> bytes:
    document = REEL_ANSWER.read_bytes()
    assert old in document
    return document.replace(old, new, 1)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"not xml", "well-formed"),
        (b'<?xml version="1.0"?><!DOCTYPE x []><x/>', "document type"),
        (b"<Envelope/>", "SOAP 1.2"),
        ((REEL / "listeMessagesEnAttente.xml").read_bytes(), "expected retrieveMessageResponse"),
        (
            _retrieve_answer_with(b"<ns5:ConversationId>", b"<ns5:Conversation>").replace(
                b"</ns5:ConversationId>", b"</ns5:Conversation>"
            ),
            "ConversationId",
        ),
        (_retrieve_answer_with(b"<value>", b"<value>("), "not base64"),
        (
            _retrieve_answer_with(b'payloadId="cid:802edbd4', b'payloadId="cid:other'),
            "PartInfo without its payload",
        ),
        (
            _retrieve_answer_with(
                b"<value>",
                b'<value><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include"'
                b' href="cid:x"/>',
            ),
            "MTOM",
        ),
    ],
    ids=[
        "not-xml",
        "doctype",
        "not-soap",
        "wrong-answer",
        "no-conversation",
        "base64",
        "missing",
        "mtom",
    ],
)
def test_unreadable_answers_are_bad_responses(document: bytes, problem: str) -> None:
    with pytest.raises(UpstreamBadResponse) as caught:
        parse_retrieve_response(document)
    assert problem in caught.value.error_text


def test_base64_may_be_wrapped_but_nothing_else() -> None:
    document = REEL_ANSWER.read_bytes()
    value = etree.fromstring(document, _PARSER).findtext(".//payload/value") or ""
    wrapped = "\n".join(value[i : i + 76] for i in range(0, len(value), 76))
    message = parse_retrieve_response(document.replace(value.encode(), wrapped.encode()))
    assert message == parse_retrieve_response(document)


# --- the push calls ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REEL_RETRIEVED))
def test_a_pushed_message_reads_as_the_retrieved_one(name: str) -> None:
    answer = (REEL / name).read_bytes()
    pushed = push_submit_envelope(answer)
    root = etree.fromstring(pushed, _PARSER)
    schema = backend_schema()
    for part in (
        root.find(f"{{{SOAP12_NS}}}Header/{{{BACKEND_NS}}}Messaging"),
        root.find(f"{{{SOAP12_NS}}}Body/{{{BACKEND_NS}}}submitRequest"),
    ):
        assert part is not None
        _assert_valid(schema, etree.ElementTree(part).getroot())
    call = parse_push_request(pushed)
    assert call.operation == "submitRequest"
    assert call.message == parse_retrieve_response(answer)
    assert call.message_ids == (call.message.message_id,)


def test_push_notifications_are_read() -> None:
    schema = backend_schema()
    for operation in ("receiveSuccess", "receiveFailure", "sendSuccess", "sendFailure", "delete"):
        envelope = push_notification(operation, "m-1@oots.eu")
        body = etree.fromstring(envelope, _PARSER).find(f"{{{SOAP12_NS}}}Body")
        assert body is not None
        _assert_valid(schema, body[0])
        call = parse_push_request(envelope)
        assert (call.operation, call.message_ids, call.message) == (
            operation,
            ("m-1@oots.eu",),
            None,
        )
    call = parse_push_request(push_notification("messageStatusChange", "m@x", status="DOWNLOADED"))
    assert (call.message_ids, call.status) == (("m@x",), "DOWNLOADED")
    assert parse_push_request(push_notification("deleteBatch", "a", "b")).message_ids == ("a", "b")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"<oops", MalformedXml),
        (b"<x/>", NotSoapEnvelope),
        (
            push_notification("receiveSuccess").replace(b"eu.domibus", b"urn:other"),
            UnknownOperation,
        ),
        (push_notification("retrieveMessage", "m"), UnknownOperation),
        (push_notification("receiveSuccess"), SchemaViolation),
        (
            push_submit_envelope(REEL_ANSWER.read_bytes())
            .replace(b"<MessageId>", b"<MessageID>")
            .replace(b"</MessageId>", b"</MessageID>"),
            SchemaViolation,
        ),
        (
            push_submit_envelope(REEL_ANSWER.read_bytes()).replace(b"<value>", b"<value>*"),
            SchemaViolation,
        ),
    ],
    ids=["not-xml", "not-soap", "other-namespace", "unknown", "no-id", "no-message-id", "base64"],
)
def test_malformed_pushes_are_the_callers_errors(
    document: bytes, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as caught:
        parse_push_request(document)
    assert getattr(caught.value, "client_fault", False)


def test_push_answers_validate() -> None:
    schema = backend_schema()
    success = etree.fromstring(build_push_success(), _PARSER)
    assert success.tag == f"{{{SOAP12_NS}}}Envelope" and len(success[0]) == 0
    for error, code in ((SchemaViolation("x"), "Sender"), (StorageError("db"), "Receiver")):
        fault = etree.fromstring(build_push_fault(error), _PARSER)
        assert fault.findtext(f".//{{{SOAP12_NS}}}Value") == f"soap:{code}"
        detail = fault.find(f".//{{{BACKEND_NS}}}BackendFaultDetail")
        assert detail is not None
        _assert_valid(schema, detail)
        assert detail.findtext("code") == error.code
    assert b"soap:Receiver" in build_push_fault(SecurityError("x"), sender=False)


def _all_reel() -> Iterator[Path]:
    yield from sorted(REEL.glob("*.xml"))


@pytest.mark.parametrize("path", list(_all_reel()), ids=lambda p: p.name)
def test_every_real_plugin_answer_is_read(path: Path) -> None:
    document = path.read_bytes()
    operation = etree.QName(etree.fromstring(document, _PARSER)[-1][0]).localname
    reader = {
        "retrieveMessageResponse": parse_retrieve_response,
        "listPendingMessagesResponse": parse_list_pending_response,
        "submitResponse": parse_submit_response,
    }[operation]
    result = reader(document)
    assert result is not None
    if isinstance(result, ReceivedAs4):
        assert result.body is not None

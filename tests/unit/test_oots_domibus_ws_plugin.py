"""The Domibus WS plugin operations against the conformance contracts and real captures.

Judges (read in place, never copied, see ``tests.oots_domibus_material``): the WS plugin
schemas of ``WebServicePlugin.wsdl``, the ebMS 3 header schema, the reference envelopes of
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
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from integrations.oots.as4.ebms import build_messaging
from integrations.oots.as4.model import (
    ACTION_REQUEST,
    ACTION_RESPONSE,
    EBMS_NS,
    EBRS_MIME,
    GATEWAY_ROLE,
    OOTS_PARTY_TYPE,
    OOTS_SERVICE,
    OOTS_SERVICE_TYPE,
    OutgoingAs4,
    Property,
    ReceivedAs4,
    TypedId,
)
from integrations.oots.as4.soap import SOAP12_NS
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
    parse_submit_response,
)
from integrations.oots.edm import EdmError, Evidence, parse_query_request, parse_query_response
from serviceplatform.errors import (
    UpstreamAuthRefused,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tests.oots_domibus_material import (
    INCOMING,
    PARSER,
    REEL,
    REEL_ANSWER,
    REEL_RETRIEVED,
    REFERENCE_SOAP,
    assert_valid,
    attributes_of,
    ebms3_schema,
    fault_envelope,
    mark_response,
    outgoing,
    with_attachment,
    ws_plugin_schema,
)


@pytest.fixture(scope="module")
def wsplugin() -> etree.XMLSchema:
    return ws_plugin_schema()


@pytest.fixture(scope="module")
def ebms3() -> etree.XMLSchema:
    return ebms3_schema()


# --- building -----------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [outgoing(), with_attachment()], ids=["request", "answer"])
def test_submit_envelope_validates_against_the_ws_plugin_and_ebms3_schemas(
    message: OutgoingAs4, wsplugin: etree.XMLSchema, ebms3: etree.XMLSchema
) -> None:
    envelope = build_submit_request(message)
    assert_valid(wsplugin, envelope)
    root = etree.fromstring(envelope, PARSER)
    messaging = root.find(f"{{{SOAP12_NS}}}Header/{{{EBMS_NS}}}Messaging")
    assert messaging is not None
    assert_valid(ebms3, etree.ElementTree(messaging).getroot())
    assert_valid(ebms3, build_messaging(message))


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
    return (element.tag, attributes_of(element), text, children)


def test_submit_envelope_is_the_reference_document() -> None:
    """``reference/soap/requete.soumission.xml`` with its values, minus its bodyload."""
    reference = etree.parse(str(REFERENCE_SOAP / "requete.soumission.xml"), PARSER).getroot()
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
    built = etree.fromstring(build_submit_request(message), PARSER)
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
    assert_valid(wsplugin, built)
    reference = etree.parse(str(REFERENCE_SOAP / name), PARSER).getroot()
    assert _normalized(etree.fromstring(built, PARSER)) == _normalized(reference)


def test_retrieve_envelope_is_the_reference_document_but_never_marks(
    wsplugin: etree.XMLSchema,
) -> None:
    built = build_retrieve_request("1a2b3c4d-0000-4000-8000-000000009999@oots.eu")
    assert_valid(wsplugin, built)
    root = etree.fromstring(built, PARSER)
    request = root.find(f"{{{SOAP12_NS}}}Body/{{{WSPLUGIN_NS}}}retrieveMessageRequest")
    assert request is not None
    # The reference relies on the schema default (true); the platform marks after storing.
    assert request.attrib.pop("markAsDownloaded") == "false"
    reference = etree.parse(str(REFERENCE_SOAP / "recuperationMessage.xml"), PARSER).getroot()
    assert _normalized(root) == _normalized(reference)


def test_every_filter_and_the_mark_request_validate(wsplugin: etree.XMLSchema) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert_valid(
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
    assert_valid(wsplugin, build_mark_as_downloaded_request("m@x"))
    assert_valid(wsplugin, build_retrieve_request("m@x", mark_as_downloaded=True))
    assert_valid(wsplugin, build_status_request("m@x"))


# --- reading the answers ------------------------------------------------------------------------


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
    document = etree.parse(str(REEL / "soumissionMessage.xml"), PARSER)
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
    value = etree.fromstring(document, PARSER).findtext(".//payload/value") or ""
    wrapped = "\n".join(value[i : i + 76] for i in range(0, len(value), 76))
    message = parse_retrieve_response(document.replace(value.encode(), wrapped.encode()))
    assert message == parse_retrieve_response(document)


def _all_reel() -> Iterator[Path]:
    yield from sorted(REEL.glob("*.xml"))


@pytest.mark.parametrize("path", list(_all_reel()), ids=lambda p: p.name)
def test_every_real_plugin_answer_is_read(path: Path) -> None:
    document = path.read_bytes()
    operation = etree.QName(etree.fromstring(document, PARSER)[-1][0]).localname
    reader = {
        "retrieveMessageResponse": parse_retrieve_response,
        "listPendingMessagesResponse": parse_list_pending_response,
        "submitResponse": parse_submit_response,
    }[operation]
    result = reader(document)
    assert result is not None
    if isinstance(result, ReceivedAs4):
        assert result.body is not None

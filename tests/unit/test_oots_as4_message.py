"""The OOTS AS4 user message: its checks, and its ebMS header written and read back.

The header is looked at where it travels (the ``submitMessage`` envelope, a real retrieved
answer under other prefixes); the WS plugin operations themselves are
``test_oots_domibus_ws_plugin.py``'s.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest
from lxml import etree

from integrations.oots.as4.model import (
    ACTION_RESPONSE,
    EBMS_NS,
    EBRS_MIME,
    GATEWAY_ROLE,
    OOTS_PARTY_TYPE,
    OOTS_SERVICE,
    OOTS_SERVICE_TYPE,
    Attachment,
    Property,
    TypedId,
    format_timestamp,
)
from integrations.oots.as4.soap import SOAP12_NS
from integrations.oots.domibus.ws_plugin import (
    WSPLUGIN_NS,
    build_submit_request,
    parse_retrieve_response,
    parse_submit_request,
)
from tests.oots_domibus_material import (
    PARSER,
    REEL,
    REEL_CONVERSATION,
    REEL_RETRIEVED,
    outgoing,
    reprefixed,
    with_attachment,
)


def test_submit_envelope_carries_the_oots_header_values() -> None:
    message = with_attachment()
    root = etree.fromstring(build_submit_request(message), PARSER)
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


def test_submit_request_reads_back_to_the_same_message() -> None:
    message = with_attachment()
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


@pytest.mark.parametrize("name", sorted(REEL_RETRIEVED))
def test_prefixes_do_not_matter(name: str) -> None:
    original = (REEL / name).read_bytes()
    assert reprefixed(original) != original
    assert parse_retrieve_response(reprefixed(original)) == parse_retrieve_response(original)

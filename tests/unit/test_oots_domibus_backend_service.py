"""Domibus' push calls (``BackendService.xsd``) read, and the platform's replies to them.

A pushed message is made from a real retrieved answer the way Domibus' WS plugin marshals it
(``tests.oots_domibus_material.push_submit_envelope``) and must read as the retrieved one.
"""

from __future__ import annotations

import pytest
from lxml import etree

from integrations.oots.as4.soap import SOAP12_NS
from integrations.oots.domibus.backend_service import (
    BACKEND_NS,
    build_push_fault,
    build_push_success,
    parse_push_request,
)
from integrations.oots.domibus.ws_plugin import (
    parse_retrieve_response,
)
from serviceplatform.errors import (
    MalformedXml,
    NotSoapEnvelope,
    SchemaViolation,
    SecurityError,
    StorageError,
    UnknownOperation,
)
from tests.oots_domibus_material import (
    PARSER,
    REEL,
    REEL_ANSWER,
    REEL_RETRIEVED,
    assert_valid,
    backend_schema,
    push_notification,
    push_submit_envelope,
)


@pytest.mark.parametrize("name", sorted(REEL_RETRIEVED))
def test_a_pushed_message_reads_as_the_retrieved_one(name: str) -> None:
    answer = (REEL / name).read_bytes()
    pushed = push_submit_envelope(answer)
    root = etree.fromstring(pushed, PARSER)
    schema = backend_schema()
    for part in (
        root.find(f"{{{SOAP12_NS}}}Header/{{{BACKEND_NS}}}Messaging"),
        root.find(f"{{{SOAP12_NS}}}Body/{{{BACKEND_NS}}}submitRequest"),
    ):
        assert part is not None
        assert_valid(schema, etree.ElementTree(part).getroot())
    call = parse_push_request(pushed)
    assert call.operation == "submitRequest"
    assert call.message == parse_retrieve_response(answer)
    assert call.message_ids == (call.message.message_id,)


def test_push_notifications_are_read() -> None:
    schema = backend_schema()
    for operation in ("receiveSuccess", "receiveFailure", "sendSuccess", "sendFailure", "delete"):
        envelope = push_notification(operation, "m-1@oots.eu")
        body = etree.fromstring(envelope, PARSER).find(f"{{{SOAP12_NS}}}Body")
        assert body is not None
        assert_valid(schema, body[0])
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
    success = etree.fromstring(build_push_success(), PARSER)
    assert success.tag == f"{{{SOAP12_NS}}}Envelope" and len(success[0]) == 0
    for error, code in ((SchemaViolation("x"), "Sender"), (StorageError("db"), "Receiver")):
        fault = etree.fromstring(build_push_fault(error), PARSER)
        assert fault.findtext(f".//{{{SOAP12_NS}}}Value") == f"soap:{code}"
        detail = fault.find(f".//{{{BACKEND_NS}}}BackendFaultDetail")
        assert detail is not None
        assert_valid(schema, detail)
        assert detail.findtext("code") == error.code
    assert b"soap:Receiver" in build_push_fault(SecurityError("x"), sender=False)

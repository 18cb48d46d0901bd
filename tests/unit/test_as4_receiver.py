"""The AS4 receiving endpoint (integrations/oots/as4/receiver.py) called as WSGI in memory.

The German provider's access point is played by the platform's own packing code with the German
keys; ``tests/integration/test_as4_access_point.py`` runs the same over HTTPS into a database.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from lxml import etree

from integrations.oots.as4.ebms import build_messaging
from integrations.oots.as4.encryption import encrypt_attachments
from integrations.oots.as4.errors import As4ReceiptInvalid
from integrations.oots.as4.mime import MimePart, build_related, parse_related
from integrations.oots.as4.model import ACTION_REQUEST, ReceivedAs4
from integrations.oots.as4.receiver import As4ReceiverApp
from integrations.oots.as4.sender import As4Sender, LocalAccessPoint, check_answer
from integrations.oots.as4.signals import read_signal
from integrations.oots.as4.signature import SigningKey, verify_envelope
from integrations.oots.as4.soap import new_envelope, serialize
from integrations.oots.as4.transport import HttpAnswer
from integrations.oots.as4.usermessage import PackedMessage, open_message, pack_user_message
from serviceplatform.errors import StorageError
from tests.as4_material import (
    answer,
    de_partner,
    dk_access_point,
    dk_partner_of_de,
    envelope_schema,
    party,
    signing_key,
)
from tests.oots_domibus_material import regrep_request


class MemoryStore:
    def __init__(self) -> None:
        self.messages: dict[str, ReceivedAs4] = {}
        self.calls = 0

    def store(self, message: ReceivedAs4) -> bool:
        self.calls += 1
        if message.message_id in self.messages:
            return False
        self.messages[message.message_id] = message
        return True


def _app(store: MemoryStore, **kwargs: Any) -> As4ReceiverApp:
    return As4ReceiverApp(dk_access_point(), {"AP_DE_01": de_partner()}, store, **kwargs)


def _post(app: As4ReceiverApp, content_type: str, body: bytes) -> HttpAnswer:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    out = b"".join(app(environ, start_response))
    assert seen["headers"]["Content-Length"] == str(len(out))
    return HttpAnswer(int(seen["status"][:3]), seen["headers"]["Content-Type"], out)


def _packed(signer: str = "AP_DE_01", **changes: object) -> PackedMessage:
    return pack_user_message(answer(**changes), signing_key(signer), party("AP_DK_01").cert)


def _ebms_error(result: HttpAnswer) -> str:
    """The code of the signed eb:Error the platform answered (checked against the schemas)."""
    assert result.status == 500
    root = etree.fromstring(result.body)
    envelope_schema().assertValid(root)
    verify_envelope(root, {}, (party("AP_DK_01").cert,))
    (error,) = read_signal(root).errors
    return error.code


def test_an_answer_is_stored_and_receipted() -> None:
    store, packed = MemoryStore(), _packed()
    result = _post(_app(store), packed.content_type, packed.body)
    assert result.status == 200
    envelope_schema().assertValid(etree.fromstring(result.body))
    # The German side checks the receipt as the platform's own sender does: signed by the
    # platform, for its MessageId, NRR references = what it signed.
    _, platform = dk_partner_of_de()
    signal = check_answer(result, packed, platform)
    assert signal.ref_to_message_id == answer().message_id
    stored = store.messages[answer().message_id]
    assert stored.body == regrep_request() and stored.is_answer
    assert stored.from_party.value == "AP_DE_01" and stored.original_sender is not None


def test_a_duplicate_is_answered_again_and_handed_on_once() -> None:
    store, packed = MemoryStore(), _packed()
    first = _post(_app(store), packed.content_type, packed.body)
    again = _post(_app(store), packed.content_type, packed.body)
    _, platform = dk_partner_of_de()
    check_answer(first, packed, platform)
    check_answer(again, packed, platform)
    assert list(store.messages) == [answer().message_id]


def test_a_tampered_payload_is_refused() -> None:
    store, packed = MemoryStore(), _packed()
    related = parse_related(packed.content_type, packed.body)
    part = related.attachments[0]
    forged = bytearray(part.content)
    forged[40] ^= 1
    content_type, body = build_related(
        related.root, [MimePart(part.content_id, part.content_type, bytes(forged))]
    )
    assert _ebms_error(_post(_app(store), content_type, body)) == "EBMS:0102"
    assert store.messages == {}


def test_a_message_signed_with_another_certificate_is_refused() -> None:
    store, packed = MemoryStore(), _packed(signer="AP_FR_01")
    assert _ebms_error(_post(_app(store), packed.content_type, packed.body)) == "EBMS:0101"
    assert store.messages == {}


@pytest.mark.parametrize(
    "changes",
    [{"from_party": "AP_XX_01"}, {"to_party": "AP_SE_01"}, {"party_type": "urn:other"}],
)
def test_an_unknown_party_is_refused(changes: dict[str, str]) -> None:
    store, packed = MemoryStore(), _packed(**changes)
    assert _ebms_error(_post(_app(store), packed.content_type, packed.body)) == "EBMS:0003"
    assert store.messages == {}


def test_a_request_is_not_an_answer_this_endpoint_takes() -> None:
    store, packed = MemoryStore(), _packed(action=ACTION_REQUEST)
    assert _ebms_error(_post(_app(store), packed.content_type, packed.body)) == "EBMS:0001"


def test_a_decompression_bomb_is_refused() -> None:
    store, packed = MemoryStore(), _packed(payload=b"\0" * 5_000_000)
    assert len(packed.body) < 50_000
    app = _app(store, max_payload_bytes=1_000_000)
    assert _ebms_error(_post(app, packed.content_type, packed.body)) == "EBMS:0303"
    assert store.messages == {}


def test_an_unsigned_message_is_refused() -> None:
    root, header, _ = new_envelope()
    header.append(build_messaging(answer()))
    parts = encrypt_attachments(
        root,
        [MimePart(answer().payload_id[4:], "application/x-ebrs+xml", regrep_request())],
        party("AP_DK_01").cert,
    )
    content_type, body = build_related(
        MimePart("soap@x", "application/soap+xml", serialize(root)), parts
    )
    store = MemoryStore()
    assert _ebms_error(_post(_app(store), content_type, body)) == "EBMS:0103"
    assert store.messages == {}


def test_malformed_input_is_an_error_signal_not_a_stack_trace() -> None:
    store = MemoryStore()
    for content_type, body in (
        ("text/xml", b"<x/>"),
        ("multipart/related; boundary=b", b"--b\r\nContent-ID: <a>\r\n\r\nx\r\n--b--"),
        (
            "multipart/related; boundary=b",
            b"--b\r\nContent-Type: application/soap+xml\r\nContent-ID: <a>\r\n\r\n"
            b"<!DOCTYPE x [<!ENTITY e 'x'>]><x>&e;</x>\r\n--b--",
        ),
    ):
        result = _post(_app(store), content_type, body)
        assert _ebms_error(result) == "EBMS:0004"
        assert b"Traceback" not in result.body
    assert store.calls == 0


def test_a_storage_failure_gives_no_receipt() -> None:
    class Broken(MemoryStore):
        def store(self, message: ReceivedAs4) -> bool:
            raise StorageError("database down")

    packed = _packed()
    assert _ebms_error(_post(_app(Broken()), packed.content_type, packed.body)) == "EBMS:0202"


def test_only_post() -> None:
    seen: list[str] = []
    app = _app(MemoryStore())
    app({"REQUEST_METHOD": "GET"}, lambda status, headers: seen.append(status))
    assert seen == ["405 Method Not Allowed"]


def test_signing_key_is_the_platform_own() -> None:
    # The receipt is signed with the access point's key (checked above through check_answer);
    # here: a receiver with another signing key gives receipts the partner refuses.
    local = dk_access_point()
    stranger = SigningKey(party("AP_FR_01").key, party("AP_FR_01").cert)
    other = As4ReceiverApp(
        LocalAccessPoint(local.party_id, stranger, local.decryption),
        {"AP_DE_01": de_partner()},
        MemoryStore(),
    )
    packed = _packed()
    result = _post(other, packed.content_type, packed.body)
    _, platform = dk_partner_of_de()
    with pytest.raises(As4ReceiptInvalid, match="receipt signature"):
        check_answer(result, packed, platform)


def test_the_ebms_test_message_is_receipted_and_never_delivered() -> None:
    store = MemoryStore()
    german, platform = dk_partner_of_de()
    sleeps: list[float] = []

    def post(target: object, content_type: str, body: bytes) -> HttpAnswer:
        opened = open_message(content_type, body)
        envelope_schema().assertValid(opened.root)
        return _post(_app(store), content_type, body)

    sender = As4Sender(german, {"AP_DK_01": platform}, post=post, sleep=sleeps.append)
    result = sender.ping("AP_DK_01")
    assert result.attempts == 1 and result.receipt_message_id and sleeps == []
    assert store.calls == 0 and store.messages == {}

"""The AS4 sender (integrations/oots/as4/sender.py): the wire message, receipts, retries, errors.

The partner here is in memory (the platform's own unpacking and receipt code on the other end);
``tests/integration/test_as4_*`` put real sockets and independent peers on the other end.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from integrations.oots.as4.encryption import DecryptionKey
from integrations.oots.as4.errors import (
    As4ErrorSignal,
    As4PartnerNotConfigured,
    As4ReceiptMissing,
    As4SignatureInvalid,
)
from integrations.oots.as4.model import EBMS_NS, EBRS_MIME
from integrations.oots.as4.sender import (
    OOTS_RETRY,
    As4Partner,
    As4Sender,
    LocalAccessPoint,
    RetrySchedule,
)
from integrations.oots.as4.signals import build_error_signal, build_receipt
from integrations.oots.as4.signature import SignedReference
from integrations.oots.as4.transport import HttpAnswer, HttpTarget
from integrations.oots.as4.usermessage import open_message, unpack_user_message
from serviceplatform.errors import UpstreamUnreachable
from serviceplatform.store.audit import AuditEntry
from tests.as4_material import envelope_schema, party, signing_key
from tests.oots_domibus_material import outgoing, regrep_request

SOAP = "application/soap+xml; charset=UTF-8"


def _local() -> LocalAccessPoint:
    return LocalAccessPoint(
        "AP_DK_01",
        signing_key("AP_DK_01"),
        DecryptionKey(party("AP_DK_01").key, party("AP_DK_01").cert),
    )


def _partner() -> As4Partner:
    cert = party("AP_DE_01").cert
    return As4Partner("AP_DE_01", HttpTarget("https://de.example/as4"), cert, cert)


class Partner:
    """The German access point in memory: unpacks what it gets, answers as told."""

    def __init__(self, *answers: Callable[[list[SignedReference], str], HttpAnswer]) -> None:
        self.answers = list(answers)
        self.bodies: list[bytes] = []
        self.received: list[object] = []

    def __call__(self, target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer:
        assert target.url == "https://de.example/as4"
        self.bodies.append(body)
        unpacked = unpack_user_message(
            open_message(content_type, body),
            sender_certificates=(party("AP_DK_01").cert,),
            decryption=DecryptionKey(party("AP_DE_01").key, party("AP_DE_01").cert),
        )
        self.received.append(unpacked)
        answer = self.answers.pop(0)
        return answer(list(unpacked.signature.references), unpacked.header.message_id)


def receipt(references: list[SignedReference], message_id: str) -> HttpAnswer:
    return HttpAnswer(200, SOAP, build_receipt(message_id, references, signing_key("AP_DE_01")))


def unreachable(references: list[SignedReference], message_id: str) -> HttpAnswer:
    raise UpstreamUnreachable("connection refused")


def server_error(references: list[SignedReference], message_id: str) -> HttpAnswer:
    return HttpAnswer(500, "text/html", b"<html>Internal error</html>")


def receipt_missing_one_reference(references: list[SignedReference], message_id: str) -> HttpAnswer:
    return receipt(references[:-1], message_id)


def receipt_by_someone_else(references: list[SignedReference], message_id: str) -> HttpAnswer:
    body = build_receipt(message_id, references, signing_key("AP_FR_01"))
    return HttpAnswer(200, SOAP, body)


def error_signal(references: list[SignedReference], message_id: str) -> HttpAnswer:
    body = build_error_signal(message_id, As4SignatureInvalid("bad"), signing_key("AP_DE_01"))
    return HttpAnswer(500, SOAP, body)


class Audit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def write(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


def _sender(partner: Partner, sleeps: list[float], audit: Audit | None = None) -> As4Sender:
    return As4Sender(
        _local(), {"AP_DE_01": _partner()}, post=partner, sleep=sleeps.append, audit=audit
    )


def test_the_pushed_message_is_compressed_signed_encrypted_and_valid() -> None:
    partner, audit = Partner(receipt), Audit()
    sleeps: list[float] = []
    result = _sender(partner, sleeps, audit).send(outgoing())
    assert result.attempts == 1 and result.message_id == outgoing().message_id
    assert sleeps == []
    # On the wire: the SOAP part validates; the payload is neither readable nor plain gzip.
    opened = open_message(*_content(partner))
    envelope_schema().assertValid(opened.root)
    assert regrep_request()[:200] not in partner.bodies[0]
    (part,) = opened.related.attachments
    assert part.content_type == "application/octet-stream" and part.content[:2] != b"\x1f\x8b"
    properties = {
        p.get("name"): p.text
        for p in opened.root.iter(f"{{{EBMS_NS}}}Property")
        if p.getparent().tag.endswith("PartProperties")  # type: ignore[union-attr]
    }
    assert properties == {"MimeType": EBRS_MIME, "CompressionType": "application/gzip"}
    assert opened.root.find(f".//{{{EBMS_NS}}}Body") is None
    body = opened.root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert body is not None and len(body) == 0 and not (body.text or "").strip()
    # The partner got the RegRep document back, decompressed.
    message = partner.received[0].message  # type: ignore[attr-defined]
    assert message.body == regrep_request()
    assert [e.outcome for e in audit.entries] == ["ok"]


def _content(partner: Partner) -> tuple[str, bytes]:
    body = partner.bodies[0]
    boundary = body.split(b"\r\n", 1)[0][2:].decode()
    return f'multipart/related; type="application/soap+xml"; boundary="{boundary}"', body


def test_receipt_and_error_signal_validate_against_the_schemas() -> None:
    partner = Partner(receipt)
    _sender(partner, []).send(outgoing())
    references = list(partner.received[0].signature.references)  # type: ignore[attr-defined]
    signed = build_receipt("m@x", references, signing_key("AP_DE_01"))
    envelope_schema().assertValid(etree.fromstring(signed))
    nri = etree.fromstring(signed).findall(".//{*}MessagePartNRInformation")
    assert len(nri) == len(references) == 3
    error = build_error_signal("m@x", As4SignatureInvalid("bad"), signing_key("AP_DE_01"))
    envelope_schema().assertValid(etree.fromstring(error))
    code = etree.fromstring(error).find(f".//{{{EBMS_NS}}}Error")
    assert code is not None and code.get("errorCode") == "EBMS:0101"
    assert code.get("shortDescription") == "FailedAuthentication"
    assert code.get("refToMessageInError") == "m@x"


def test_no_receipt_then_retry_with_the_same_message_then_success() -> None:
    partner, audit = Partner(server_error, receipt_missing_one_reference, receipt), Audit()
    sleeps: list[float] = []
    result = _sender(partner, sleeps, audit).send(outgoing())
    assert result.attempts == 3
    assert sleeps == [180.0, 180.0]
    assert partner.bodies[0] == partner.bodies[1] == partner.bodies[2]
    assert [e.outcome for e in audit.entries] == ["ok"]


def test_no_valid_receipt_at_all_is_ebms_0301_and_audited() -> None:
    answers = [receipt_by_someone_else] * 5
    partner, audit = Partner(*answers), Audit()
    sleeps: list[float] = []
    with pytest.raises(As4ReceiptMissing) as raised:
        _sender(partner, sleeps, audit).send(outgoing())
    assert raised.value.code == "SP-790" and raised.value.ebms_code == "EBMS:0301"
    assert "after 5 attempts" in raised.value.error_text
    assert "receipt signature" in raised.value.error_text
    assert sleeps == [180.0] * 4 and len(partner.bodies) == 5
    (entry,) = audit.entries
    assert entry.outcome == "fault" and entry.error_code == "SP-790"
    assert entry.message_id == outgoing().message_id and entry.sysid == "AP_DE_01"


def test_an_unreachable_partner_is_retried_on_the_schedule() -> None:
    sleeps: list[float] = []

    def down(target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer:
        raise UpstreamUnreachable("refused")

    sender = As4Sender(
        _local(),
        {"AP_DE_01": _partner()},
        post=down,
        sleep=sleeps.append,
        schedule=RetrySchedule.parse("1;2;CONSTANT"),
    )
    with pytest.raises(As4ReceiptMissing, match="SP-401"):
        sender.send(outgoing())
    assert sleeps == [30.0, 30.0]


def test_an_error_signal_is_its_own_fault_and_not_retried() -> None:
    partner, audit = Partner(error_signal), Audit()
    sleeps: list[float] = []
    with pytest.raises(As4ErrorSignal) as raised:
        _sender(partner, sleeps, audit).send(outgoing())
    assert raised.value.remote_code == "EBMS:0101" and raised.value.status == 500
    assert raised.value.code == "SP-792"
    assert sleeps == [] and len(partner.bodies) == 1
    assert [e.error_code for e in audit.entries] == ["SP-792"]


def test_unknown_partner_is_refused_before_any_call() -> None:
    partner = Partner()
    with pytest.raises(As4PartnerNotConfigured):
        _sender(partner, []).send(outgoing(to_party="AP_XX_01"))
    assert partner.bodies == []


def test_retry_schedule() -> None:
    assert OOTS_RETRY.pauses() == [180.0] * 4
    assert RetrySchedule.parse("5;0;CONSTANT").pauses() == []
    assert RetrySchedule.parse("12;4;SEND_ONCE").pauses() == []
    with pytest.raises(ValueError, match="not supported"):
        RetrySchedule.parse("12;4;PROGRESSIVE")
    with pytest.raises(ValueError, match="minutes;count;strategy"):
        RetrySchedule.parse("12;4")

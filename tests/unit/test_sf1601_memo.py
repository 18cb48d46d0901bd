"""The NEMSMS MeMo and the SF1601 answers: one test per rule of the digest (SF1601.md §3, §4).

Each rule is checked on the XML the platform sends and, where the simulated SF1601 host
checks it too, against that independent reading (``sandbox.sf1601_service.check_memo_header``).
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from lxml import etree

from integrations.sf2250.messages import Subject
from integrations.sf2250.sf1601.mapping import (
    forespoerg_path,
    parse_forespoerg,
    parse_kombi_response,
    transaction_headers,
)
from integrations.sf2250.sf1601.memo import (
    HEADER_ORDER,
    MEMO_NS,
    MemoRuleBroken,
    NemSmsMemo,
    build_memo,
    kombi_request,
    new_message_uuid,
)
from serviceplatform.errors import UpstreamBadResponse
from serviceplatform.sandbox.sf1601_service import Refused, check_memo_header, kombi_response

MEMO = NemSmsMemo(
    message_uuid="3f2b6c1e-8d4a-4b7e-9c2d-1a2b3c4d5e6f",
    text="Husk din tid i morgen",
    label="Påmindelse",
    sender_cvr="29189854",
    sender_label="Myndighed CVR 29189854",
    recipient_kind="CPR",
    recipient_id="0101901234",
)
M = {"m": MEMO_NS}


def header_names(memo: NemSmsMemo = MEMO) -> list[str]:
    header = build_memo(memo).find("m:MessageHeader", M)
    assert header is not None
    return [etree.QName(child).localname for child in header]


def test_namespace_is_memo_1_and_qualified() -> None:
    message = build_memo(MEMO)
    assert message.tag == f"{{{MEMO_NS}}}Message"
    assert all(el.tag.startswith(f"{{{MEMO_NS}}}") for el in message.iter())


def test_memo_version_is_set() -> None:
    assert build_memo(MEMO).get("memoVersion") == "1.2"
    check_memo_header(build_memo(MEMO))  # the simulated service accepts it


def test_header_children_in_schema_order() -> None:
    assert header_names() == list(HEADER_ORDER)
    # The simulated service reads the order on its own: a swapped pair is refused there.
    message = build_memo(MEMO)
    header = message.find("m:MessageHeader", M)
    assert header is not None
    label = header.find("m:label", M)
    assert label is not None
    header.remove(label)
    header.append(label)
    with pytest.raises(Refused, match=r"order|required"):
        check_memo_header(message)


def test_required_fields_present() -> None:
    message = build_memo(MEMO)
    for path in (
        "m:MessageHeader/m:messageType",
        "m:MessageHeader/m:messageUUID",
        "m:MessageHeader/m:label",
        "m:MessageHeader/m:Sender/m:senderID",
        "m:MessageHeader/m:Sender/m:idType",
        "m:MessageHeader/m:Sender/m:label",
        "m:MessageHeader/m:Recipient/m:recipientID",
        "m:MessageHeader/m:Recipient/m:idType",
    ):
        assert (message.findtext(path, namespaces=M) or "").strip(), path


def test_message_type_is_nemsms_without_a_body() -> None:
    message = build_memo(MEMO)
    assert message.findtext("m:MessageHeader/m:messageType", namespaces=M) == "NEMSMS"
    assert message.find("m:MessageBody", M) is None


def test_message_uuid_is_version_4() -> None:
    fresh = new_message_uuid()
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", fresh
    )
    with pytest.raises(MemoRuleBroken, match="version-4"):
        build_memo(replace(MEMO, message_uuid="3f2b6c1e-8d4a-1b7e-9c2d-1a2b3c4d5e6f"))


@pytest.mark.parametrize(("length", "ok"), [(150, True), (151, False)])
def test_notification_at_most_150(length: int, ok: bool) -> None:
    memo = replace(MEMO, text="å" * length)
    if ok:
        text = build_memo(memo).findtext("m:MessageHeader/m:notification", namespaces=M)
        assert text == "å" * length
    else:
        with pytest.raises(MemoRuleBroken, match="150"):
            build_memo(memo)


def test_notification_not_empty() -> None:
    with pytest.raises(MemoRuleBroken, match="empty"):
        build_memo(replace(MEMO, text="  "))


def test_text_fields_at_most_256() -> None:
    build_memo(replace(MEMO, label="x" * 256))
    with pytest.raises(MemoRuleBroken, match="label"):
        build_memo(replace(MEMO, label="x" * 257))
    with pytest.raises(MemoRuleBroken, match="Sender/label"):
        build_memo(replace(MEMO, sender_label=""))


@pytest.mark.parametrize(
    ("kind", "number", "ok"),
    [
        ("CPR", "0101901234", True),
        ("CVR", "29189854", True),
        ("CPR", "29189854", False),
        ("CVR", "0101901234", False),
        ("MyndighedsID", "29189854", False),
    ],
)
def test_recipient_id_fits_its_id_type(kind: str, number: str, ok: bool) -> None:
    memo = replace(MEMO, recipient_kind=kind, recipient_id=number)
    if ok:
        assert (
            build_memo(memo).findtext("m:MessageHeader/m:Recipient/m:idType", namespaces=M) == kind
        )
    else:
        with pytest.raises(MemoRuleBroken, match="recipientID"):
            build_memo(memo)


def test_sender_is_the_authority_cvr() -> None:
    with pytest.raises(MemoRuleBroken, match="senderID"):
        build_memo(replace(MEMO, sender_cvr="1234"))


def test_kombi_request_wraps_the_memo_with_kombivalgkode_nemsms() -> None:
    root = etree.fromstring(kombi_request(MEMO))
    assert root.tag == "kombi_request"
    assert [etree.QName(c).localname for c in root] == ["KombiValgKode", "Message"]
    assert root.findtext("KombiValgKode") == "NemSMS"


def test_the_simulated_service_refuses_an_empty_sms_with_ngdp_code() -> None:
    message = build_memo(MEMO)
    notification = message.find("m:MessageHeader/m:notification", M)
    assert notification is not None
    notification.text = ""
    with pytest.raises(Refused) as refused:
        check_memo_header(message)
    assert refused.value.code == "empty.notification.not.allowed"


# --- the answers and the request lines ---------------------------------------------------------


def test_forespoerg_path_by_subject_kind() -> None:
    assert forespoerg_path(Subject("cpr", "0101901234")) == (
        "/service/PostForespoerg_1/nemsms?cprNumber=0101901234"
    )
    assert forespoerg_path(Subject("cvr", "29189854")).endswith("?cvrNumber=29189854")


def test_transaction_headers_are_a_uuid_and_utc_with_z() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    moment = datetime(2026, 1, 15, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    headers = transaction_headers("6b0c0f0e-2f8e-4a51-9a51-1d2b3c4d5e6f", moment)
    assert headers == {
        "x-TransaktionsId": "6b0c0f0e-2f8e-4a51-9a51-1d2b3c4d5e6f",
        "x-TransaktionsTid": "2026-01-15T11:00:00Z",
    }
    assert datetime.fromisoformat(headers["x-TransaktionsTid"]).tzinfo == UTC


@pytest.mark.parametrize(
    ("body", "expected"), [(b'{"result": true}', True), (b'{"result": false}', False)]
)
def test_parse_forespoerg(body: bytes, expected: bool) -> None:
    assert parse_forespoerg(body) is expected


@pytest.mark.parametrize("body", [b"", b"[]", b'{"result": "yes"}', b"<x/>"])
def test_an_unreadable_forespoerg_answer(body: bytes) -> None:
    with pytest.raises(UpstreamBadResponse):
        parse_forespoerg(body)


def test_kombi_response_received_is_accepted() -> None:
    receipt = parse_kombi_response(kombi_response(MEMO.message_uuid))
    assert receipt.accepted and receipt.transmission_id == MEMO.message_uuid


def test_kombi_response_other_advis_is_not_accepted() -> None:
    body = kombi_response(MEMO.message_uuid).replace(b">received<", b">rejected<")
    assert not parse_kombi_response(body).accepted
    with pytest.raises(UpstreamBadResponse):
        parse_kombi_response(b"<other/>")

"""Reading a part of a subscription list: the register's own spelling is read without the XML
parser, every other spelling through it, with the same entries and the same refusals."""

from __future__ import annotations

import random
from typing import Any

import pytest
from lxml import etree

from integrations.sf2250 import subscription_list
from integrations.sf2250.entry_buffer import EntryBuffer
from integrations.sf2250.entry_codes import code_of
from integrations.sf2250.subscription_list import (
    REGISTER_NS,
    SubscriptionListClient,
    part_codes,
    plain_part_codes,
)
from serviceplatform.errors import UpstreamBadResponse
from serviceplatform.outbound.base import OutboundRequest, OutboundResponse
from serviceplatform.outbound.credentials import Credential

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
BAD_ENTRY = "part 1 holds an entry that is no CPR or CVR"


class _Answer:
    """A transport answering one fixed body."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def send(self, request: OutboundRequest, *, credential: Credential) -> OutboundResponse:
        return OutboundResponse(200, self.body, {}, 0.0)


def _client(body: bytes) -> SubscriptionListClient:
    return SubscriptionListClient(_Answer(body), cert_alias="c")  # type: ignore[arg-type]


def _element(kind: str, number: str) -> str:
    return f"<Slutbruger><{kind.upper()}>{number}</{kind.upper()}></Slutbruger>"


def _plain(*elements: str, declaration: str = DECLARATION) -> bytes:
    """A part as the sandbox register writes it."""
    return (
        f'{declaration}<SlutbrugerDelliste xmlns="{REGISTER_NS}">'
        "<ReferenceId>0b0e2f5c-8f8e-4bd4-9d55-5d6ad0f1f0aa</ReferenceId>"
        f"<DelNummer>1</DelNummer><AntalDele>3</AntalDele>{''.join(elements)}"
        "</SlutbrugerDelliste>"
    ).encode()


def _entries(count: int, seed: int) -> list[tuple[str, str]]:
    chance = random.Random(seed)
    return [
        ("cvr", f"{chance.randrange(10**8):08d}")
        if chance.random() < 0.1
        else ("cpr", f"{chance.randrange(10**10):010d}")
        for _ in range(count)
    ]


def _no_xml_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the XML parser was used for a plain part")

    monkeypatch.setattr(subscription_list, "parse_xml", refuse)


def test_a_plain_part_is_read_without_the_xml_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = _entries(2_000, 1)
    body = _plain(*(_element(kind, number) for kind, number in entries), _element("cvr", ":07"))
    body = body.replace(b":07<", b":29189846<")  # one CVR with the colon EP_NS2 uses
    _no_xml_parser(monkeypatch)
    codes = _client(body).part("S", "ref", 1)
    assert codes == [code_of(*entry) for entry in entries] + [code_of("cvr", "29189846")]


def test_both_readings_give_the_same_codes_for_a_plain_part() -> None:
    for seed in range(5):
        body = _plain(*(_element(kind, number) for kind, number in _entries(500, seed)))
        assert plain_part_codes(body) == part_codes(etree.fromstring(body), 1)
    assert plain_part_codes(_plain()) == [] == part_codes(etree.fromstring(_plain()), 1)


@pytest.mark.parametrize(
    "body",
    [
        # Other spellings of the same document: read by the XML parser, with the same result.
        _plain(_element("cpr", "0101901234"), "\n ", _element("cvr", "29189846")),
        _plain(_element("cpr", " 0101901234 "), _element("cvr", "29189846"), declaration=""),
        _plain(
            _element("cpr", "0101901234"),
            _element("cvr", "29189846"),
            declaration="\ufeff" + DECLARATION,  # a byte order mark
        ),
        _plain(_element("cpr", "0101901234"), _element("cvr", "29189846")).replace(
            b"<AntalDele>3</AntalDele>", b"<AntalDele>3</AntalDele><!-- a comment -->"
        ),
        (
            f'<r:SlutbrugerDelliste xmlns:r="{REGISTER_NS}"><r:Slutbruger><r:CPR>0101901234'
            "</r:CPR></r:Slutbruger><r:Slutbruger><r:CVR>:29189846</r:CVR></r:Slutbruger>"
            "</r:SlutbrugerDelliste>"
        ).encode(),
    ],
)
def test_another_spelling_of_a_part_is_read_by_the_xml_parser(body: bytes) -> None:
    assert plain_part_codes(body) is None
    assert _client(body).part("S", "ref", 1) == [101901234, 10**10 + 29189846]


@pytest.mark.parametrize(
    "entry",
    [
        "<CPR>01019012345</CPR>",
        "<CPR>:0101901234</CPR>",
        "<CVR>::29189846</CVR>",
        "<CVR>2918984x</CVR>",
        "<CVR>029189846</CVR>",
        "<CPR>\u0660101901234</CPR>",  # an Arabic-Indic zero: a digit, but not ASCII
        "<CPR>0101901234</CPR><CPR>0101901234</CPR>",
        "<CPR/>",
        "<CPR>0101901234<CPR>1</CPR></CPR>",
        "<CPR>0101901234</CPR>1",
        "1<CPR>0101901234</CPR>",
        '<CPR xmlns="urn:other">0101901234</CPR>',
        "0101901234",
    ],
)
def test_a_bad_entry_in_the_plain_spelling_still_refuses_the_part(entry: str) -> None:
    body = _plain(_element("cpr", "0101901234"), f"<Slutbruger>{entry}</Slutbruger>")
    assert plain_part_codes(body) is None
    with pytest.raises(UpstreamBadResponse, match=BAD_ENTRY):
        _client(body).part("S", "ref", 1)


@pytest.mark.parametrize(
    "body",
    [
        _plain(_element("cpr", "0101901234"))[:-5],  # cut off
        _plain(_element("cpr", "0101901234")) + b"<x/>",  # a second root
        b'<!DOCTYPE x [<!ENTITY e "0101901234">]>' + _plain(_element("cpr", "&e;"), declaration=""),
        _plain(_element("cpr", "0101901234")).replace(b"<DelNummer>", b"<?pi x?><DelNummer>"),
        _plain(_element("cpr", "0101901234")).replace(b"1.0", b"1.1", 1) + b"\x0b",
    ],
)
def test_a_body_that_is_no_well_formed_part_is_refused(body: bytes) -> None:
    assert plain_part_codes(body) is None
    with pytest.raises(UpstreamBadResponse, match="is not XML"):
        _client(body).part("S", "ref", 1)


def test_a_part_of_another_root_or_namespace_is_refused() -> None:
    for body in (
        _plain(_element("cpr", "0101901234")).replace(REGISTER_NS.encode(), b"urn:other"),
        _plain().replace(b"SlutbrugerDelliste", b"SlutbrugerlisteReference"),
    ):
        assert plain_part_codes(body) is None
        with pytest.raises(UpstreamBadResponse, match="not SlutbrugerDelliste"):
            _client(body).part("S", "ref", 1)


def test_the_entry_buffer_takes_coded_parts_and_counts_them() -> None:
    entries = _entries(3_000, 7)
    buffer = EntryBuffer()
    for start in range(0, 3_000, 1_000):
        body = _plain(*(_element(kind, number) for kind, number in entries[start : start + 1_000]))
        buffer.extend(_client(body).part("S", "ref", 1))
    assert buffer.received == 3_000
    assert list(buffer.sorted()) == sorted(set(entries))

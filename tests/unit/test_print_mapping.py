"""EP_NS1/EP_NS4 wire mapping: paths, the Digital Post sending document and the answers."""

from __future__ import annotations

import base64
import tempfile
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from integrations.sf2250.messages import Subject
from integrations.sf2250.sf1600.mapping import (
    MEDDELELSE_ID,
    afsendelse_body,
    afsendelse_path,
    meddelelse_id,
    parse_afsendelse,
    parse_tilmelding,
    tilmelding_path,
)
from serviceplatform.errors import UpstreamBadResponse

OIO = (
    Path(__file__).resolve().parents[2].parent
    / "shared/conformance/kombit/sf1600/SF1600_EP_SP1-2/xsd/oio"
)
DKAL = "urn:oio:dkal:1.0.0"


@cache
def afsendelse_schema() -> etree.XMLSchema:
    """The official Digital Post ``dkal:Afsendelse`` schema (with the recipient types).

    libxml2 honours only the first import of a namespace, and the official files import
    ``adir`` from two files; a small wrapper includes both first.
    """
    folder = Path(tempfile.mkdtemp(prefix="afsendelse-xsd-"))
    xs = "http://www.w3.org/2001/XMLSchema"
    (folder / "adir.xsd").write_text(
        f'<xs:schema xmlns:xs="{xs}" targetNamespace="urn:oio:adir:dagpenge:2009.07.01">'
        f'<xs:include schemaLocation="{(OIO / "CPRnummerIdentifikator.xsd").as_uri()}"/>'
        f'<xs:include schemaLocation="{(OIO / "CVRnummerIdentifikator.xsd").as_uri()}"/>'
        "</xs:schema>"
    )
    wrapper = etree.fromstring(
        f'<xs:schema xmlns:xs="{xs}" targetNamespace="urn:oio:dkal:1.0.0">'
        f'<xs:import namespace="urn:oio:adir:dagpenge:2009.07.01" '
        f'schemaLocation="{(folder / "adir.xsd").as_uri()}"/>'
        f'<xs:include schemaLocation="{(OIO / "Afsendelse.xsd").as_uri()}"/></xs:schema>'
    )
    return etree.XMLSchema(wrapper)


def test_paths() -> None:
    assert (
        tilmelding_path("2250002", Subject("cpr", "0101901234"))
        == "/register/2250002/boks/0101901234/myndighedstilmelding"
    )
    assert (
        tilmelding_path("2250002", Subject("cvr", "29189846"))
        == "/register/2250002/boks/29189846/myndighedstilmelding"
    )
    assert afsendelse_path("22 50/4", "abc-1") == "/register/22%2050%2F4/afsendelse/abc-1"


@pytest.mark.parametrize("subject", [Subject("cpr", "0101901234"), Subject("cvr", "29189846")])
def test_the_sending_document_is_valid_digital_post(subject: Subject) -> None:
    body = afsendelse_body(
        message_id="abc-1",
        recipient=subject,
        text="Hej æøå",
        titel="Påmindelse om en meget lang titel der er over halvtreds tegn lang",
        indholdstype=7,
    )
    root = etree.fromstring(body)
    schema = afsendelse_schema()
    assert schema.validate(root), schema.error_log
    assert root.findtext(f"{{{DKAL}}}MeddelelseIdentifikator") == "abc-1"
    content = root.findtext(f"{{{DKAL}}}MeddelelseIndholdData") or ""
    assert base64.b64decode(content).decode("utf-8") == "Hej æøå"
    assert len(root.findtext(f"{{{DKAL}}}MeddelelseTitelTekst") or "") == 50
    assert root.findtext(f"{{{DKAL}}}FilformatNavn") == "TXT"
    assert subject.number in body.decode()


def test_a_missing_title_gets_a_default() -> None:
    body = afsendelse_body(
        message_id="a",
        recipient=Subject("cpr", "0101901234"),
        text="x",
        titel=None,
        indholdstype=None,
    )
    root = etree.fromstring(body)
    assert afsendelse_schema().validate(root)
    assert root.findtext(f"{{{DKAL}}}MeddelelseTitelTekst") == "NemSMS"
    assert root.find(f"{{{DKAL}}}MeddelelseIndholdstypeIdentifikator") is None


def test_meddelelse_id_is_kept_when_it_fits_and_hashed_stably_when_not() -> None:
    assert meddelelse_id("sms-2026.11_28~1") == "sms-2026.11_28~1"
    long_id = "x" * 38
    spaced = "mit brev 1"
    for original in (long_id, spaced, "æble"):
        mapped = meddelelse_id(original)
        assert MEDDELELSE_ID.fullmatch(mapped)
        assert mapped == meddelelse_id(original)
    assert meddelelse_id(long_id) != meddelelse_id("y" * 38)


def _tilmelding(value: str) -> bytes:
    return (
        f'<d:Myndighedstilmelding xmlns:d="{DKAL}"><d:TilmeldingIndikator>{value}'
        "</d:TilmeldingIndikator></d:Myndighedstilmelding>"
    ).encode()


def test_parse_tilmelding() -> None:
    assert parse_tilmelding(_tilmelding("true")) is True
    assert parse_tilmelding(_tilmelding(" false ")) is False
    with pytest.raises(UpstreamBadResponse):
        parse_tilmelding(_tilmelding("maybe"))
    with pytest.raises(UpstreamBadResponse):
        parse_tilmelding(b"<other/>")
    with pytest.raises(UpstreamBadResponse):
        parse_tilmelding(b"not xml")


def test_parse_afsendelse() -> None:
    receipt = parse_afsendelse(
        (
            f'<x:Afsendelse xmlns:x="{DKAL}">'
            "<x:MeddelelseIdentifikator>a</x:MeddelelseIdentifikator>"
            "<x:AfsendelseTilstandNavn>fremsendt</x:AfsendelseTilstandNavn>"
            "<x:AfsendelseDatoTid>2026-11-28T10:00:00Z</x:AfsendelseDatoTid></x:Afsendelse>"
        ).encode()
    )
    assert (receipt.message_id, receipt.state, receipt.accepted) == ("a", "fremsendt", True)
    assert receipt.sent_at == "2026-11-28T10:00:00Z"
    assert not parse_afsendelse(
        (
            f'<Afsendelse xmlns="{DKAL}"><MeddelelseIdentifikator>a</MeddelelseIdentifikator>'
            "<AfsendelseTilstandNavn>ukendt</AfsendelseTilstandNavn></Afsendelse>"
        ).encode()
    ).accepted
    with pytest.raises(UpstreamBadResponse, match="lacks"):
        parse_afsendelse(f'<Afsendelse xmlns="{DKAL}"/>'.encode())

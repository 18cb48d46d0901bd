"""SF2250 outward mapping, message values and the CPR/CVR validators."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from integrations.sf2250.mapping import (
    CONTENT_TYPE,
    DKAL_NS,
    myndighedstilmelding_body,
    parse_register_error,
    register_path_boks,
    register_path_myndighedstilmelding,
    stamdata_body,
)
from integrations.sf2250.messages import (
    OpdaterBorgerNemSMS,
    SlutbrugerStamdata,
    Subject,
    TilmeldNemSMS,
)
from serviceplatform.errors import InvalidCpr, InvalidCvr, SubjectChoiceInvalid
from serviceplatform.routing.identifiers import (
    cpr_birth_date,
    is_valid_cpr,
    is_valid_cvr,
)

REGISTER_XSD = (
    Path(__file__).resolve().parents[2] / "wsdl" / "sf2250" / "oio" / "NemSMSRegister.xsd"
)
CPR = Subject("cpr", "0101901234")
CVR = Subject("cvr", "29189846")


@cache
def register_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(REGISTER_XSD)))


# --- identifiers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpr", "year"),
    [
        ("0101901234", 1990),  # 7th digit 1: 1900s
        ("0101903234", 1990),
        ("2902004000", 2000),  # 7th digit 4, YY 00: 2000 (leap year)
        ("0101364000", 2036),  # 7th digit 4, YY 36: 2036
        ("0101374000", 1937),  # 7th digit 4, YY 37: 1937
        ("0101369000", 2036),  # 7th digit 9, YY 36
        ("0101379000", 1937),  # 7th digit 9, YY 37
        ("0101575000", 2057),  # 7th digit 5, YY 57: 2057
        ("0101588000", 1858),  # 7th digit 8, YY 58: 1858
        ("3112991234", 1999),
    ],
)
def test_valid_cpr_dates(cpr: str, year: int) -> None:
    assert is_valid_cpr(cpr)
    birth = cpr_birth_date(cpr)
    assert birth is not None and birth.year == year


@pytest.mark.parametrize(
    "cpr",
    [
        "3102901234",  # 31 February
        "2902001000",  # 29 February 1900: not a leap year
        "2902014000",  # 29 February 2001
        "0013901234",  # month 13
        "0001901234",  # day 0
        "010190123",  # 9 digits
        "01019012345",  # 11 digits
        "010190-1234",
        "01019O1234",  # letter O
        "".join(chr(0xFF10 + int(d)) for d in "0101901234"),  # full-width digits
        "",
    ],
)
def test_invalid_cpr(cpr: str) -> None:
    assert not is_valid_cpr(cpr)


@pytest.mark.parametrize(
    ("cvr", "valid"),
    [
        ("29189846", True),
        ("29189847", False),
        ("10000009", True),  # 2*1 + 1*9 = 11
        ("10000008", False),
        ("12345674", True),  # 2*1+7*2+6*3+5*4+4*5+3*6+2*7+1*4 = 110
        ("2918984", False),
        ("291898460", False),
        ("2918984a", False),
        ("00000000", False),  # passes mod-11 but no CVR number starts with 0
    ],
)
def test_cvr_modulus_11(cvr: str, valid: bool) -> None:
    assert is_valid_cvr(cvr) is valid


# --- message values --------------------------------------------------------------------------


def test_subject_choice() -> None:
    assert Subject.from_choice("0101901234", None) == CPR
    assert Subject.from_choice(None, "29189846") == CVR
    assert Subject.from_choice(" 0101901234 ", "") == CPR
    with pytest.raises(SubjectChoiceInvalid, match="both"):
        Subject.from_choice("0101901234", "29189846")
    with pytest.raises(SubjectChoiceInvalid, match="neither"):
        Subject.from_choice(None, None)
    with pytest.raises(SubjectChoiceInvalid, match="neither"):
        Subject.from_choice("  ", "")


def test_subject_validation() -> None:
    with pytest.raises(InvalidCpr) as cpr_error:
        Subject("cpr", "3102901234")
    assert "3102901234" not in cpr_error.value.error_text
    with pytest.raises(InvalidCvr):
        Subject("cvr", "29189847")
    with pytest.raises(SubjectChoiceInvalid):
        Subject("cpx", "29189846")  # type: ignore[arg-type]


def test_subject_never_shows_a_full_cpr() -> None:
    assert CPR.masked == "010190****"
    assert CVR.masked == "29189846"
    request = OpdaterBorgerNemSMS(CPR, SlutbrugerStamdata("12345678"))
    assert "0101901234" not in repr(request)
    assert "010190****" in repr(request)
    assert "0101901234" not in repr(TilmeldNemSMS(CPR, True))


# --- paths -----------------------------------------------------------------------------------


def test_boks_paths() -> None:
    assert register_path_boks("SYS-1", CPR) == "/register/SYS-1/boks/0101901234"
    # EP_NS2 writes the company form with a leading colon (SF2250 section 3.2.4.2).
    assert register_path_boks("SYS-1", CVR) == "/register/SYS-1/boks/:29189846"


def test_myndighedstilmelding_paths() -> None:
    assert (
        register_path_myndighedstilmelding("SYS-1", CPR)
        == "/register/SYS-1/boks/0101901234/myndighedstilmelding"
    )
    # EP_NS3 writes the company form without the colon (SF2250 section 3.2.5.2).
    assert (
        register_path_myndighedstilmelding("SYS-1", CVR)
        == "/register/SYS-1/boks/29189846/myndighedstilmelding"
    )


def test_sysid_is_percent_encoded() -> None:
    assert register_path_boks("a/b c", CPR) == "/register/a%2Fb%20c/boks/0101901234"


# --- bodies ----------------------------------------------------------------------------------


def test_stamdata_body_round_trip() -> None:
    data = SlutbrugerStamdata("+4512345678", navn="Åse <&> Øbro", email_adresse="a@b.dk")
    body = stamdata_body(data)
    assert CONTENT_TYPE == "application/xml; charset=utf-8"
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(body)
    assert register_schema().validate(root), register_schema().error_log
    assert root.tag == f"{{{DKAL_NS}}}SlutbrugerStamdata"
    ns = {"d": DKAL_NS}
    assert root.findtext("d:Navn", namespaces=ns) == "Åse <&> Øbro"
    assert root.findtext("d:MobiltelefonNummer", namespaces=ns) == "+4512345678"
    assert root.findtext("d:EmailAdresse", namespaces=ns) == "a@b.dk"


def test_minimal_stamdata_body() -> None:
    root = etree.fromstring(stamdata_body(SlutbrugerStamdata("12345678")))
    assert register_schema().validate(root)
    assert [etree.QName(child).localname for child in root] == ["MobiltelefonNummer"]


@pytest.mark.parametrize("flag", [True, False])
def test_myndighedstilmelding_body(flag: bool) -> None:
    root = etree.fromstring(myndighedstilmelding_body(flag))
    assert register_schema().validate(root)
    assert root.tag == f"{{{DKAL_NS}}}Myndighedstilmelding"
    assert root.findtext(f"{{{DKAL_NS}}}TilmeldingIndikator") == ("true" if flag else "false")


# --- register errors -------------------------------------------------------------------------


def fejl(code: str, text: str = "Ukendt SysID") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><dkal:Fejl xmlns:dkal="{DKAL_NS}">'
        f"<dkal:FejlKode>{code}</dkal:FejlKode><dkal:FejlTekst>{text}</dkal:FejlTekst></dkal:Fejl>"
    ).encode()


def test_register_error_is_read() -> None:
    assert parse_register_error(fejl("2001")) == (2001, "Ukendt SysID")
    assert parse_register_error(fejl(" 1000 ", "  spaced  ")) == (1000, "spaced")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", (None, None)),
        (b"not xml at all", (None, None)),
        (b"<html><body>502 Bad Gateway</body></html>", (None, None)),
        (b"<Fejl><FejlKode>1001</FejlKode></Fejl>", (None, None)),  # no namespace
        (fejl("999"), (None, "Ukendt SysID")),  # below the documented range
        (fejl("10000"), (None, "Ukendt SysID")),
        (fejl("abc"), (None, "Ukendt SysID")),
        (fejl("1001", ""), (1001, None)),
        (b'<!DOCTYPE x [<!ENTITY a "b">]>' + fejl("1001"), (None, None)),
        (fejl("1001") + b"<trailing/>", (None, None)),
        (b"\xff\xfe\x00garbage", (None, None)),
        (fejl("1001", "x" * 100_000), (None, None)),  # too large to be an error document
    ],
)
def test_register_error_garbage(body: bytes, expected: tuple[int | None, str | None]) -> None:
    assert parse_register_error(body) == expected


def test_register_error_text_is_cut() -> None:
    code, text = parse_register_error(fejl("1001", "y" * 2000))
    assert code == 1001
    assert text == "y" * 500

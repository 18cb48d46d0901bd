"""The simulated NemSMS register over real mutual TLS: EP_NS1 (query subscription), EP_NS4
(send SMS) and the ``clock`` and ``sms`` test hooks.

The register's clock is fixed by the hook for every test (11:00 Danish time), so nothing here
depends on when the suite runs; the sending-hour tests move it to each edge of the window.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from lxml import etree

from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import Pki
from serviceplatform.sandbox.register_state import FEJL_NS
from tests.integration.conftest import RegisterHooks

DKAL = "urn:oio:dkal:1.0.0"
ADIR = "urn:oio:adir:dagpenge:2009.07.01"
SYSID = "SMS-AFS-1"
OTHER_SYSID = "SMS-AFS-2"
#: 2026-11-28 11:00 in Denmark (CET): inside the sending hours.
DAYTIME = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
OIO_XSD = (
    Path(__file__).resolve().parents[2].parent
    / "shared/conformance/kombit/sf1600/SF1600_EP_SP1-2/xsd/oio"
)
WINDOW_TEXT = "NemSMS sends only between 08:00 and 22:00"

_numbers = itertools.count(1)


def fresh_cpr() -> str:
    """A CPR number no other test uses (end users live as long as the register)."""
    return f"0103{next(_numbers):06d}"


def fresh_cvr() -> str:
    return f"4{next(_numbers):07d}"


@pytest.fixture(scope="module")
def reg(pki: Pki) -> Iterator[NemSmsRegister]:
    with NemSmsRegister(
        server_cert=pki.nemsms_server_cert,
        server_key=pki.nemsms_server_key,
        client_ca=pki.ca_cert,
        known_sysids={SYSID, OTHER_SYSID},
    ) as running:
        yield running


@pytest.fixture()
def hooks(reg: NemSmsRegister) -> Iterator[RegisterHooks]:
    control = RegisterHooks(reg.control_url)
    control.clear()
    control.subscribe(SYSID)
    control.subscribe(OTHER_SYSID)
    control.set_clock(DAYTIME)
    yield control
    control.clear()
    control.session.close()


@pytest.fixture()
def client(pki: Pki, hooks: RegisterHooks) -> Iterator[requests.Session]:
    """The platform's side of the mutual TLS, as in test_register_nemsms.py."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki.ca_cert)
    session.cert = (str(pki.platform_register_cert), str(pki.platform_register_key))
    yield session
    session.close()


@pytest.fixture(scope="module")
def afsendelse_schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    """The official ``dkal:Afsendelse`` schema.

    ``SlutbrugerIdentitet.xsd`` imports the adir namespace twice (CPR, then CVR) and libxml2
    honours only the first import of a namespace, so an entry schema imports both adir
    documents through one wrapper before it imports ``Afsendelse.xsd``.
    """
    assert (OIO_XSD / "Afsendelse.xsd").is_file(), f"the official schemas are not at {OIO_XSD}"
    directory = tmp_path_factory.mktemp("xsd")
    xs = "http://www.w3.org/2001/XMLSchema"
    (directory / "adir.xsd").write_text(
        f'<schema xmlns="{xs}" targetNamespace="{ADIR}">'
        f'<include schemaLocation="{(OIO_XSD / "CPRnummerIdentifikator.xsd").as_uri()}"/>'
        f'<include schemaLocation="{(OIO_XSD / "CVRnummerIdentifikator.xsd").as_uri()}"/>'
        "</schema>"
    )
    (directory / "entry.xsd").write_text(
        f'<schema xmlns="{xs}" targetNamespace="urn:test:entry">'
        f'<import namespace="{ADIR}" schemaLocation="{(directory / "adir.xsd").as_uri()}"/>'
        f'<import namespace="{DKAL}" schemaLocation="{(OIO_XSD / "Afsendelse.xsd").as_uri()}"/>'
        "</schema>"
    )
    return etree.XMLSchema(etree.parse(str(directory / "entry.xsd")))


# --- helpers --------------------------------------------------------------------------------


def afsendelse(
    message_id: str,
    *,
    cpr: str | None = None,
    cvr: str | None = None,
    text: str = "Husk din tid hos tandlægen i morgen kl. 9",
    title: str = "Påmindelse",
    file_format: str = "TXT",
    content: str | None = None,
    prefixes: tuple[str, str] = ("dkal", "adir"),
) -> bytes:
    """A ``dkal:Afsendelse`` as the platform sends it; ``content`` replaces the base64."""
    dkal, adir = prefixes
    root = etree.Element(f"{{{DKAL}}}Afsendelse", nsmap={dkal: DKAL, adir: ADIR})

    def add(parent: etree._Element, namespace: str, name: str, value: str) -> None:
        etree.SubElement(parent, f"{{{namespace}}}{name}").text = value

    add(root, DKAL, "MeddelelseIdentifikator", message_id)
    modtager = etree.SubElement(root, f"{{{DKAL}}}AfsendelseModtager")
    if cpr is not None:
        add(modtager, ADIR, "CPRnummerIdentifikator", cpr)
    if cvr is not None:
        add(modtager, ADIR, "CVRnummerIdentifikator", cvr)
    add(root, DKAL, "MeddelelseIndholdstypeIdentifikator", "1")
    add(root, DKAL, "MeddelelseTitelTekst", title)
    encoded = base64.b64encode(text.encode()).decode() if content is None else content
    add(root, DKAL, "MeddelelseIndholdData", encoded)
    add(root, DKAL, "FilformatNavn", file_format)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def send(
    client: requests.Session,
    reg: NemSmsRegister,
    message_id: str,
    body: bytes,
    sysid: str = SYSID,
) -> requests.Response:
    return client.put(
        f"{reg.base_url}/register/{sysid}/afsendelse/{message_id}",
        data=body,
        headers={"Content-Type": "application/xml"},
        timeout=5,
    )


def query(
    client: requests.Session, reg: NemSmsRegister, subject: str, sysid: str = SYSID
) -> requests.Response:
    return client.get(
        f"{reg.base_url}/register/{sysid}/boks/{subject}/myndighedstilmelding", timeout=5
    )


def indicator(answer: requests.Response) -> bool:
    assert answer.status_code == 200, answer.text
    root = etree.fromstring(answer.content)
    assert root.tag == f"{{{DKAL}}}Myndighedstilmelding"
    value = root.findtext(f"{{{DKAL}}}TilmeldingIndikator")
    assert value in ("true", "false")
    return value == "true"


def fejl(answer: requests.Response) -> tuple[str, str]:
    root = etree.fromstring(answer.content)
    assert root.tag == f"{{{FEJL_NS}}}Fejl"
    return (
        root.findtext(f"{{{FEJL_NS}}}FejlKode") or "",
        root.findtext(f"{{{FEJL_NS}}}FejlTekst") or "",
    )


def create_end_user(
    client: requests.Session, reg: NemSmsRegister, subject: str, tilmeldt: bool | None = None
) -> None:
    """EP_NS2, then (unless ``tilmeldt`` is None) EP_NS3."""
    base = f"{reg.base_url}/register/{SYSID}/boks/{subject}"
    stamdata = b'<SlutbrugerStamdata xmlns="urn:oio:nemsms:1.0"><Navn>T</Navn></SlutbrugerStamdata>'
    assert client.put(base, data=stamdata, timeout=5).status_code == 201
    if tilmeldt is not None:
        value = "true" if tilmeldt else "false"
        tilmelding = (
            f'<Myndighedstilmelding xmlns="urn:oio:nemsms:1.0"><TilmeldingIndikator>{value}'
            "</TilmeldingIndikator></Myndighedstilmelding>"
        ).encode()
        answer = client.put(f"{base}/myndighedstilmelding", data=tilmelding, timeout=5)
        assert answer.status_code == 200


def subscribed_cpr(hooks: RegisterHooks, sysid: str = SYSID) -> str:
    """A CPR number on the subscription list of ``sysid`` (and of no other SysID)."""
    cpr = fresh_cpr()
    hooks.subscribe(sysid, cpr=[cpr])
    return cpr


# --- EP_NS1 Spoerg_tilmelding_NS -------------------------------------------------------------


def test_query_true_from_this_sysids_subscription_list(reg, client, hooks):
    cpr = fresh_cpr()
    hooks.subscribe(OTHER_SYSID, cpr=[cpr])
    assert indicator(query(client, reg, cpr, OTHER_SYSID)) is True
    # The list of another SysID does not count, and the register knows no such end user.
    other = query(client, reg, cpr, SYSID)
    assert other.status_code == 404
    assert fejl(other)[0] == "3001"


def test_query_true_from_myndighedstilmelding_for_every_sysid(reg, client, hooks):
    cpr = fresh_cpr()
    create_end_user(client, reg, cpr, tilmeldt=True)
    assert indicator(query(client, reg, cpr, SYSID)) is True
    assert indicator(query(client, reg, cpr, OTHER_SYSID)) is True


@pytest.mark.parametrize("tilmeldt", [None, False])
def test_query_false_for_a_known_end_user_without_subscription(reg, client, hooks, tilmeldt):
    cpr = fresh_cpr()
    hooks.subscribe(OTHER_SYSID, cpr=[cpr])
    create_end_user(client, reg, cpr, tilmeldt=tilmeldt)
    assert indicator(query(client, reg, cpr, SYSID)) is False
    assert indicator(query(client, reg, cpr, OTHER_SYSID)) is True


def test_query_unknown_end_user_is_404_3001_without_the_cpr(reg, client, hooks):
    cpr = fresh_cpr()
    answer = query(client, reg, cpr)
    assert answer.status_code == 404
    code, text = fejl(answer)
    assert code == "3001"
    assert cpr not in text


@pytest.mark.parametrize("form", ["{}", ":{}"])
def test_query_cvr_with_and_without_colon(reg, client, hooks, form):
    cvr = fresh_cvr()
    hooks.subscribe(SYSID, cvr=[cvr])
    assert indicator(query(client, reg, form.format(cvr))) is True


def test_query_answer_is_exact_document(reg, client, hooks):
    cpr = subscribed_cpr(hooks)
    answer = query(client, reg, cpr)
    assert answer.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(answer.content)
    assert [child.tag for child in root] == [f"{{{DKAL}}}TilmeldingIndikator"]


def test_myndighedstilmelding_allows_get_and_put(reg, client, hooks):
    url = f"{reg.base_url}/register/{SYSID}/boks/{fresh_cpr()}/myndighedstilmelding"
    answer = client.delete(url, timeout=5)
    assert answer.status_code == 405
    assert fejl(answer)[0] == "4001"
    assert answer.headers["Allow"] == "GET, PUT"


def test_query_unknown_sysid_is_403(reg, client, hooks):
    answer = query(client, reg, subscribed_cpr(hooks), "NOT-KNOWN")
    assert answer.status_code == 403
    assert fejl(answer)[0] == "2001"


# --- EP_NS4 Afsend_SMS_NS: success and idempotency ---------------------------------------------


def test_send_answers_201_and_records_the_sms(reg, client, hooks):
    cpr = subscribed_cpr(hooks)
    answer = send(client, reg, "abc-123", afsendelse("abc-123", cpr=cpr, text="Hej med dig"))
    assert answer.status_code == 201, answer.text
    assert answer.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(answer.content)
    assert root.tag == f"{{{DKAL}}}Afsendelse"
    assert [(etree.QName(e).localname, e.text) for e in root] == [
        ("MeddelelseIdentifikator", "abc-123"),
        ("AfsendelseTilstandNavn", "fremsendt"),
        ("AfsendelseDatoTid", "2026-11-28T10:00:00Z"),
    ]
    assert hooks.sms() == [
        {
            "sysid": SYSID,
            "id": "abc-123",
            "recipient": {"kind": "cpr", "number": cpr},
            "title": "Påmindelse",
            "text": "Hej med dig",
            "sent_at": "2026-11-28T10:00:00Z",
        }
    ]


def test_send_to_cvr_subscribed_by_myndighedstilmelding(reg, client, hooks):
    cvr = fresh_cvr()
    create_end_user(client, reg, cvr, tilmeldt=True)
    answer = send(client, reg, "cvr.1", afsendelse("cvr.1", cvr=cvr))
    assert answer.status_code == 201, answer.text
    assert [s["recipient"] for s in hooks.sms()] == [{"kind": "cvr", "number": cvr}]


def test_request_and_answer_are_valid_against_the_official_schema(
    reg, client, hooks, afsendelse_schema
):
    body = afsendelse("schema_1~x", cpr=subscribed_cpr(hooks))
    assert afsendelse_schema.validate(etree.fromstring(body)), afsendelse_schema.error_log
    answer = send(client, reg, "schema_1~x", body)
    assert answer.status_code == 201
    assert afsendelse_schema.validate(etree.fromstring(answer.content)), afsendelse_schema.error_log


def test_elements_are_read_by_namespace_not_prefix(reg, client, hooks):
    body = afsendelse("ns-1", cpr=subscribed_cpr(hooks), prefixes=("x", "y"))
    assert b"<x:Afsendelse" in body
    assert send(client, reg, "ns-1", body).status_code == 201


def test_repeated_put_is_idempotent(reg, client, hooks):
    body = afsendelse("repeat-1", cpr=subscribed_cpr(hooks))
    first = send(client, reg, "repeat-1", body)
    assert first.status_code == 201
    hooks.set_clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    again = send(client, reg, "repeat-1", body)
    assert again.status_code == 200
    assert again.content == first.content
    assert [s["id"] for s in hooks.sms()] == ["repeat-1"]


def test_repeat_after_sending_hours_still_answers_the_first_acceptance(reg, client, hooks):
    body = afsendelse("late-repeat", cpr=subscribed_cpr(hooks))
    first = send(client, reg, "late-repeat", body)
    assert first.status_code == 201
    hooks.set_clock(datetime(2026, 11, 28, 22, 30, tzinfo=UTC))
    again = send(client, reg, "late-repeat", body)
    assert (again.status_code, again.content) == (200, first.content)
    assert len(hooks.sms()) == 1


@pytest.mark.parametrize("change", ["text", "recipient", "title"])
def test_id_reuse_with_other_content_is_409_3005(reg, client, hooks, change):
    cpr = subscribed_cpr(hooks)
    assert send(client, reg, "reuse-1", afsendelse("reuse-1", cpr=cpr)).status_code == 201
    other = {
        "text": afsendelse("reuse-1", cpr=cpr, text="Noget andet"),
        "recipient": afsendelse("reuse-1", cpr=subscribed_cpr(hooks)),
        "title": afsendelse("reuse-1", cpr=cpr, title="Ny titel"),
    }[change]
    answer = send(client, reg, "reuse-1", other)
    assert answer.status_code == 409
    code, text = fejl(answer)
    assert code == "3005"
    assert cpr not in text
    assert len(hooks.sms()) == 1


def test_same_id_from_another_sysid_is_another_sending(reg, client, hooks):
    cpr = fresh_cpr()
    create_end_user(client, reg, cpr, tilmeldt=True)
    body = afsendelse("shared-id", cpr=cpr)
    assert send(client, reg, "shared-id", body, SYSID).status_code == 201
    assert send(client, reg, "shared-id", body, OTHER_SYSID).status_code == 201
    assert [(s["sysid"], s["id"]) for s in hooks.sms()] == [
        (SYSID, "shared-id"),
        (OTHER_SYSID, "shared-id"),
    ]


# --- EP_NS4: the message ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("a" * 160, True),
        ("a" * 161, False),
        ("æ" * 160, True),  # 320 bytes of UTF-8, 160 characters
        ("æ" * 161, False),
        ("😀" * 160, True),  # 640 bytes, 160 characters
        ("x", True),
        ("", False),
    ],
)
def test_text_length_is_counted_in_characters(reg, client, hooks, text, accepted):
    answer = send(client, reg, "len-1", afsendelse("len-1", cpr=subscribed_cpr(hooks), text=text))
    if accepted:
        assert answer.status_code == 201, answer.text
        assert [s["text"] for s in hooks.sms()] == [text]
    else:
        assert answer.status_code == 400
        assert fejl(answer)[0] == "1008"
        assert hooks.sms() == []


@pytest.mark.parametrize(
    "content",
    [
        "not base64!",
        "aGVq=",  # bad padding
        base64.b64encode(b"\xff\xfe latin").decode(),  # not UTF-8
    ],
)
def test_content_must_be_base64_of_utf8(reg, client, hooks, content):
    body = afsendelse("b64-1", cpr=subscribed_cpr(hooks), content=content)
    answer = send(client, reg, "b64-1", body)
    assert answer.status_code == 400
    assert fejl(answer)[0] == "1008"


def test_base64_may_carry_whitespace(reg, client, hooks):
    text = "Hej fra kommunen, din ansøgning er modtaget og behandles inden for 14 dage."
    encoded = base64.encodebytes(text.encode()).decode()  # a line break every 76 characters
    assert encoded.count("\n") == 2
    body = afsendelse("b64-ws", cpr=subscribed_cpr(hooks), content=f"  {encoded}  ")
    assert send(client, reg, "b64-ws", body).status_code == 201
    assert hooks.sms()[0]["text"] == text


@pytest.mark.parametrize("file_format", ["PDF", "HTML", ""])
def test_only_txt_is_sent(reg, client, hooks, file_format):
    body = afsendelse("fmt-1", cpr=subscribed_cpr(hooks), file_format=file_format)
    answer = send(client, reg, "fmt-1", body)
    assert answer.status_code == 400
    assert fejl(answer)[0] == "1007"
    assert hooks.sms() == []


@pytest.mark.parametrize(
    "message_id",
    ["a" * 31, "a%20b", "a!b", "%C3%A6", "a@b", "a%2Fb"],
)
def test_malformed_id_is_1005(reg, client, hooks, message_id):
    body = afsendelse("ok", cpr=subscribed_cpr(hooks))
    answer = send(client, reg, message_id, body)
    assert answer.status_code == 400
    assert fejl(answer)[0] == "1005"
    assert hooks.sms() == []


def test_thirty_character_id_is_accepted(reg, client, hooks):
    message_id = "A-z0._~" + "9" * 23
    answer = send(client, reg, message_id, afsendelse(message_id, cpr=subscribed_cpr(hooks)))
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<dkal:Afsendelse xmlns:dkal='urn:oio:dkal:1.0.0'>", "1002"),
        (b"<Afsendelse xmlns='urn:other'/>", "1002"),
        (b"<dkal:Fejl xmlns:dkal='urn:oio:dkal:1.0.0'/>", "1002"),
        (afsendelse("other-id", cpr="0101901234"), "1006"),
        (
            afsendelse("id-1", cpr="0101901234").replace(
                b"<dkal:MeddelelseIdentifikator>id-1</dkal:MeddelelseIdentifikator>", b""
            ),
            "1006",
        ),
        (afsendelse("id-1"), "1001"),
        (afsendelse("id-1", cpr="12345"), "1001"),
        (afsendelse("id-1", cvr=":29189846"), "1001"),
        (afsendelse("id-1", cpr="0101901234", cvr="29189846"), "1001"),
        (afsendelse("id-1", cpr="0101901234", file_format="PDF", content="!"), "1007"),
    ],
)
def test_body_errors_in_order(reg, client, hooks, body, code):
    answer = send(client, reg, "id-1", body)
    assert answer.status_code == 400
    found, text = fejl(answer)
    assert found == code
    assert "0101901234" not in text


def test_cpr_in_another_namespace_is_no_recipient(reg, client, hooks):
    body = afsendelse("ns-cpr", cpr=subscribed_cpr(hooks)).replace(ADIR.encode(), b"urn:other")
    answer = send(client, reg, "ns-cpr", body)
    assert answer.status_code == 400
    assert fejl(answer)[0] == "1001"


# --- EP_NS4: sending hours -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "accepted"),
    [
        # Winter (CET, UTC+1).
        ("2026-01-15T06:59:59Z", False),  # 07:59:59
        ("2026-01-15T07:00:00Z", True),  # 08:00:00
        ("2026-01-15T20:59:59Z", True),  # 21:59:59
        ("2026-01-15T21:00:00Z", False),  # 22:00:00
        # Summer (CEST, UTC+2).
        ("2026-07-15T05:59:59Z", False),
        ("2026-07-15T06:00:00Z", True),
        ("2026-07-15T19:59:59Z", True),
        ("2026-07-15T20:00:00Z", False),
        # 2026-03-29: clocks go forward at 02:00 CET, so the whole window is in CEST.
        ("2026-03-29T05:59:59Z", False),
        ("2026-03-29T06:00:00Z", True),
        ("2026-03-29T06:59:59Z", True),  # 08:59:59 CEST; would be 07:59:59 in CET
        ("2026-03-29T19:59:59Z", True),
        ("2026-03-29T20:00:00Z", False),
        # 2026-10-25: clocks go back at 03:00 CEST, so the whole window is in CET.
        ("2026-10-25T06:00:00Z", False),  # 07:00 CET; would be 08:00 in CEST
        ("2026-10-25T06:59:59Z", False),
        ("2026-10-25T07:00:00Z", True),
        ("2026-10-25T20:59:59Z", True),
        ("2026-10-25T21:00:00Z", False),
    ],
)
def test_sending_hours_in_danish_time(reg, client, hooks, utc, accepted):
    moment = datetime.fromisoformat(utc)
    hooks.set_clock(moment)
    body = afsendelse("hours-1", cpr=subscribed_cpr(hooks))
    answer = send(client, reg, "hours-1", body)
    if accepted:
        assert answer.status_code == 201, answer.text
        stamp = etree.fromstring(answer.content).findtext(f"{{{DKAL}}}AfsendelseDatoTid")
        assert stamp == utc
        assert [s["sent_at"] for s in hooks.sms()] == [utc]
    else:
        assert answer.status_code == 400
        assert fejl(answer) == ("1009", WINDOW_TEXT)
        assert hooks.sms() == []


def test_clock_may_be_set_with_any_offset(reg, client, hooks):
    # 07:59:59 in Denmark written in Danish summer time.
    hooks.set_clock(datetime.fromisoformat("2026-07-15T07:59:59+02:00"))
    assert hooks.session.get(f"{reg.control_url}/clock", timeout=5).json() == {
        "now": "2026-07-15T05:59:59Z",
        "fixed": True,
    }
    answer = send(client, reg, "off-1", afsendelse("off-1", cpr=subscribed_cpr(hooks)))
    assert fejl(answer)[0] == "1009"


# --- EP_NS4: recipient ------------------------------------------------------------------------


def test_unknown_recipient_is_404_3001(reg, client, hooks):
    cpr = fresh_cpr()
    hooks.subscribe(OTHER_SYSID, cpr=[cpr])  # another SysID's list does not make it known here
    answer = send(client, reg, "unknown-1", afsendelse("unknown-1", cpr=cpr))
    assert answer.status_code == 404
    code, text = fejl(answer)
    assert code == "3001"
    assert cpr not in text
    assert hooks.sms() == []


@pytest.mark.parametrize("tilmeldt", [None, False])
def test_unsubscribed_recipient_is_409_3004(reg, client, hooks, tilmeldt):
    cpr = fresh_cpr()
    create_end_user(client, reg, cpr, tilmeldt=tilmeldt)
    hooks.subscribe(OTHER_SYSID, cpr=[cpr])
    answer = send(client, reg, "unsub-1", afsendelse("unsub-1", cpr=cpr))
    assert answer.status_code == 409
    code, text = fejl(answer)
    assert code == "3004"
    assert cpr not in text
    assert hooks.sms() == []


def test_unknown_sysid_is_403_2001(reg, client, hooks):
    answer = send(client, reg, "x", afsendelse("x", cpr=subscribed_cpr(hooks)), "NOT-KNOWN")
    assert answer.status_code == 403
    assert fejl(answer)[0] == "2001"


def test_afsendelse_allows_only_put(reg, client, hooks):
    answer = client.get(f"{reg.base_url}/register/{SYSID}/afsendelse/abc", timeout=5)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "PUT"


# --- faults and hooks ------------------------------------------------------------------------


def test_injected_503_sends_nothing(reg, client, hooks):
    body = afsendelse("fault-1", cpr=subscribed_cpr(hooks))
    hooks.fault(503, 1)
    faulted = send(client, reg, "fault-1", body)
    assert faulted.status_code == 503
    assert fejl(faulted)[0] == "9001"
    assert hooks.sms() == []
    # The retry is the first acceptance (201), not a repeat (200).
    assert send(client, reg, "fault-1", body).status_code == 201
    assert len(hooks.sms()) == 1
    assert [r["path"] for r in hooks.requests()] == [f"/register/{SYSID}/afsendelse/fault-1"] * 2


def test_sms_hook_deletes(reg, client, hooks):
    for message_id in ("del-1", "del-2"):
        body = afsendelse(message_id, cpr=subscribed_cpr(hooks))
        assert send(client, reg, message_id, body).status_code == 201
    assert [s["id"] for s in hooks.sms()] == ["del-1", "del-2"]
    answer = hooks.session.delete(f"{reg.control_url}/sms", timeout=5)
    assert answer.json() == {"deleted": 2}
    assert hooks.sms() == []


def test_clock_hook_fixes_and_releases(reg, hooks):
    url = f"{reg.control_url}/clock"
    assert hooks.session.get(url, timeout=5).json() == {
        "now": "2026-11-28T10:00:00Z",
        "fixed": True,
    }
    released = hooks.session.put(url, json={"now": None}, timeout=5)
    assert released.status_code == 200
    assert released.json()["fixed"] is False
    before = datetime.now(UTC)
    current = hooks.session.get(url, timeout=5).json()
    assert current["fixed"] is False
    running = datetime.fromisoformat(current["now"])
    assert abs((running - before).total_seconds()) < 5


@pytest.mark.parametrize(
    "body",
    [{"now": "2026-03-29T06:00:00"}, {"now": "soon"}, {"now": 5}, {}, {"now": None, "x": 1}],
)
def test_clock_hook_refuses_bad_input(reg, hooks, body):
    answer = hooks.session.put(f"{reg.control_url}/clock", json=body, timeout=5)
    assert answer.status_code == 400
    assert "error" in answer.json()
    assert hooks.session.get(f"{reg.control_url}/clock", timeout=5).json()["fixed"] is True


def test_injected_clock_is_the_registers_time(pki):
    injected = datetime(2026, 10, 25, 7, 30, tzinfo=UTC)
    with NemSmsRegister(
        server_cert=pki.nemsms_server_cert,
        server_key=pki.nemsms_server_key,
        client_ca=pki.ca_cert,
        clock=lambda: injected,
    ) as own:
        control = RegisterHooks(own.control_url)
        clock_url = f"{own.control_url}/clock"
        assert control.session.get(clock_url, timeout=5).json() == {
            "now": "2026-10-25T07:30:00Z",
            "fixed": False,
        }
        cpr = fresh_cpr()
        control.subscribe("ANY", cpr=[cpr])
        answer = send_with_cert(pki, own, "inj-1", afsendelse("inj-1", cpr=cpr), "ANY")
        assert answer.status_code == 201
        assert control.sms()[0]["sent_at"] == "2026-10-25T07:30:00Z"
        # A fixed instant wins over the injected clock until it is released again.
        control.set_clock(datetime(2026, 10, 25, 21, 0, tzinfo=UTC))
        late = send_with_cert(pki, own, "inj-2", afsendelse("inj-2", cpr=cpr), "ANY")
        assert fejl(late)[0] == "1009"
        control.set_clock(None)
        again = send_with_cert(pki, own, "inj-3", afsendelse("inj-3", cpr=cpr), "ANY")
        assert again.status_code == 201
        control.session.close()


def send_with_cert(
    pki: Pki, reg: NemSmsRegister, message_id: str, body: bytes, sysid: str
) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        session.verify = str(pki.ca_cert)
        session.cert = (str(pki.platform_register_cert), str(pki.platform_register_key))
        return send(session, reg, message_id, body, sysid)

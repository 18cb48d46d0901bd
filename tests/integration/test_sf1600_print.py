"""SF2250 EP_SP1/EP_SP4 end to end: SOAP 1.1 and 1.2 in, the register over mutual TLS out.

The platform's business clock (the sending-hours rule) is a manual clock, and the register's
clock is set to the same instant through its test hook, so the 08:00-22:00 edges are tested
at fixed instants whatever time CI runs. Tokens, timestamps and certificates keep real time.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import zeep
from lxml import etree
from sqlalchemy import select

from integrations.sf2250.integration import PRINT_ENTITY_ID, PRINT_PATH
from integrations.sf2250.sendings import SendingLedger
from integrations.sf2250.sf1600.service import TNS
from serviceplatform.app import PlatformApp
from serviceplatform.client.request_signer import KombitWsse
from serviceplatform.platform import Platform
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import Pki
from serviceplatform.store.models import audit_records
from tests.integration.conftest import (
    AUTHORITY,
    CaseSystem,
    RegisterHooks,
    make_settings,
    seed,
)
from tests.integration.print_requests import afsend, official_schema, spoerg
from tests.integration.sf2250_requests import fault_schema
from tests.wsgi_serving import LocalWsgiServer

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SPF = "http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/"
#: Authority A's SysIDs (routing_tables/sf1600.csv).
NEMSMS_SYSID = "2250002"
AFSENDER_SYSID = "2250004"
CPR = "0101901234"
#: A citizen no other test of the session creates in the register.
STRANGER = "1507904321"
#: 12:00 in Denmark on a winter day.
NOON = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class PrintPlatform:
    base_url: str
    app: PlatformApp
    clock: ManualClock
    case_system: CaseSystem
    hooks: RegisterHooks

    @property
    def url(self) -> str:
        return self.base_url + PRINT_PATH

    def at(self, now: datetime) -> None:
        """Move the platform's and the register's clocks to ``now``."""
        self.clock.now = now
        self.hooks.set_clock(now)

    def call(
        self,
        body: etree._Element,
        *,
        version: int = 12,
        cvr: str = AUTHORITY,
        edit: Callable[[bytes], bytes] | None = None,
    ) -> requests.Response:
        operation = (
            "afsendBrev" if "AfsendBrev" in etree.QName(body).localname else "spoergTilmelding"
        )
        payload = self.case_system.envelope(
            body,
            self.url,
            token={"cvr": cvr, "audience": PRINT_ENTITY_ID},
            soap_version=version,
        )
        if edit is not None:
            payload = edit(payload)
        session = requests.Session()
        session.trust_env = False
        action = f"{TNS}{operation}"
        if version == 11:
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
        else:
            headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'}
        return session.post(self.url, data=payload, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def printing(
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    register: NemSmsRegister,
    case_system: CaseSystem,
) -> Iterator[PrintPlatform]:
    settings = make_settings(tmp_path_factory.mktemp("print"), pki, register.base_url)
    seed(settings)
    clock = ManualClock(NOON)
    app = PlatformApp(settings, lambda: Platform(settings, business_clock=clock))
    server = LocalWsgiServer(app)
    base_url = server.base_url
    yield PrintPlatform(base_url, app, clock, case_system, RegisterHooks(register.control_url))
    server.close()
    app.close()


@pytest.fixture()
def sms(printing: PrintPlatform, hooks: RegisterHooks) -> Iterator[PrintPlatform]:
    """A clean register at noon with the test citizen subscribed under authority A."""
    hooks.clear_sms()
    hooks.subscribe(NEMSMS_SYSID, cpr=[CPR])
    hooks.subscribe(AFSENDER_SYSID, cpr=[CPR])
    printing.at(NOON)
    yield printing
    hooks.set_clock(None)


def answer(response: requests.Response, version: int = 12) -> etree._Element:
    root = etree.fromstring(response.content)
    body = root.find(f"{{{SOAP11 if version == 11 else SOAP12}}}Body")
    assert body is not None, response.text
    return body[0]


def fault_code(response: requests.Response, version: int = 12) -> str | None:
    child = answer(response, version)
    detail = child.find(".//{*}ServiceplatformFault")
    assert detail is not None, response.text
    assert fault_schema().validate(detail), fault_schema().error_log
    return detail.findtext(f".//{{{SPF}}}ErrorCode")


def new_id() -> str:
    return f"sms-{uuid.uuid4().hex[:12]}"


def outward(hooks: RegisterHooks) -> list[dict[str, Any]]:
    return hooks.requests()


# --- spoergTilmelding (EP_SP1 -> EP_NS1) -----------------------------------------------------


@pytest.mark.parametrize("version", [11, 12])
def test_spoerg_tilmelding_answers_true_for_a_subscribed_citizen(
    sms: PrintPlatform, hooks: RegisterHooks, version: int
) -> None:
    response = sms.call(spoerg(CPR, municipality_cvr=AUTHORITY), version=version)
    assert response.status_code == 200, response.text
    child = answer(response, version)
    assert official_schema().validate(child), official_schema().error_log
    assert child.findtext(f"{{{TNS}}}tilmeldt") == "true"
    [request] = outward(hooks)
    assert request["method"] == "GET"
    assert request["path"] == f"/register/{NEMSMS_SYSID}/boks/{CPR}/myndighedstilmelding"
    assert "serviceplatform-sandbox" in request["client_subject"]


def test_spoerg_tilmelding_for_an_unknown_citizen_is_false_not_an_error(
    sms: PrintPlatform, hooks: RegisterHooks
) -> None:
    response = sms.call(spoerg("1608904323"))
    assert response.status_code == 200, response.text
    assert answer(response).findtext(f"{{{TNS}}}tilmeldt") == "false"
    assert len(outward(hooks)) == 1


def test_spoerg_tilmelding_for_a_company(sms: PrintPlatform, hooks: RegisterHooks) -> None:
    hooks.subscribe(NEMSMS_SYSID, cvr=["29189854"])
    response = sms.call(spoerg(cpr=None, cvr="29189854"), version=11)
    assert answer(response, 11).findtext(f"{{{TNS}}}tilmeldt") == "true"
    assert outward(hooks)[0]["path"].endswith("/boks/29189854/myndighedstilmelding")


# --- afsendBrev (EP_SP4 -> EP_NS4) -----------------------------------------------------------


@pytest.mark.parametrize("version", [11, 12])
def test_afsend_brev_sends_one_sms_with_the_afsender_sysid(
    sms: PrintPlatform, hooks: RegisterHooks, version: int
) -> None:
    sending = new_id()
    response = sms.call(afsend("Hej fra kommunen", afsendelse_id=sending), version=version)
    assert response.status_code == 200, response.text
    child = answer(response, version)
    assert official_schema().validate(child), official_schema().error_log
    assert child.findtext(f"{{{TNS}}}resultat") == "true"
    [request] = outward(hooks)
    assert (request["method"], request["path"]) == (
        "PUT",
        f"/register/{AFSENDER_SYSID}/afsendelse/{sending}",
    )
    [sent] = hooks.sms()
    assert (sent["sysid"], sent["id"], sent["text"]) == (
        AFSENDER_SYSID,
        sending,
        "Hej fra kommunen",
    )
    assert sent["recipient"] == {"kind": "cpr", "number": CPR}


@pytest.mark.parametrize(("length", "code"), [(159, None), (160, None), (161, "SP-501")])
def test_at_most_160_characters(
    sms: PrintPlatform, hooks: RegisterHooks, length: int, code: str | None
) -> None:
    response = sms.call(afsend("å" * length, afsendelse_id=new_id()))
    if code is None:
        assert response.status_code == 200, response.text
        assert [len(s["text"]) for s in hooks.sms()] == [length]
    else:
        assert (response.status_code, fault_code(response)) == (400, code)
        assert outward(hooks) == []


# Danish wall-clock instants (with their offset) on both sides of both edges, on an ordinary
# winter day and on the two days daylight saving time changes.
EDGES = [
    ("2026-01-15T07:59:59+01:00", "SP-503"),
    ("2026-01-15T08:00:00+01:00", None),
    ("2026-01-15T21:59:59+01:00", None),
    ("2026-01-15T22:00:00+01:00", "SP-503"),
    ("2026-03-29T07:59:59+02:00", "SP-503"),
    ("2026-03-29T08:00:00+02:00", None),
    ("2026-03-29T21:59:59+02:00", None),
    ("2026-03-29T22:00:00+02:00", "SP-503"),
    ("2026-10-25T07:59:59+01:00", "SP-503"),
    ("2026-10-25T08:00:00+01:00", None),
    ("2026-10-25T21:59:59+01:00", None),
    ("2026-10-25T22:00:00+01:00", "SP-503"),
]


@pytest.mark.parametrize(("local", "code"), EDGES)
def test_sending_hours_08_to_22_danish_time(
    sms: PrintPlatform, hooks: RegisterHooks, local: str, code: str | None
) -> None:
    sms.at(datetime.fromisoformat(local).astimezone(UTC))
    response = sms.call(afsend(afsendelse_id=new_id()), version=11)
    if code is None:
        assert response.status_code == 200, response.text
        assert len(hooks.sms()) == 1
    else:
        # SOAP 1.1 answers every fault with HTTP 500 (SOAP 1.1 section 6.2).
        assert (response.status_code, fault_code(response, 11)) == (500, code)
        assert outward(hooks) == []


@pytest.mark.parametrize("version", [11, 12])
def test_the_registers_out_of_hours_refusal_is_the_sending_hours_fault(
    sms: PrintPlatform, hooks: RegisterHooks, version: int
) -> None:
    # The platform's clock says 21:59:59, the register's (a second ahead) 22:00:00: the
    # register refuses with 400, FejlKode 1009 (docs/nemsms-register.md, rule 8).
    sms.clock.now = datetime.fromisoformat("2026-01-15T21:59:59+01:00").astimezone(UTC)
    hooks.set_clock(datetime.fromisoformat("2026-01-15T22:00:00+01:00").astimezone(UTC))
    sending = new_id()
    response = sms.call(afsend(afsendelse_id=sending), version=version)
    status = 500 if version == 11 else 400
    assert (response.status_code, fault_code(response, version)) == (status, "SP-503")
    assert "1009" in response.text
    assert [r["method"] for r in outward(hooks)] == ["PUT"]
    assert hooks.sms() == []
    ledger = SendingLedger(sms.app.platform.db)
    state = ledger.get(service="sf1600", authority_cvr=AUTHORITY, key=sending)
    assert state is not None and (state.state, state.error_code) == ("failed", "SP-503")
    # Retryable: the same sending goes out once the window opens.
    sms.at(datetime.fromisoformat("2026-01-16T08:00:00+01:00").astimezone(UTC))
    again = sms.call(afsend(afsendelse_id=sending), version=version)
    assert again.status_code == 200, again.text
    assert [s["id"] for s in hooks.sms()] == [sending]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"kanalvalg": "F"}, "SP-504"),
        ({"kanalvalg": "P"}, "SP-504"),
        ({"prioritet": "M"}, "SP-505"),
        ({"filformat": "PDF"}, "SP-502"),
        ({"cpr": None}, "SP-507"),
        ({"content": b"\xff\xfe"}, "SP-506"),
        ({"cpr": "2902011234"}, "SP-108"),
        ({"cpr": "3213901234"}, "SP-105"),
    ],
)
def test_rules_refuse_before_any_outward_call(
    sms: PrintPlatform, hooks: RegisterHooks, changes: dict[str, Any], code: str
) -> None:
    response = sms.call(afsend(afsendelse_id=new_id(), **changes))
    assert (response.status_code, fault_code(response)) == (400, code)
    assert outward(hooks) == []


def test_a_repeated_sending_id_answers_the_earlier_result_without_sending_again(
    sms: PrintPlatform, hooks: RegisterHooks
) -> None:
    sending = new_id()
    first = sms.call(afsend("Kun én gang", afsendelse_id=sending))
    second = sms.call(afsend("Kun én gang", afsendelse_id=sending), version=11)
    assert answer(first).findtext(f"{{{TNS}}}resultat") == "true"
    assert answer(second, 11).findtext(f"{{{TNS}}}resultat") == "true"
    assert len(outward(hooks)) == 1
    assert len(hooks.sms()) == 1
    other = sms.call(afsend("Noget andet", afsendelse_id=sending))
    assert (other.status_code, fault_code(other)) == (400, "SP-509")
    assert len(outward(hooks)) == 1


def test_a_register_503_is_retried_within_the_sla(sms: PrintPlatform, hooks: RegisterHooks) -> None:
    hooks.fault(503, 1)
    response = sms.call(afsend(afsendelse_id=new_id()))
    assert response.status_code == 200, response.text
    assert [r["method"] for r in outward(hooks)] == ["PUT", "PUT"]
    assert len(hooks.sms()) == 1


def test_a_call_after_a_failed_attempt_sends_again(
    sms: PrintPlatform, hooks: RegisterHooks
) -> None:
    sending = new_id()
    hooks.fault(503, 50)
    failed = sms.call(afsend(afsendelse_id=sending))
    assert (failed.status_code, fault_code(failed)) == (500, "SP-404")
    assert hooks.sms() == []
    hooks.fault(503, 0)
    retried = sms.call(afsend(afsendelse_id=sending))
    assert retried.status_code == 200, retried.text
    assert [s["id"] for s in hooks.sms()] == [sending]
    state = SendingLedger(sms.app.platform.db).get(
        service="sf1600", authority_cvr=AUTHORITY, key=sending
    )
    assert state is not None and (state.state, state.attempts) == ("sent", 2)


def test_the_registers_own_refusal_reaches_the_caller_and_can_be_retried(
    sms: PrintPlatform, hooks: RegisterHooks
) -> None:
    # Only the register knows its subscribers: it refuses an unknown recipient (FejlKode 3001).
    sending = new_id()
    response = sms.call(afsend(afsendelse_id=sending, cpr=STRANGER))
    assert (response.status_code, fault_code(response)) == (400, "SP-406")
    assert "3001" in response.text and STRANGER not in response.text
    assert hooks.sms() == []
    state = SendingLedger(sms.app.platform.db).get(
        service="sf1600", authority_cvr=AUTHORITY, key=sending
    )
    assert state is not None and (state.state, state.error_code) == ("failed", "SP-406")
    hooks.subscribe(AFSENDER_SYSID, cpr=[CPR, STRANGER])
    again = sms.call(afsend(afsendelse_id=sending, cpr=STRANGER))
    assert again.status_code == 200, again.text
    assert [s["recipient"]["number"] for s in hooks.sms()] == [STRANGER]


@pytest.mark.parametrize("body", ["spoerg", "afsend"])
def test_an_authority_context_for_another_authority_is_refused(
    sms: PrintPlatform, hooks: RegisterHooks, body: str
) -> None:
    request = (
        spoerg(CPR, municipality_cvr="29189854")
        if body == "spoerg"
        else afsend(afsendelse_id=new_id(), municipality_cvr="29189854")
    )
    response = sms.call(request)
    assert (response.status_code, fault_code(response)) == (400, "SP-217")
    assert outward(hooks) == []


def test_an_authority_without_a_print_agreement_is_refused(
    sms: PrintPlatform, hooks: RegisterHooks
) -> None:
    response = sms.call(spoerg(CPR), cvr="29189862")
    assert (response.status_code, fault_code(response)) == (400, "SP-301")
    assert outward(hooks) == []


def test_every_call_leaves_an_audit_record_with_its_outcome(
    sms: PrintPlatform, hooks: RegisterHooks
) -> None:
    sending = new_id()
    sms.call(afsend(afsendelse_id=sending))
    sms.call(afsend(afsendelse_id=sending))
    sms.call(afsend("x" * 161, afsendelse_id=new_id()))
    sms.call(spoerg(CPR))
    with sms.app.platform.db.transaction() as connection:
        newest = connection.execute(
            select(audit_records).order_by(audit_records.c.id.desc()).limit(4)
        ).all()
    rows = list(reversed(newest))
    assert [(r.service, r.operation, r.outcome, r.error_code) for r in rows] == [
        ("sf1600", "afsendBrev", "ok", None),
        ("sf1600", "afsendBrev", "ok", None),
        ("sf1600", "afsendBrev", "fault", "SP-501"),
        ("sf1600", "spoergTilmelding", "ok", None),
    ]
    assert rows[0].sysid == AFSENDER_SYSID and rows[0].upstream_status == 201
    assert rows[0].subject == CPR
    assert "nothing sent" in (rows[1].detail or "")
    assert rows[3].sysid == NEMSMS_SYSID and rows[3].detail == "tilmeldt"


# --- a zeep client from the served WSDL -------------------------------------------------------


def test_a_zeep_client_from_the_served_wsdl_works_unchanged(
    sms: PrintPlatform, hooks: RegisterHooks, case_system: CaseSystem
) -> None:
    session = requests.Session()
    session.trust_env = False
    wsse = KombitWsse(
        assertion=case_system.assertion(audience=PRINT_ENTITY_ID),
        holder_key=case_system.holder_key,
        to=sms.url,
    )
    client = zeep.Client(  # type: ignore[no-untyped-call]
        sms.url + "?wsdl",
        transport=zeep.Transport(session=session),  # type: ignore[no-untyped-call]
        wsse=wsse,
    )
    # The contract's service address is rewritten to where the WSDL was fetched from.
    assert client.service._binding_options["address"] == sms.url
    tilmeldt = client.service.spoergTilmelding(
        TilmeldingRequest={"SlutbrugerIdentitet": {"CPRnummerIdentifikator": CPR}}
    )
    assert tilmeldt is True
    # The contract's second port speaks SOAP 1.2 at the same address.
    soap12 = client.bind("Print", "Print12")
    assert type(soap12._binding).__name__ == "Soap12Binding"
    assert (
        soap12.spoergTilmelding(
            TilmeldingRequest={"SlutbrugerIdentitet": {"CPRnummerIdentifikator": "1709904324"}}
        )
        is False
    )
    sending = new_id()
    resultat = client.service.afsendBrev(
        AuthorityContext={"MunicipalityCVR": AUTHORITY},
        BrevSPBody={
            "Kanalvalg": "D",
            "Prioritet": "D",
            "ForsendelseI": {
                "AfsendelseIdentifikator": sending,
                "ForsendelseModtager": {"AfsendelseModtager": {"CPRnummerIdentifikator": CPR}},
                "FilformatNavn": "TXT",
                "MeddelelseIndholdData": b"Sendt med zeep",
                "DokumentParametre": {"TitelTekst": "zeep"},
            },
        },
    )
    assert resultat is True
    assert [s["text"] for s in hooks.sms()] == ["Sendt med zeep"]
    assert (
        base64.b64decode(
            etree.fromstring(hooks.requests()[-1]["body"].encode()).findtext(
                "{urn:oio:dkal:1.0.0}MeddelelseIndholdData"
            )
            or ""
        )
        == b"Sendt med zeep"
    )


# --- refusals in the request's SOAP version --------------------------------------------------

_SOAP11_TEXT = "text/xml; charset=utf-8"
_SOAP12_TEXT = "application/soap+xml; charset=utf-8"


@pytest.mark.parametrize(
    ("payload", "content_type", "version", "code"),
    [
        # Truncated SOAP 1.1 envelope: the Content-Type says SOAP 1.1.
        (f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><x', _SOAP11_TEXT, 11, "SP-101"),
        # Well-formed SOAP 1.1 envelope with an empty Body.
        (f'<s:Envelope xmlns:s="{SOAP11}"><s:Body/></s:Envelope>', _SOAP11_TEXT, 11, "SP-104"),
        # No SOAP Content-Type: the truncated envelope's namespace says SOAP 1.1 ...
        (f'<s:Envelope xmlns:s="{SOAP11}"><s:Bo', "application/octet-stream", 11, "SP-101"),
        # ... and where nothing says a version, the port's oldest (1.1).
        ("not xml at all", "", 11, "SP-101"),
        ("", _SOAP11_TEXT, 11, "SP-101"),
        # A SOAP 1.2 request on the same port still gets SOAP 1.2.
        (f'<s:Envelope xmlns:s="{SOAP12}"><s:Body><x', _SOAP12_TEXT, 12, "SP-101"),
        (f'<s:Envelope xmlns:s="{SOAP12}"><s:Body/></s:Envelope>', _SOAP12_TEXT, 12, "SP-104"),
    ],
)
def test_refusals_on_the_soap11_port_speak_the_requests_version(
    printing: PrintPlatform, payload: str, content_type: str, version: int, code: str
) -> None:
    session = requests.Session()
    session.trust_env = False
    headers = {"Content-Type": content_type} if content_type else {}
    response = session.post(printing.url, data=payload.encode(), headers=headers, timeout=10)
    expected_type = "text/xml" if version == 11 else "application/soap+xml"
    assert response.headers["Content-Type"].startswith(expected_type), response.text
    assert response.status_code == (500 if version == 11 else 400)
    child = answer(response, version)
    assert etree.QName(child).localname == "Fault"
    if version == 11:
        assert (child.findtext("faultcode") or "").endswith("Client")
    assert fault_code(response, version) == code


def test_a_soap12_only_port_answers_an_unreadable_request_in_soap12(
    printing: PrintPlatform,
) -> None:
    """The port's declared versions decide: SOAP 1.2 only, so even a text/xml request
    too broken to read is answered in SOAP 1.2."""
    session = requests.Session()
    session.trust_env = False
    response = session.post(
        printing.base_url + "/service/NemSMS/VedligeholdTilmelding/2",
        data=b"<broken",
        headers={"Content-Type": _SOAP11_TEXT},
        timeout=10,
    )
    assert response.headers["Content-Type"].startswith("application/soap+xml")
    assert fault_code(response, 12) == "SP-101"


# --- mustUnderstand ---------------------------------------------------------------------------


def _extra_header(version: int, **attributes: str) -> Callable[[bytes], bytes]:
    """Adds an unsigned header block ``x:Extra`` with ``attributes`` (names in the
    envelope's namespace) after signing: the signature does not cover it, and need not."""
    soap = SOAP11 if version == 11 else SOAP12

    def edit(payload: bytes) -> bytes:
        root = etree.fromstring(payload)
        header = root.find(f"{{{soap}}}Header")
        assert header is not None
        extra = etree.SubElement(header, "{urn:example:extra}Extra")
        for name, value in attributes.items():
            extra.set(f"{{{soap}}}{name}", value)
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")

    return edit


@pytest.mark.parametrize(
    ("version", "attributes", "refused"),
    [
        (12, {"mustUnderstand": "true"}, True),
        (12, {"mustUnderstand": "1"}, True),
        (12, {"mustUnderstand": "true", "role": f"{SOAP12}/role/ultimateReceiver"}, True),
        (11, {"mustUnderstand": "1"}, True),
        (11, {"mustUnderstand": "1", "actor": "http://schemas.xmlsoap.org/soap/actor/next"}, True),
        (12, {"mustUnderstand": "false"}, False),
        (12, {}, False),
        (12, {"mustUnderstand": "true", "role": f"{SOAP12}/role/none"}, False),
        (11, {"mustUnderstand": "0"}, False),
        (11, {"mustUnderstand": "1", "actor": "urn:example:someone-else"}, False),
    ],
)
def test_an_unknown_header_that_must_be_understood_is_refused(
    sms: PrintPlatform,
    hooks: RegisterHooks,
    version: int,
    attributes: dict[str, str],
    refused: bool,
) -> None:
    hooks.clear()
    response = sms.call(
        spoerg(CPR, municipality_cvr=AUTHORITY),
        version=version,
        edit=_extra_header(version, **attributes),
    )
    if not refused:
        assert response.status_code == 200, response.text
        return
    # SOAP 1.2 part 2 table 23 and SOAP 1.1 section 6.2: a MustUnderstand fault is a 500.
    assert response.status_code == 500, response.text
    fault = answer(response, version)
    if version == 12:
        code = fault.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value")
    else:
        code = fault.findtext("faultcode")
    assert code is not None
    prefix, _, local = code.partition(":")
    assert (fault.nsmap[prefix], local) == (SOAP11 if version == 11 else SOAP12, "MustUnderstand")
    assert fault_code(response, version) == "SP-110"
    assert "urn:example:extra" in response.text
    assert outward(hooks) == []


def test_a_sending_id_reused_for_another_citizen_is_refused_and_sends_nothing(
    sms: PrintPlatform, hooks: RegisterHooks
) -> None:
    other = "0202901234"
    hooks.subscribe(AFSENDER_SYSID, cpr=[CPR, other])
    sending = new_id()
    first = sms.call(afsend("Samme tekst", afsendelse_id=sending))
    assert first.status_code == 200, first.text
    reused = sms.call(afsend("Samme tekst", afsendelse_id=sending, cpr=other))
    assert (reused.status_code, fault_code(reused)) == (400, "SP-509")
    assert other not in reused.text
    assert len(outward(hooks)) == 1
    assert [s["recipient"]["number"] for s in hooks.sms()] == [CPR]

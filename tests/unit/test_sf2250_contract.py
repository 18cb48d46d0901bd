"""The hand-written SF2250 contract: it loads, it says what it should, and the service keeps it.

The last part serves the spyne application on a real loopback socket and calls it with zeep
built from the served ``?wsdl``, as a case system would.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport

from integrations.sf2250 import service
from integrations.sf2250.messages import OpdaterBorgerNemSMS, SlutbrugerStamdata, TilmeldNemSMS
from serviceplatform.errors import NoAgreement
from serviceplatform.soap.contract_docs import ContractDocuments
from serviceplatform.soap.envelope import SOAP12_ENV_NS
from serviceplatform.soap.faults import SPF_NS
from tests.wsgi_serving import LocalWsgiServer

PROJECT = Path(__file__).resolve().parents[2]
CONTRACT = PROJECT / "wsdl" / "sf2250"
CONFORMANCE = PROJECT / ".." / "shared" / "conformance"
OFFICIAL_FAULT_XSD = CONFORMANCE / "kombit" / "sf1600" / "sp" / "ServiceplatformFault_1.xsd"
TNS = service.TNS
DKAL = "urn:oio:dkal:1.0.0"
SD = "urn:oio:sagdok:3.0.0"
PATH = "/service/NemSMS/VedligeholdTilmelding/2"
# A sentence that only the hand-written WSDL carries (spyne's generated one cannot).
HAND_WRITTEN_MARK = "Hand-written contract of the service platform."


@cache
def contract_schema() -> etree.XMLSchema:
    return ContractDocuments(service.WSDL_PATH).build_schema()


@cache
def official_fault_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(OFFICIAL_FAULT_XSD)))


def new_zeep_client(wsdl: str, *plugins: Any) -> Any:
    """zeep without the environment's CA bundle or proxies (``trust_env`` off)."""
    transport = Transport(session=session())  # type: ignore[no-untyped-call]
    return zeep.Client(wsdl, transport=transport, plugins=list(plugins))  # type: ignore[no-untyped-call]


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


# --- sample instances ------------------------------------------------------------------------


def cprcvr(cpr: str | None = "0101901234", cvr: str | None = None) -> str:
    inner = (f"<t:CPR-nr>{cpr}</t:CPR-nr>" if cpr is not None else "") + (
        f"<t:CVR-nr>{cvr}</t:CVR-nr>" if cvr is not None else ""
    )
    return f"<t:CPRCVR>{inner}</t:CPRCVR>"


def stamdata(phone: str = "12345678", name: str | None = "Anne", email: str | None = None) -> str:
    parts = (f"<d:Navn>{name}</d:Navn>" if name is not None else "") + (
        f"<d:MobiltelefonNummer>{phone}</d:MobiltelefonNummer>"
    )
    parts += f"<d:EmailAdresse>{email}</d:EmailAdresse>" if email is not None else ""
    return f"<d:SlutbrugerStamdata>{parts}</d:SlutbrugerStamdata>"


def opdater(subject: str | None = None, data: str | None = None) -> str:
    return (
        f'<t:OpdaterBorgerNemSMSRequest xmlns:t="{TNS}" xmlns:d="{DKAL}">'
        f"{cprcvr() if subject is None else subject}{stamdata() if data is None else data}"
        "</t:OpdaterBorgerNemSMSRequest>"
    )


def tilmeld(subject: str | None = None, flag: str = "true") -> str:
    return (
        f'<t:TilmeldNemSMSRequest xmlns:t="{TNS}" xmlns:d="{DKAL}">'
        f"{cprcvr() if subject is None else subject}"
        f"<d:Myndighedstilmelding><d:TilmeldingIndikator>{flag}</d:TilmeldingIndikator>"
        "</d:Myndighedstilmelding></t:TilmeldNemSMSRequest>"
    )


def response(name: str, status: str = "20", text: str = "") -> str:
    return (
        f'<t:{name} xmlns:t="{TNS}" xmlns:sd="{SD}"><sd:StandardRetur>'
        f"<sd:StatusKode>{status}</sd:StatusKode>{text}</sd:StandardRetur></t:{name}>"
    )


def envelope(body: str) -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP12_ENV_NS}"><s:Body>{body}</s:Body></s:Envelope>'.encode()


VALID = {
    "opdater-cpr": opdater(),
    "opdater-cvr": opdater(subject=cprcvr(cpr=None, cvr="29189846")),
    "opdater-minimal": opdater(data=stamdata(name=None)),
    "opdater-full": opdater(data=stamdata("+4512345678", "Ærø Øster", "a.b@example.dk")),
    "tilmeld-true": tilmeld(),
    "tilmeld-false-cvr": tilmeld(subject=cprcvr(cpr=None, cvr="29189846"), flag="false"),
    "tilmeld-1": tilmeld(flag="1"),
    "response-opdater": response("OpdaterBorgerNemSMSResponse"),
    "response-tilmeld": response(
        "TilmeldNemSMSResponse", text="<sd:FejlbeskedTekst>x</sd:FejlbeskedTekst>"
    ),
}
INVALID = {
    "both-cpr-and-cvr": opdater(subject=cprcvr(cvr="29189846")),
    "neither": opdater(subject=cprcvr(cpr=None)),
    "cpr-9-digits": opdater(subject=cprcvr(cpr="010190123")),
    "cpr-11-digits": tilmeld(subject=cprcvr(cpr="01019012345")),
    "cpr-with-hyphen": opdater(subject=cprcvr(cpr="010190-1234")),
    "cvr-7-digits": tilmeld(subject=cprcvr(cpr=None, cvr="2918984")),
    "phone-short": opdater(data=stamdata("1234567")),
    "phone-spaces": opdater(data=stamdata("12 34 56 78")),
    "phone-other-country": opdater(data=stamdata("+4612345678")),
    "email-without-at": opdater(data=stamdata(email="nobody")),
    "empty-name": opdater(data=stamdata(name="")),
    "no-stamdata": opdater(data="<d:Other/>"),
    "stamdata-wrong-namespace": opdater(data=stamdata().replace("d:", "t:")),
    "flag-not-boolean": tilmeld(flag="ja"),
    "response-no-status": response("TilmeldNemSMSResponse").replace(
        "<sd:StatusKode>20</sd:StatusKode>", ""
    ),
    "response-status-not-integer": response("OpdaterBorgerNemSMSResponse", status="OK"),
}


# --- the contract files ----------------------------------------------------------------------


def test_every_xsd_compiles_alone() -> None:
    found = sorted(CONTRACT.rglob("*.xsd"))
    # Exactly the schemas the served contract names, so an empty or moved directory fails
    # here instead of passing with nothing checked.
    served = {key for key in ContractDocuments(service.WSDL_PATH).keys if key.endswith(".xsd")}
    assert served and {path.relative_to(CONTRACT).as_posix() for path in found} == served
    for path in found:
        etree.XMLSchema(etree.parse(str(path)))  # raises XMLSchemaParseError when broken


def test_contract_schema_declares_the_messages() -> None:
    documents = ContractDocuments(service.WSDL_PATH)
    assert documents.keys == {
        "NemSMS.wsdl",
        "policies.wsdl",
        "VedligeholdTilmeldingMsg.xsd",
        "oio/NemSMSRegister.xsd",
        "oio/SlutbrugerStamdata.xsd",
        "oio/Myndighedstilmelding.xsd",
        "oio/StandardRetur.xsd",
        "sp/ServiceplatformFault_1.xsd",
    }


def test_wsdl_declares_soap12_document_literal_service() -> None:
    root = etree.parse(str(service.WSDL_PATH)).getroot()
    ns = {"w": "http://schemas.xmlsoap.org/wsdl/", "s12": "http://schemas.xmlsoap.org/wsdl/soap12/"}
    assert root.get("targetNamespace") == TNS
    assert root.find("w:service", ns).get("name") == "VedligeholdTilmelding"  # type: ignore[union-attr]
    binding = root.find("w:binding/s12:binding", ns)
    assert binding is not None and binding.get("style") == "document"
    assert {b.get("use") for b in root.iterfind(".//s12:body", ns)} == {"literal"}
    assert root.find(".//s12:address", ns).get("location", "").endswith(PATH)  # type: ignore[union-attr]
    operations = [op.get("name") for op in root.iterfind("w:portType/w:operation", ns)]
    assert operations == ["OpdaterBorgerNemSMS", "TilmeldNemSMS"]
    for op in root.iterfind("w:portType/w:operation", ns):
        assert op.find("w:fault", ns).get("message") == "tns:ServiceplatformFault"  # type: ignore[union-attr]


def test_zeep_reads_the_contract_file() -> None:
    client = new_zeep_client(str(service.WSDL_PATH))
    port = client.wsdl.services["VedligeholdTilmelding"].ports["VedligeholdTilmelding"]
    assert type(port.binding).__name__ == "Soap12Binding"
    assert sorted(port.binding._operations) == ["OpdaterBorgerNemSMS", "TilmeldNemSMS"]
    assert port.binding_options["address"].endswith(PATH)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_instances(name: str) -> None:
    element = etree.fromstring(VALID[name])
    assert contract_schema().validate(element), contract_schema().error_log


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_instances(name: str) -> None:
    assert not contract_schema().validate(etree.fromstring(INVALID[name]))


FAULT_SAMPLES = {
    "one-error": (
        True,
        "<spf:ErrorList><spf:Error><spf:ErrorCode>SP-1</spf:ErrorCode>"
        "<spf:ErrorText>t</spf:ErrorText></spf:Error></spf:ErrorList>",
    ),
    "no-list": (True, ""),
    "empty-list": (False, "<spf:ErrorList/>"),
    "missing-text": (
        False,
        "<spf:ErrorList><spf:Error><spf:ErrorCode>SP-1</spf:ErrorCode></spf:Error></spf:ErrorList>",
    ),
    "swapped": (
        False,
        "<spf:ErrorList><spf:Error><spf:ErrorText>t</spf:ErrorText>"
        "<spf:ErrorCode>SP-1</spf:ErrorCode></spf:Error></spf:ErrorList>",
    ),
}


@pytest.mark.parametrize("name", sorted(FAULT_SAMPLES))
def test_our_fault_schema_agrees_with_the_official_one(name: str) -> None:
    valid, inner = FAULT_SAMPLES[name]
    element = etree.fromstring(
        f'<spf:ServiceplatformFault xmlns:spf="{SPF_NS}">{inner}</spf:ServiceplatformFault>'
    )
    assert official_fault_schema().validate(element) is valid
    assert contract_schema().validate(element) is valid


def test_readme_explains_every_declared_name() -> None:
    readme = (CONTRACT / "README.md").read_text()
    names = set()
    for path in CONTRACT.rglob("*.xsd"):
        names |= set(re.findall(r'<xsd:element name="([^"]+)"', path.read_text()))
    missing = sorted(name for name in names if name not in readme)
    assert missing == []


# --- the service on a real socket ------------------------------------------------------------


@dataclass
class RecordingHandler:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    environs: list[dict[str, Any]] = field(default_factory=list)
    fail_with: BaseException | None = None

    def opdater_borger(self, environ: dict[str, Any], request: OpdaterBorgerNemSMS) -> None:
        self._record("opdater", environ, request)

    def tilmeld_nemsms(self, environ: dict[str, Any], request: TilmeldNemSMS) -> None:
        self._record("tilmeld", environ, request)

    def _record(self, name: str, environ: dict[str, Any], request: Any) -> None:
        self.calls.append((name, request))
        self.environs.append(environ)
        if self.fail_with is not None:
            raise self.fail_with


@dataclass
class Served:
    url: str
    handler: RecordingHandler


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    handler = RecordingHandler()
    with LocalWsgiServer(service.build_wsgi_app(handler, max_body_bytes=16 * 1024)) as server:
        yield Served(server.base_url + PATH, handler)


@pytest.fixture
def handler(served: Served) -> Iterator[RecordingHandler]:
    served.handler.calls.clear()
    served.handler.environs.clear()
    served.handler.fail_with = None
    yield served.handler
    served.handler.fail_with = None


def zeep_client(served: Served) -> tuple[Any, Any]:
    history = HistoryPlugin()  # type: ignore[no-untyped-call]
    return new_zeep_client(f"{served.url}?wsdl", history), history


def post(
    served: Served, body: bytes, content_type: str = "application/soap+xml"
) -> requests.Response:
    return session().post(served.url, data=body, headers={"Content-Type": content_type}, timeout=10)


def fault_code(payload: bytes) -> str | None:
    return etree.fromstring(payload).findtext(f".//{{{SPF_NS}}}ErrorCode")


pytestmark_socket = pytest.mark.integration


@pytestmark_socket
def test_served_wsdl_is_the_hand_written_contract(served: Served) -> None:
    reply = session().get(f"{served.url}?wsdl", timeout=10)
    assert reply.status_code == 200
    assert HAND_WRITTEN_MARK in reply.text
    root = etree.fromstring(reply.content)
    address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    assert address is not None and address.get("location") == served.url
    include = root.find(".//{http://www.w3.org/2001/XMLSchema}include")
    assert include is not None
    assert include.get("schemaLocation") == f"{served.url}?xsd=VedligeholdTilmeldingMsg.xsd"
    policy = session().get(f"{served.url}?wsdl=policies.wsdl", timeout=10)
    assert b"ServiceplatformBindingPolicy" in policy.content


@pytestmark_socket
def test_zeep_calls_both_operations(served: Served, handler: RecordingHandler) -> None:
    client, history = zeep_client(served)
    result = client.service.OpdaterBorgerNemSMS(
        CPRCVR={"CPR-nr": "0101901234"},
        SlutbrugerStamdata={"Navn": "Anne Æbelø", "MobiltelefonNummer": "+4512345678"},
    )
    assert result.StatusKode == 20
    assert result.FejlbeskedTekst is None
    assert contract_schema().validate(_body_child(history.last_received["envelope"]))

    result = client.service.TilmeldNemSMS(
        CPRCVR={"CVR-nr": "29189846"}, Myndighedstilmelding={"TilmeldingIndikator": False}
    )
    assert result.StatusKode == 20
    assert contract_schema().validate(_body_child(history.last_received["envelope"]))

    (first, opdater), (second, tilmeld) = handler.calls
    assert first == "opdater" and isinstance(opdater, OpdaterBorgerNemSMS)
    assert (opdater.subject.kind, opdater.subject.number) == ("cpr", "0101901234")
    assert opdater.stamdata.navn == "Anne Æbelø"
    assert opdater.stamdata.mobiltelefon_nummer == "+4512345678"
    assert opdater.stamdata.email_adresse is None
    assert second == "tilmeld" and isinstance(tilmeld, TilmeldNemSMS)
    assert (tilmeld.subject.kind, tilmeld.subject.number, tilmeld.tilmeld) == (
        "cvr",
        "29189846",
        False,
    )
    assert handler.environs[0]["PATH_INFO"] == PATH
    assert handler.environs[0]["REQUEST_METHOD"] == "POST"


def _body_child(envelope_element: etree._Element) -> etree._Element:
    body = envelope_element.find(f"{{{SOAP12_ENV_NS}}}Body")
    assert body is not None
    return body[0]


@pytestmark_socket
def test_handler_error_is_a_platform_fault(served: Served, handler: RecordingHandler) -> None:
    handler.fail_with = NoAgreement("authority 29189846")
    client, _ = zeep_client(served)
    with pytest.raises(zeep.exceptions.Fault) as info:
        client.service.TilmeldNemSMS(
            CPRCVR={"CPR-nr": "0101901234"}, Myndighedstilmelding={"TilmeldingIndikator": True}
        )
    fault = info.value
    assert fault.code is not None and fault.code.endswith("Sender")
    assert fault.message.startswith("No approved service agreement")
    detail = fault.detail[0]
    assert official_fault_schema().validate(detail), official_fault_schema().error_log
    assert detail.findtext(f".//{{{SPF_NS}}}ErrorCode") == "SP-301"
    raw = post(served, envelope(tilmeld()))
    assert raw.status_code == 400
    assert raw.headers["Content-Type"].startswith("application/soap+xml")


@pytestmark_socket
def test_unexpected_handler_error_hides_its_text(served: Served, handler: RecordingHandler) -> None:
    handler.fail_with = RuntimeError("db password is hunter2")
    reply = post(served, envelope(opdater()))
    assert reply.status_code == 500
    assert fault_code(reply.content) == "SP-900"
    assert b"hunter2" not in reply.content
    assert b"Traceback" not in reply.content


@pytestmark_socket
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (envelope(INVALID["cpr-9-digits"]), "SP-105"),
        (envelope(INVALID["both-cpr-and-cvr"]), "SP-105"),
        (envelope(INVALID["neither"]), "SP-105"),
        (envelope(opdater(subject=cprcvr(cpr="3102901234"))), "SP-108"),
        (envelope(tilmeld(subject=cprcvr(cpr=None, cvr="29189847"))), "SP-109"),
        (envelope(f'<t:SletBorger xmlns:t="{TNS}"/>'), "SP-106"),
        (b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>", "SP-101"),
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            + envelope(opdater(data=stamdata(name="&b;"))),
            "SP-102",
        ),
        (envelope(opdater(data=stamdata(name="x" * 20_000))), "SP-103"),
        (
            envelope(opdater()).replace(
                SOAP12_ENV_NS.encode(), b"http://schemas.xmlsoap.org/soap/envelope/"
            ),
            "SP-104",
        ),
    ],
    ids=[
        "schema",
        "choice-both",
        "choice-neither",
        "cpr-date",
        "cvr-mod11",
        "unknown-op",
        "malformed",
        "billion-laughs",
        "oversize",
        "soap11",
    ],
)
def test_bad_requests_get_platform_faults(
    served: Served, handler: RecordingHandler, body: bytes, code: str
) -> None:
    reply = post(served, body)
    assert reply.status_code == 400
    assert fault_code(reply.content) == code
    detail = etree.fromstring(reply.content).find(f".//{{{SOAP12_ENV_NS}}}Detail")
    assert detail is not None
    assert official_fault_schema().validate(detail[0])
    assert handler.calls == []  # nothing reached the platform


@pytestmark_socket
def test_invalid_cpr_fault_does_not_echo_the_number(served: Served) -> None:
    reply = post(served, envelope(opdater(subject=cprcvr(cpr="3102901234"))))
    assert b"3102901234" not in reply.content


def test_operations_table_matches_the_contract() -> None:
    assert service.WSDL_PATH == CONTRACT / "NemSMS.wsdl"
    assert service.OPERATIONS == {
        "OpdaterBorgerNemSMSRequest": "OpdaterBorgerNemSMS",
        "TilmeldNemSMSRequest": "TilmeldNemSMS",
    }


# --- the request read from the element, the canned answers ----------------------------------


def _wsgi_post(app: Any, body: bytes) -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/soap+xml; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
    }
    started: list[str] = []
    payload = b"".join(app(environ, lambda status, headers, exc_info=None: started.append(status)))
    return started[0], payload


#: The answers as spyne's response models wrote them before the canned answers (same bytes).
EXPECTED_ANSWER = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    f'<soap12env:Envelope xmlns:soap12env="{SOAP12_ENV_NS}" xmlns:tns="{TNS}"><soap12env:Body>'
    f'<tns:{{name}}><ns2:StandardRetur xmlns:ns2="{SD}"><ns2:StatusKode>20</ns2:StatusKode>'
    "</ns2:StandardRetur></tns:{name}></soap12env:Body></soap12env:Envelope>"
)


@pytest.mark.parametrize(
    ("body", "name"),
    [(opdater(), "OpdaterBorgerNemSMSResponse"), (tilmeld(), "TilmeldNemSMSResponse")],
    ids=["opdater", "tilmeld"],
)
def test_answers_are_exact_bytes_inside_the_contract(body: str, name: str) -> None:
    app = service.build_wsgi_app(RecordingHandler())
    for _ in range(2):  # the first call renders the answer, the second reuses it
        status, payload = _wsgi_post(app, envelope(body))
        assert status == "200 OK"
        assert payload == EXPECTED_ANSWER.format(name=name).encode()
        answer = _body_child(etree.fromstring(payload))
        assert contract_schema().validate(answer), contract_schema().error_log


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("true", True),
        ("1", True),
        (" true\n", True),
        ("false", False),
        ("0", False),
        (" 0 ", False),
    ],
)
def test_tilmelding_indikator_reads_as_xsd_boolean(flag: str, expected: bool) -> None:
    handler = RecordingHandler()
    status, _ = _wsgi_post(service.build_wsgi_app(handler), envelope(tilmeld(flag=flag)))
    assert status == "200 OK"
    ((_, request),) = handler.calls
    # spyne's Boolean read " true\n" (valid xsd:boolean) as False; whitespace is collapsed now.
    assert request.tilmeld is expected


def test_values_are_read_from_their_own_elements() -> None:
    handler = RecordingHandler()
    subject = cprcvr(cpr=None, cvr="29189846").replace("<t:CVR-nr>", "<!-- c --><t:CVR-nr>")
    data = stamdata("+4512345678", "A &amp; B<!-- x --> C", "a@b.dk")
    status, _ = _wsgi_post(service.build_wsgi_app(handler), envelope(opdater(subject, data)))
    assert status == "200 OK"
    ((_, request),) = handler.calls
    assert (request.subject.kind, request.subject.number) == ("cvr", "29189846")
    assert request.stamdata == SlutbrugerStamdata(
        mobiltelefon_nummer="+4512345678", navn="A & B C", email_adresse="a@b.dk"
    )
    handler.calls.clear()
    _wsgi_post(service.build_wsgi_app(handler), envelope(opdater(data=stamdata(name=None))))
    ((_, minimal),) = handler.calls
    assert minimal.stamdata == SlutbrugerStamdata(mobiltelefon_nummer="12345678")


@pytest.mark.parametrize(
    "name",
    ["no-stamdata", "stamdata-wrong-namespace", "neither", "both-cpr-and-cvr", "flag-not-boolean"],
)
def test_requests_of_the_wrong_shape_get_sp105_before_the_method(name: str) -> None:
    handler = RecordingHandler()
    status, payload = _wsgi_post(service.build_wsgi_app(handler), envelope(INVALID[name]))
    assert (status, fault_code(payload)) == ("400 Bad Request", "SP-105")
    assert handler.calls == []

"""The hand-written OOTS Dokumentation contract: it loads, says what it should, the service keeps
it.

The last part serves the spyne application (with a recording handler, no platform) on a
loopback socket and calls every operation with zeep built from the served ``?wsdl``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
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

from integrations.oots import service
from integrations.oots.edm import (
    Agent,
    Evidence,
    EvidenceMetadata,
    LocalizedText,
    PreviewRequired,
)
from integrations.oots.errors import OotsEvidenceNotFound
from integrations.oots.messages import (
    AnmodBevis,
    AnmodBevisEfterForhaandsvisning,
    AttributeNeeded,
    ClassificationAnswer,
    ClassificationQuestion,
    CompanySubject,
    EvidenceTypeFound,
    Failure,
    FindBevistyper,
    FindUdbydere,
    HentStatus,
    PersonSubject,
    ProviderFound,
    ProvidersAnswer,
    RequestView,
    RequirementFound,
    Status,
    Text,
)
from serviceplatform.soap.contract_docs import ContractDocuments
from serviceplatform.soap.envelope import SOAP12_ENV_NS
from serviceplatform.soap.faults import SPF_NS
from tests.wsgi_serving import LocalWsgiServer

CONTRACT = Path(__file__).resolve().parents[2] / "wsdl" / "oots"
OFFICIAL_FAULT_XSD = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "conformance"
    / "kombit"
    / "sf1600"
    / "sp"
    / "ServiceplatformFault_1.xsd"
)
TNS = service.TNS
PATH = "/service/OOTS/Dokumentation/1"
REQUEST_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
OPERATIONS = [
    "FindBevistyper",
    "FindUdbydere",
    "AnmodBevis",
    "AnmodBevisEfterForhaandsvisning",
    "HentStatus",
]


@cache
def contract_schema() -> etree.XMLSchema:
    return ContractDocuments(service.WSDL_PATH).build_schema()


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


PERSON = (
    "<o:Person><o:Fornavn>Aino</o:Fornavn><o:Efternavn>Virtanen</o:Efternavn>"
    "<o:Foedselsdato>1990-05-17</o:Foedselsdato></o:Person>"
)


def anmod(subject: str = PERSON, extra: str = "", country: str = "FI") -> str:
    return (
        f'<o:AnmodBevisRequest xmlns:o="{TNS}">{subject}<o:ProcedureKode>T3</o:ProcedureKode>'
        "<o:KravIdentifikator>https://sr.example/req/1</o:KravIdentifikator>"
        "<o:BevistypeKlassifikation>https://sr.example/et/1</o:BevistypeKlassifikation>"
        f"<o:LandeKode>{country}</o:LandeKode><o:UdbyderIdentifikator>P1</o:UdbyderIdentifikator>"
        f"{extra}<o:EksplicitAnmodning>true</o:EksplicitAnmodning>"
        "<o:ForhaandsvisningMulig>false</o:ForhaandsvisningMulig></o:AnmodBevisRequest>"
    )


def svar(name: str, inner: str, status: str = "Afventer") -> str:
    return (
        f'<o:{name} xmlns:o="{TNS}"><o:AnmodningId>{REQUEST_ID}</o:AnmodningId>'
        f"<o:Status>{status}</o:Status><o:UdbyderIdentifikator>P1</o:UdbyderIdentifikator>"
        f"<o:EDMVersion>oots-edm:v2.0</o:EDMVersion>{inner}</o:{name}>"
    )


VALID = {
    "find-types": f'<o:FindBevistyperRequest xmlns:o="{TNS}"><o:ProcedureKode>T3</o:ProcedureKode>'
    "</o:FindBevistyperRequest>",
    "find-providers-attribute": f'<o:FindUdbydereRequest xmlns:o="{TNS}">'
    "<o:BevistypeKlassifikation>x</o:BevistypeKlassifikation><o:LandeKode>FI</o:LandeKode>"
    "<o:YderligereAttribut><o:KontekstIdentifikator>c</o:KontekstIdentifikator>"
    "<o:Niveau>NUTS2</o:Niveau><o:Vaerdi>FI1B</o:Vaerdi></o:YderligereAttribut></o:FindUdbydereRequest>",
    "anmod-person": anmod(),
    "anmod-company": anmod("<o:Virksomhed><o:Navn>Oy Ab</o:Navn></o:Virksomhed>"),
    "anmod-format": anmod(extra="<o:Format>application/pdf</o:Format>"),
    "second": f'<o:AnmodBevisEfterForhaandsvisningRequest xmlns:o="{TNS}">'
    f"<o:AnmodningId>{REQUEST_ID}</o:AnmodningId><o:ReturAdresse>https://portal.dk/r"
    "</o:ReturAdresse></o:AnmodBevisEfterForhaandsvisningRequest>",
    "status": f'<o:HentStatusRequest xmlns:o="{TNS}"><o:AnmodningId>{REQUEST_ID}'
    "</o:AnmodningId></o:HentStatusRequest>",
    "answer-pending": svar("HentStatusResponse", ""),
    "answer-error": svar(
        "AnmodBevisResponse",
        "<o:Fejl><o:Fejlkode>SP-704</o:Fejlkode><o:EDMFejlkode>EDM:ERR:0004</o:EDMFejlkode>"
        "<o:Tekst>t</o:Tekst></o:Fejl>",
        "Fejl",
    ),
}
INVALID = {
    "person-and-company": anmod(PERSON + "<o:Virksomhed><o:Navn>x</o:Navn></o:Virksomhed>"),
    "no-subject": anmod(""),
    "country-lowercase": anmod(country="fi"),
    "country-three-letters": anmod(country="FIN"),
    "birth-date-not-a-date": anmod(PERSON.replace("1990-05-17", "17.05.1990")),
    "eidas-id-short": anmod(
        PERSON.replace(
            "</o:Foedselsdato>",
            "</o:Foedselsdato><o:EidasIdentifikator>FI/DK/123</o:EidasIdentifikator>",
        )
    ),
    "request-id-not-uuid": VALID["status"].replace(REQUEST_ID, "42"),
    "return-address-http": VALID["second"].replace("https://", "http://"),
    "procedure-lowercase": VALID["find-types"].replace("T3", "t3"),
    "answer-unknown-status": svar("HentStatusResponse", "", "Done"),
    "answer-media-type": svar(
        "HentStatusResponse",
        "<o:Bevis><o:Dokument>AA==</o:Dokument><o:MedieType>text/plain</o:MedieType></o:Bevis>",
        "BevisModtaget",
    ),
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


def test_contract_documents() -> None:
    assert ContractDocuments(service.WSDL_PATH).keys == {
        "Dokumentation.wsdl",
        "DokumentationMsg.xsd",
        "policies.wsdl",
        "sp/ServiceplatformFault_1.xsd",
    }


def test_wsdl_declares_soap12_document_literal_service() -> None:
    root = etree.parse(str(service.WSDL_PATH)).getroot()
    ns = {"w": "http://schemas.xmlsoap.org/wsdl/", "s12": "http://schemas.xmlsoap.org/wsdl/soap12/"}
    assert root.get("targetNamespace") == TNS
    binding = root.find("w:binding/s12:binding", ns)
    assert binding is not None and binding.get("style") == "document"
    assert {b.get("use") for b in root.iterfind(".//s12:body", ns)} == {"literal"}
    operations = [op.get("name") for op in root.iterfind("w:portType/w:operation", ns)]
    assert operations == OPERATIONS
    assert sorted(service.OPERATIONS.values()) == sorted(OPERATIONS)
    for op in root.iterfind("w:portType/w:operation", ns):
        fault = op.find("w:fault", ns)
        assert fault is not None and fault.get("message") == "tns:ServiceplatformFault"


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_instances(name: str) -> None:
    assert contract_schema().validate(etree.fromstring(VALID[name])), contract_schema().error_log


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_instances(name: str) -> None:
    assert not contract_schema().validate(etree.fromstring(INVALID[name]))


def test_readme_explains_every_declared_name() -> None:
    readme = (CONTRACT / "README.md").read_text()
    names: set[str] = set()
    for path in CONTRACT.rglob("*.xsd"):
        names |= set(re.findall(r'<xsd:element name="([^"]+)"', path.read_text()))
    assert sorted(name for name in names if f"`{name}`" not in readme) == []


def _sequence(type_name: str) -> list[str]:
    xsd = "{http://www.w3.org/2001/XMLSchema}"
    root = etree.parse(str(CONTRACT / "DokumentationMsg.xsd")).getroot()
    for complex_type in root.iter(f"{xsd}complexType"):
        if complex_type.get("name") == type_name:
            return [e.get("name") or "" for e in complex_type.iter(f"{xsd}element")]
    raise AssertionError(f"{type_name} not in the contract")


MODELS = [
    value
    for name, value in vars(service).items()
    if name.endswith("Type") and isinstance(value, type) and hasattr(value, "_type_info")
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_spyne_models_mirror_the_contract(model: Any) -> None:
    assert list(model._type_info) == _sequence(model.__name__)


def test_every_contract_type_has_a_model() -> None:
    xsd = "{http://www.w3.org/2001/XMLSchema}"
    root = etree.parse(str(CONTRACT / "DokumentationMsg.xsd")).getroot()
    declared = {t.get("name") for t in root.iter(f"{xsd}complexType")}
    assert declared == {m.__name__ for m in MODELS}


# --- the service on a real socket ------------------------------------------------------------

EVIDENCE = Evidence(
    content=b"%PDF-1.4 evidence",
    mime_type="application/pdf",
    content_id="e1",
    filename="degree.pdf",
    metadata=EvidenceMetadata(
        identifier="ev-1",
        evidence_type_classification="https://sr.example/et/1",
        evidence_type_titles=(LocalizedText("Degree"), LocalizedText("Tutkinto", "fi")),
        issuing_authority=Agent("P1", "urn:eas:0212", (LocalizedText("University"),)),
        issuing_date=date(2024, 6, 1),
    ),
)


@dataclass
class RecordingHandler:
    calls: list[Any] = field(default_factory=list)
    view: RequestView = field(
        default_factory=lambda: RequestView(REQUEST_ID, Status.PENDING, "P1", "oots-edm:v2.0")
    )
    fail_with: BaseException | None = None

    def _record(self, request: Any) -> None:
        self.calls.append(request)
        if self.fail_with is not None:
            raise self.fail_with

    def find_bevistyper(
        self, environ: dict[str, Any], request: FindBevistyper
    ) -> tuple[RequirementFound, ...]:
        self._record(request)
        return (
            RequirementFound(
                "https://sr.example/req/1",
                (Text("EN", "Proof"), Text("DA", "Bevis")),
                (EvidenceTypeFound("https://sr.example/et/1", "FI", (Text("EN", "Degree"),)),),
            ),
        )

    def find_udbydere(self, environ: dict[str, Any], request: FindUdbydere) -> ProvidersAnswer:
        self._record(request)
        if request.classification == "by-level" and not request.classifications:
            question = ClassificationQuestion(
                "https://sr.example/concept/level",
                "Code",
                "Level of the degree",
                (Text("EN", "Which level is the degree?"),),
                ("BACHELOR", "MASTER"),
            )
            return ProvidersAnswer(attribute_needed=AttributeNeeded("", "", (), (question,)))
        if request.attribute is None and not request.classifications:
            return ProvidersAnswer(
                attribute_needed=AttributeNeeded("ctx-1", "NUTS2", (Text("EN", "Place of birth"),))
            )
        return ProvidersAnswer(
            providers=(
                ProviderFound(
                    "P1", "urn:eas:0212", "One", "FI", "oots-edm:v2.0", ("application/pdf",)
                ),
                ProviderFound("P2", "urn:eas:0212", "Two", "FI", None),
            )
        )

    def anmod_bevis(self, environ: dict[str, Any], request: AnmodBevis) -> RequestView:
        self._record(request)
        return self.view

    def anmod_efter_forhaandsvisning(
        self, environ: dict[str, Any], request: AnmodBevisEfterForhaandsvisning
    ) -> RequestView:
        self._record(request)
        return self.view

    def hent_status(self, environ: dict[str, Any], request: HentStatus) -> RequestView:
        self._record(request)
        return self.view


@dataclass
class Served:
    url: str
    handler: RecordingHandler


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    handler = RecordingHandler()
    with LocalWsgiServer(service.build_wsgi_app(handler)) as server:
        yield Served(server.base_url + PATH, handler)


@pytest.fixture
def handler(served: Served) -> Iterator[RecordingHandler]:
    served.handler.calls.clear()
    served.handler.fail_with = None
    served.handler.view = RequestView(REQUEST_ID, Status.PENDING, "P1", "oots-edm:v2.0")
    yield served.handler


def zeep_client(served: Served) -> tuple[Any, HistoryPlugin]:
    history = HistoryPlugin()  # type: ignore[no-untyped-call]
    client = zeep.Client(  # type: ignore[no-untyped-call]
        f"{served.url}?wsdl",
        transport=Transport(session=session()),  # type: ignore[no-untyped-call]
        plugins=[history],
    )
    return client, history


def last_answer_is_valid(history: HistoryPlugin) -> None:
    received = history.last_received
    assert received is not None
    envelope = received["envelope"]
    body = envelope.find(f"{{{SOAP12_ENV_NS}}}Body")
    assert body is not None
    assert contract_schema().validate(body[0]), contract_schema().error_log


@pytest.mark.integration
def test_served_wsdl_is_the_hand_written_contract(served: Served) -> None:
    reply = session().get(f"{served.url}?wsdl", timeout=10)
    assert reply.status_code == 200
    assert "Hand-written contract of the service" in reply.text
    root = etree.fromstring(reply.content)
    address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    assert address is not None and address.get("location") == served.url


@pytest.mark.integration
def test_zeep_finds_types_and_providers(served: Served, handler: RecordingHandler) -> None:
    client, history = zeep_client(served)
    found = client.service.FindBevistyper(ProcedureKode="T3", LandeKode="FI")
    last_answer_is_valid(history)
    assert found[0].Identifikator == "https://sr.example/req/1"
    assert [n.Sprog for n in found[0].Navn] == ["EN", "DA"]
    assert found[0].Bevistype[0].LandeKode == "FI"
    needed = client.service.FindUdbydere(BevistypeKlassifikation="x", LandeKode="FI")
    last_answer_is_valid(history)
    assert needed.Udbyder == [] and needed.AttributKraevet.Niveau == "NUTS2"
    given = client.service.FindUdbydere(
        BevistypeKlassifikation="x",
        LandeKode="FI",
        YderligereAttribut={"KontekstIdentifikator": "ctx-1", "Niveau": "NUTS2", "Vaerdi": "FI1B"},
    )
    last_answer_is_valid(history)
    assert [(p.Identifikator, p.EDMVersion) for p in given.Udbyder] == [
        ("P1", "oots-edm:v2.0"),
        ("P2", None),
    ]
    assert handler.calls == [
        FindBevistyper("T3", None, "FI"),
        FindUdbydere("x", "FI"),
        FindUdbydere("x", "FI", handler.calls[2].attribute),
    ]
    assert handler.calls[2].attribute.value == "FI1B"


@pytest.mark.integration
def test_zeep_answers_the_dsds_classification_questions(
    served: Served, handler: RecordingHandler
) -> None:
    client, history = zeep_client(served)
    asked = client.service.FindUdbydere(BevistypeKlassifikation="by-level", LandeKode="SE")
    last_answer_is_valid(history)
    question = asked.AttributKraevet.Klassifikation[0]
    assert asked.AttributKraevet.KontekstIdentifikator is None  # no jurisdiction question
    assert (question.Identifikator, question.MuligVaerdi) == (
        "https://sr.example/concept/level",
        ["BACHELOR", "MASTER"],
    )
    assert question.Beskrivelse[0].Tekst == "Which level is the degree?"
    answered = client.service.FindUdbydere(
        BevistypeKlassifikation="by-level",
        LandeKode="SE",
        KlassifikationSvar=[{"Identifikator": question.Identifikator, "Vaerdi": "MASTER"}],
    )
    last_answer_is_valid(history)
    assert [p.Identifikator for p in answered.Udbyder] == ["P1", "P2"]
    assert handler.calls[-1].classifications == (
        ClassificationAnswer("https://sr.example/concept/level", "MASTER"),
    )


@pytest.mark.integration
def test_zeep_requests_evidence_in_every_outcome(served: Served, handler: RecordingHandler) -> None:
    client, history = zeep_client(served)
    pending = client.service.AnmodBevis(
        Virksomhed={"Navn": "Oy Ab", "EidasIdentifikator": "FI/DK/123456789"},
        ProcedureKode="T3",
        KravIdentifikator="r",
        BevistypeKlassifikation="c",
        LandeKode="FI",
        UdbyderIdentifikator="P1",
        EksplicitAnmodning=True,
        ForhaandsvisningMulig=False,
    )
    last_answer_is_valid(history)
    assert (pending.AnmodningId, pending.Status) == (REQUEST_ID, "Afventer")
    request = handler.calls[-1]
    assert request.subject == CompanySubject("Oy Ab", "FI/DK/123456789")
    assert (request.explicit_request, request.preview_possible) == (True, False)

    handler.view = RequestView(
        REQUEST_ID,
        Status.PREVIEW_REQUIRED,
        "P1",
        "oots-edm:v1.2",
        preview=PreviewRequired("https://preview.fi/x", "POST", (LocalizedText("Look", "en"),)),
    )
    preview = client.service.AnmodBevis(
        Person={"Fornavn": "Aino", "Efternavn": "Virtanen", "Foedselsdato": date(1990, 5, 17)},
        ProcedureKode="T3",
        KravIdentifikator="r",
        BevistypeKlassifikation="c",
        LandeKode="FI",
        UdbyderIdentifikator="P1",
        Format="application/pdf",
        EksplicitAnmodning=True,
        ForhaandsvisningMulig=True,
    )
    last_answer_is_valid(history)
    assert preview.Forhaandsvisning.Placering == "https://preview.fi/x"
    assert preview.Forhaandsvisning.Metode == "POST"
    assert handler.calls[-1].subject == PersonSubject("Aino", "Virtanen", date(1990, 5, 17))

    handler.view = RequestView(
        REQUEST_ID, Status.EVIDENCE, "P1", "oots-edm:v2.0", evidence=EVIDENCE
    )
    evidence = client.service.AnmodBevisEfterForhaandsvisning(
        AnmodningId=REQUEST_ID, ReturAdresse="https://portal.dk/retur"
    )
    last_answer_is_valid(history)
    assert evidence.Bevis.Dokument == EVIDENCE.content
    assert evidence.Bevis.MedieType == "application/pdf"
    assert evidence.Bevis.UdstedendeMyndighed.Navn == "University"
    assert evidence.Bevis.Udstedelsesdato == date(2024, 6, 1)
    assert [t.Sprog for t in evidence.Bevis.BevistypeTitel] == ["EN", "FI"]
    assert handler.calls[-1] == AnmodBevisEfterForhaandsvisning(
        REQUEST_ID, "https://portal.dk/retur"
    )

    handler.view = RequestView(
        REQUEST_ID,
        Status.FAILED,
        "P1",
        "oots-edm:v2.0",
        failure=Failure("SP-704", "not found", "EDM:ERR:0004"),
    )
    failed = client.service.HentStatus(AnmodningId=REQUEST_ID)
    last_answer_is_valid(history)
    assert (failed.Fejl.Fejlkode, failed.Fejl.EDMFejlkode) == ("SP-704", "EDM:ERR:0004")
    assert handler.calls[-1] == HentStatus(REQUEST_ID)


@pytest.mark.integration
def test_handler_error_is_a_platform_fault(served: Served, handler: RecordingHandler) -> None:
    handler.fail_with = OotsEvidenceNotFound("request x: no such degree")
    client, _ = zeep_client(served)
    with pytest.raises(zeep.exceptions.Fault) as info:
        client.service.HentStatus(AnmodningId=REQUEST_ID)
    detail = info.value.detail[0]
    official = etree.XMLSchema(etree.parse(str(OFFICIAL_FAULT_XSD)))
    assert official.validate(detail), official.error_log
    assert detail.findtext(f".//{{{SPF_NS}}}ErrorCode") == "SP-704"
    assert "no such degree" in info.value.message


@pytest.mark.integration
def test_schema_violation_never_reaches_the_handler(
    served: Served, handler: RecordingHandler
) -> None:
    body = INVALID["person-and-company"]
    envelope = f'<s:Envelope xmlns:s="{SOAP12_ENV_NS}"><s:Body>{body}</s:Body></s:Envelope>'
    reply = session().post(
        served.url,
        data=envelope.encode(),
        headers={"Content-Type": "application/soap+xml"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert etree.fromstring(reply.content).findtext(f".//{{{SPF_NS}}}ErrorCode") == "SP-105"
    assert handler.calls == []

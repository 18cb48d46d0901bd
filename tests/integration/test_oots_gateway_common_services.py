"""The simulated common services (Evidence Broker, Data Service Directory) over HTTP.

``GET <base>/rest/search?queryId=...`` with ``Accept: application/x-ebrs+xml``: HTTP 200 even on
errors, the outcome is ``QueryResponse/@status``. The answers are read here by namespace URI,
the way a client written against the acceptance-environment captures
(``oots-edm-2.0/common_services/``) reads them, and compared with those captures' shape.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import requests
from lxml import etree

from integrations.oots.edm import choose_version
from serviceplatform.sandbox.oots_common_services import (
    QUERY_DATA_SERVICES,
    QUERY_EVIDENCE_TYPES,
    QUERY_REQUIREMENTS,
)
from serviceplatform.sandbox.oots_gateway import SimulatedOotsGateway
from serviceplatform.sandbox.oots_network import (
    ET_FI_BIRTH,
    ET_FI_DEGREE,
    ET_SE_DEGREE,
    REQ_BIRTH,
    REQ_DEGREE,
)

pytestmark = pytest.mark.integration

CAPTURES: Final = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "conformance"
    / "oots-edm-2.0"
    / "common_services"
)
QUERY_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0"
RIM_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0"
RS_NS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0"
SDG_NS: Final = "http://data.europa.eu/p4s"
XSI_TYPE: Final = "{http://www.w3.org/2001/XMLSchema-instance}type"
SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
NS: Final = {"query": QUERY_NS, "rim": RIM_NS, "rs": RS_NS, "sdg": SDG_NS}


@pytest.fixture(scope="module")
def gateway() -> Iterator[SimulatedOotsGateway]:
    with SimulatedOotsGateway() as running:
        yield running


@pytest.fixture()
def search(gateway: SimulatedOotsGateway) -> Iterator[Search]:
    session = requests.Session()
    session.trust_env = False
    yield Search(session, gateway.common_services_url)
    session.close()


class Search:
    def __init__(self, session: requests.Session, url: str) -> None:
        self.session, self.url = session, url

    def raw(self, url: str | None = None, **params: str) -> requests.Response:
        return self.session.get(
            url or self.url,
            params=params,
            headers={"Accept": "application/x-ebrs+xml", "Accept-Version": "oots-cs:v2.0"},
            timeout=5,
        )

    def __call__(self, query_id: str, url: str | None = None, **params: str) -> etree._Element:
        response = self.raw(url, queryId=query_id, **params)
        assert response.status_code == 200  # always, even for a refusal
        assert response.headers["Content-Type"] == "application/x-ebrs+xml"
        digest = base64.b64encode(hashlib.sha256(response.content).digest()).decode()
        assert response.headers["digest"] == f"SHA-256={digest}"
        root = etree.fromstring(response.content)
        assert root.tag == f"{{{QUERY_NS}}}QueryResponse"
        return root


def refusal(root: etree._Element) -> str:
    assert root.get("status") == FAILURE
    exception = root.find("rs:Exception", NS)
    assert exception is not None
    return exception.get("code") or ""


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in root.iterfind(path, NS)]


# --- Evidence Broker ----------------------------------------------------------------------------


def test_requirements_of_a_procedure(search: Search) -> None:
    root = search(QUERY_REQUIREMENTS, **{"procedure-id": "T3", "country-code": "DK"})
    assert root.get("status") == SUCCESS
    assert texts(root, "rim:Slot[@name='SpecificationIdentifier']/rim:SlotValue/rim:Value") == [
        "oots-cs:v2.0"
    ]
    requirement = "rim:RegistryObjectList/rim:RegistryObject/rim:Slot[@name='Requirement']"
    assert texts(root, f"{requirement}/rim:SlotValue/sdg:Requirement/sdg:Identifier") == [
        REQ_DEGREE
    ]
    assert texts(root, f"{requirement}//sdg:ReferenceFramework/sdg:RelatedTo/sdg:Identifier") == [
        "T3"
    ]
    birth = search(QUERY_REQUIREMENTS, **{"procedure-id": "R1"})
    assert texts(birth, ".//sdg:Requirement/sdg:Identifier") == [REQ_BIRTH]
    everything = search(QUERY_REQUIREMENTS)
    assert len(everything.findall(".//sdg:Requirement", NS)) == 2


def test_requirements_refusals(search: Search) -> None:
    assert refusal(search(QUERY_REQUIREMENTS, **{"procedure-id": "T3", "country-code": "FR"})) == (
        "EB:ERR:0001"
    )
    assert refusal(search(QUERY_REQUIREMENTS, **{"procedure-id": "t-3"})) == "EB:ERR:0005"
    assert refusal(search(QUERY_REQUIREMENTS, **{"country-code": "Denmark"})) == "EB:ERR:0006"


def test_evidence_types_of_a_requirement(search: Search) -> None:
    root = search(QUERY_EVIDENCE_TYPES, **{"requirement-id": REQ_DEGREE, "country-code": "FI"})
    assert root.get("status") == SUCCESS
    lists = root.findall(".//sdg:Requirement/sdg:EvidenceTypeList", NS)
    assert len(lists) == 1
    assert texts(lists[0], "sdg:EvidenceType/sdg:EvidenceTypeClassification") == [ET_FI_DEGREE]
    assert texts(lists[0], "sdg:Jurisdiction/sdg:AdminUnitLevel1") == ["FI"]
    both = search(QUERY_EVIDENCE_TYPES, **{"requirement-id": REQ_DEGREE})
    assert texts(both, ".//sdg:EvidenceTypeClassification") == [ET_FI_DEGREE, ET_SE_DEGREE]
    assert (
        refusal(search(QUERY_EVIDENCE_TYPES, **{"requirement-id": REQ_BIRTH, "country-code": "SE"}))
        == "EB:ERR:0001"
    )
    assert refusal(search(QUERY_EVIDENCE_TYPES, **{"requirement-id": "https://x/none"})) == (
        "EB:ERR:0002"
    )
    assert refusal(search(QUERY_EVIDENCE_TYPES)) == "EB:ERR:0003"


# --- Data Service Directory ---------------------------------------------------------------------


def access_services(root: etree._Element) -> list[dict[str, str]]:
    found = []
    for service in root.iterfind(".//sdg:DataServiceEvidenceType/sdg:AccessService", NS):
        found.append(
            {
                "access_point": service.findtext("sdg:Identifier", namespaces=NS) or "",
                "conforms_to": service.findtext("sdg:ConformsTo", namespaces=NS) or "",
                "provider": service.findtext("sdg:Publisher/sdg:Identifier", namespaces=NS) or "",
                "scheme": service.find("sdg:Publisher/sdg:Identifier", NS).get("schemeID")  # type: ignore[union-attr]
                or "",
            }
        )
    return found


def test_one_provider_with_its_edm_version(search: Search) -> None:
    root = search(
        QUERY_DATA_SERVICES, **{"evidence-type-classification": ET_FI_DEGREE, "country-code": "FI"}
    )
    assert root.get("status") == SUCCESS
    assert access_services(root) == [
        {
            "access_point": "AP_FI_01",
            "conforms_to": "oots-edm:v2.0",
            "provider": "FI-UNIV-PREVIEW",
            "scheme": "urn:cef.eu:names:identifier:EAS:0212",
        }
    ]
    assert texts(root, ".//sdg:DataServiceEvidenceType/sdg:DistributedAs/sdg:Format") == [
        "application/pdf"
    ]


def test_two_providers_to_choose_from(search: Search) -> None:
    root = search(
        QUERY_DATA_SERVICES, **{"evidence-type-classification": ET_SE_DEGREE, "country-code": "SE"}
    )
    services = access_services(root)
    assert [s["provider"] for s in services] == ["SE-UHR-DIRECT", "SE-LADOK-ERROR"]
    assert [choose_version([s["conforms_to"]]).value for s in services] == [
        "oots-edm:v1.2",
        "oots-edm:v2.0",
    ]
    narrowed = search(
        QUERY_DATA_SERVICES,
        **{
            "evidence-type-classification": ET_SE_DEGREE,
            "country-code": "SE",
            "specification": "oots-edm:v2.0",
        },
    )
    assert [s["provider"] for s in access_services(narrowed)] == ["SE-LADOK-ERROR"]


def test_additional_attribute_then_the_provider(search: Search) -> None:
    params = {"evidence-type-classification": ET_FI_BIRTH, "country-code": "FI"}
    first = search(QUERY_DATA_SERVICES, **params)
    assert refusal(first) == "DSD:ERR:0005"
    exception = first.find("rs:Exception", NS)
    assert exception is not None
    assert exception.get("severity", "").endswith("DSDErrorResponse:AdditionalInput")
    assert [s.get("name") for s in exception.iterfind("rim:Slot", NS)] == [
        "DataServiceEvidenceType",
        "JurisdictionDetermination",
    ]
    determination = exception.find(".//sdg:EvidenceProviderJurisdictionDetermination", NS)
    assert determination is not None
    context_id = determination.findtext("sdg:JurisdictionContextId", namespaces=NS) or ""
    assert determination.findtext("sdg:JurisdictionLevel", namespaces=NS) == "NUTS2"
    assert texts(determination, "sdg:JurisdictionContext") == ["Place of birth", "Syntymäpaikka"]

    for region, provider in (("FI1B", "FI-DVV-HELSINKI"), ("FI19", "FI-DVV-TURKU")):
        answer = search(
            QUERY_DATA_SERVICES,
            **params,
            **{"jurisdiction-context-id": context_id, "jurisdiction-admin-l2": region},
        )
        assert answer.get("status") == SUCCESS
        assert [s["provider"] for s in access_services(answer)] == [provider]
    wrong = search(QUERY_DATA_SERVICES, **params, **{"jurisdiction-admin-l2": "FI20"})
    assert refusal(wrong) == "DSD:ERR:0006"


def test_data_services_refusals(search: Search) -> None:
    assert refusal(search(QUERY_DATA_SERVICES, **{"country-code": "FI"})) == "DSD:ERR:0003"
    unknown = {"evidence-type-classification": "https://x/unknown", "country-code": "FI"}
    assert refusal(search(QUERY_DATA_SERVICES, **unknown)) == "DSD:ERR:0002"
    elsewhere = {"evidence-type-classification": ET_FI_DEGREE, "country-code": "SE"}
    assert refusal(search(QUERY_DATA_SERVICES, **elsewhere)) == "DSD:ERR:0001"


def test_unknown_query_is_a_failure_with_status_200(
    search: Search, gateway: SimulatedOotsGateway
) -> None:
    assert refusal(search("urn:fdc:oots:nothing")) == "DSD:ERR:0004"
    assert refusal(search("urn:fdc:oots:nothing", gateway.evidence_broker_url)) == "EB:ERR:0007"
    assert refusal(search(QUERY_REQUIREMENTS, gateway.data_service_directory_url)) == "DSD:ERR:0004"
    assert search(QUERY_REQUIREMENTS, gateway.evidence_broker_url).get("status") == SUCCESS


def test_without_accept_version_the_v1_0_form(search: Search) -> None:
    response = search.session.get(search.url, params={"queryId": QUERY_REQUIREMENTS}, timeout=5)
    root = etree.fromstring(response.content)
    assert root.find("rim:Slot[@name='SpecificationIdentifier']", NS) is None


# --- the same shape as the captures ---------------------------------------------------------------


def shape(root: etree._Element) -> tuple[str, set[str], set[str]]:
    """Root tag, every slot name, every element path (namespace URIs, no prefixes)."""
    slots = {s.get("name") or "" for s in root.iter(f"{{{RIM_NS}}}Slot")}
    paths = set()
    for element in root.iter():
        if isinstance(element.tag, str):
            chain = [*reversed(list(element.iterancestors())), element]
            paths.add("/".join(etree.QName(e).localname for e in chain))
    return root.tag, slots, paths


CAPTURE_CASES: Final = [
    ("eb_requirements_fr", QUERY_REQUIREMENTS, {"procedure-id": "T3", "country-code": "DK"}),
    ("eb_requirements_vides", QUERY_REQUIREMENTS, {"procedure-id": "T3", "country-code": "FR"}),
    (
        "eb_evidence_types_fi",
        QUERY_EVIDENCE_TYPES,
        {"requirement-id": REQ_DEGREE, "country-code": "FI"},
    ),
    (
        "dsd_data_services_fi",
        QUERY_DATA_SERVICES,
        {"evidence-type-classification": ET_FI_DEGREE, "country-code": "FI"},
    ),
    (
        "dsd_aucun_service_fr",
        QUERY_DATA_SERVICES,
        {"evidence-type-classification": ET_FI_DEGREE, "country-code": "FR"},
    ),
]


@pytest.mark.parametrize(
    ("capture", "query_id", "params"), CAPTURE_CASES, ids=[c[0] for c in CAPTURE_CASES]
)
def test_answers_have_the_shape_of_the_captures(
    search: Search, capture: str, query_id: str, params: dict[str, str]
) -> None:
    real = etree.parse(str(CAPTURES / f"{capture}.xml")).getroot()
    ours = search(query_id, **params)
    real_tag, real_slots, real_paths = shape(real)
    our_tag, our_slots, our_paths = shape(ours)
    assert our_tag == real_tag
    assert ours.get("status") == real.get("status")
    assert our_slots == real_slots
    assert our_paths <= real_paths, sorted(our_paths - real_paths)
    assert set(ours.nsmap.values()) <= set(real.nsmap.values())
    if real.get("status") == FAILURE:
        real_exception = real.find("rs:Exception", NS)
        our_exception = ours.find("rs:Exception", NS)
        assert real_exception is not None and our_exception is not None
        assert set(our_exception.attrib) == set(real_exception.attrib)
        assert our_exception.get("code") == real_exception.get("code")
        assert our_exception.get(XSI_TYPE) == real_exception.get(XSI_TYPE)
    else:
        assert (
            len(ours.find("rim:RegistryObjectList", NS))  # type: ignore[arg-type]
            >= 1
        )

"""Reading the common services' answers: every live capture, the TDD samples, the failures.

The captures are read from ``/work/shared/conformance/oots-edm-2.0/common_services/`` (answers
of the OOTS acceptance environment with their HTTP headers), the TDD samples from
``oots-edm-1.0/xml/{EB,DSD}/``; nothing is copied into the project.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

from integrations.oots.common_services import (
    AttributeNeeded,
    ProvidersFound,
    RequirementInfo,
)
from integrations.oots.common_services.client import check_digest
from integrations.oots.common_services.parse import (
    parse_evidence_types,
    parse_providers,
    parse_requirements,
)
from integrations.oots.edm import EdmVersion, LocalizedText, choose_version
from integrations.oots.errors import (
    CommonServicesAttributeValueUnknown,
    CommonServicesBadAnswer,
    CommonServicesRefused,
)
from serviceplatform.sandbox.oots_common_services import (
    QUERY_DATA_SERVICES,
    QUERY_EVIDENCE_TYPES,
    QUERY_REQUIREMENTS,
    search,
)
from serviceplatform.sandbox.oots_network import (
    DEFAULT_NETWORK,
    ET_FI_BIRTH,
    ET_FI_DEGREE,
    ET_SE_DEGREE,
    REQ_DEGREE,
)

CONFORMANCE: Final = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
CAPTURES: Final = CONFORMANCE / "oots-edm-2.0" / "common_services"
DSD_SAMPLES: Final = CONFORMANCE / "oots-edm-1.0" / "xml" / "DSD"
EB_SAMPLES: Final = CONFORMANCE / "oots-edm-1.0" / "xml" / "EB" / "Complete XML examples (EB)"
SR_ACC: Final = "https://sr.acc.oots.tech.ec.europa.eu"
TEST_REQUIREMENT: Final = f"{SR_ACC}/requirements/00000000-0000-0000-0000-000000000000"
FI_DUMMY_PDF: Final = (
    f"{SR_ACC}/evidencetypeclassifications/FI/19f0783e-7cdc-4146-9ff9-e331514ffb74"
)
FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"


def capture(name: str) -> bytes:
    return (CAPTURES / f"{name}.xml").read_bytes()


# --- the live captures ----------------------------------------------------------------------

#: Every capture and how it is read: a new capture fails ``test_every_capture_is_covered``.
COVERED: Final = {
    "eb_requirements_fr",
    "eb_requirements_catalogue",
    "eb_requirements_vides",
    "eb_evidence_types_fi",
    "eb_evidence_types_fr",
    "dsd_data_services_fi",
    "dsd_aucun_service_fr",
}


def test_every_capture_is_covered() -> None:
    assert {p.stem for p in CAPTURES.glob("*.xml")} == COVERED


@pytest.mark.parametrize("name", sorted(COVERED))
def test_capture_digest_header_matches_its_body(name: str) -> None:
    headers = dict(
        line.split(": ", 1)
        for line in (CAPTURES / f"{name}.headers").read_text().splitlines()
        if ": " in line
    )
    check_digest(headers["digest"], capture(name), "eb")  # no error: the body is intact
    with pytest.raises(CommonServicesBadAnswer, match="digest"):
        check_digest(headers["digest"], capture(name) + b" ", "eb")


def test_requirements_of_a_procedure_in_france() -> None:
    (requirement,) = parse_requirements(capture("eb_requirements_fr"))
    assert requirement.identifier == TEST_REQUIREMENT
    assert requirement.names == (
        LocalizedText("(TEST) Test Requirement", "EN"),
        LocalizedText("Testivaatimus", "FI"),
    )
    assert [d.lang for d in requirement.descriptions] == ["EN", "FI"]
    (framework,) = requirement.frameworks
    assert framework.identifier == "92c27c13-5c49-439b-a334-683d736a0cb7"
    assert framework.procedures == ("00",)
    assert framework.country == "FR"
    assert framework.titles == (LocalizedText("Test - FR - MS Procedure", "EN"),)
    assert requirement.requirement().identifier == TEST_REQUIREMENT


def test_the_whole_catalogue() -> None:
    requirements = parse_requirements(capture("eb_requirements_catalogue"))
    # The conformance README: 53 requirements, 687 procedure declarations, 27 countries.
    assert len(requirements) == 53
    assert len({r.identifier for r in requirements}) == 53
    frameworks = [f for r in requirements for f in r.frameworks]
    assert len(frameworks) == 687
    assert len({f.country for f in frameworks}) == 27
    assert all(f.procedures and f.country for f in frameworks)
    assert all(r.names for r in requirements)


def test_empty_result_is_no_requirement() -> None:
    assert parse_requirements(capture("eb_requirements_vides")) == ()


@pytest.mark.parametrize(
    ("name", "country", "classification", "titles"),
    [
        ("eb_evidence_types_fi", "FI", FI_DUMMY_PDF, ["Dummy PDF - FI", "Testi-PDF"]),
        (
            "eb_evidence_types_fr",
            "FR",
            f"{SR_ACC}/evidencetypeclassifications/FR/869a6748-bfc5-4de6-a0b4-ec0420f6b6a4",
            ["FR - Test Evidence Type"],
        ),
    ],
)
def test_evidence_types_for_a_country(
    name: str, country: str, classification: str, titles: list[str]
) -> None:
    (evidence_type,) = parse_evidence_types(capture(name))
    assert evidence_type.classification == classification
    assert evidence_type.country == country
    assert [t.value for t in evidence_type.titles] == titles
    assert evidence_type.descriptions
    assert evidence_type.requirement_id == TEST_REQUIREMENT
    assert evidence_type.list_id is not None


def test_the_finnish_data_service() -> None:
    answer = parse_providers(
        capture("dsd_data_services_fi"), classification=FI_DUMMY_PDF, country="FI"
    )
    assert isinstance(answer, ProvidersFound)
    (provider,) = answer.providers
    assert provider.provider_id == "FIKEHA02"
    assert provider.provider_scheme == "urn:oasis:names:tc:ebcore:partyid-type:unregistered:FI"
    assert provider.provider_name == "Keha v. 2.0"
    assert provider.country == "FI"
    assert provider.access_service_id == "AP_FI_03"
    assert provider.access_service_scheme == provider.provider_scheme
    assert provider.access_service_name == "Finland OOTS DEV TDD 2.0.0"
    assert provider.conforms_to == ("oots-edm:v2.0",)
    assert choose_version(provider.conforms_to) is EdmVersion.V2_0
    assert provider.evidence_type_classification == FI_DUMMY_PDF
    assert provider.evidence_type_id == "41170824-15d9-4c16-984e-63b75b937b8c"
    assert provider.distributions == ("application/pdf",)
    assert provider.distributed_as[0].languages == ("EN",)
    assert provider.level_of_assurance == "Substantial"
    edm_provider = provider.evidence_provider()
    assert (edm_provider.identifier, edm_provider.scheme, edm_provider.name) == (
        "FIKEHA02",
        provider.provider_scheme,
        "Keha v. 2.0",
    )
    requested = provider.requested_evidence_type("application/pdf")
    assert requested is not None
    assert requested.identifier == "41170824-15d9-4c16-984e-63b75b937b8c"
    assert requested.classification == FI_DUMMY_PDF
    assert [t.value for t in requested.titles] == ["Dummy PDF - FI", "Testi-PDF"]
    assert provider.requested_evidence_type("application/json") is None


def test_no_data_service_is_no_provider() -> None:
    answer = parse_providers(
        capture("dsd_aucun_service_fr"), classification=FI_DUMMY_PDF, country="FR"
    )
    assert answer == ProvidersFound(())


def test_other_namespace_prefixes_read_the_same() -> None:
    body = capture("dsd_data_services_fi").decode()
    renamed = {"rim": "r4", "sdg": "p4s", "query": "q", "rs": "ns3"}
    for prefix, other in renamed.items():
        body = re.sub(rf'(?<=[<"/]){prefix}:', f"{other}:", body)
        body = body.replace(f"xmlns:{prefix}=", f"xmlns:{other}=")
    assert "<rim:" not in body and "<sdg:" not in body
    again = parse_providers(body.encode(), classification=FI_DUMMY_PDF, country="FI")
    assert again == parse_providers(
        capture("dsd_data_services_fi"), classification=FI_DUMMY_PDF, country="FI"
    )


# --- the TDD samples ---------------------------------------------------------------------------

BIRTH: Final = (
    "https://sr.oots.tech.europa.eu/evidencetypeclassifications/DE/"
    "ca8afed6-2dc0-422a-a931-d21c3d8d370e"
)


def test_tdd_additional_attributes_for_a_birth_certificate() -> None:
    body = (
        DSD_SAMPLES
        / "Complete XML examples (DSD)"
        / "4.4.3. Query Error Response of the DSD requesting additional User Provided "
        "Attributes - Birth Certificate - DSD-ERR005.xml"
    ).read_bytes()
    needed = parse_providers(body, classification=BIRTH, country="DE")
    assert isinstance(needed, AttributeNeeded)
    assert needed.evidence_type_classification == BIRTH
    assert needed.country == "DE"
    assert needed.context_id == "5ce148b9-5578-4049-aecf-af7bb55714b5"
    assert needed.jurisdiction_level == "LAU"
    assert needed.level == "jurisdiction-admin-l3"  # the TDD's second request
    assert needed.description == (
        LocalizedText("Place Of Birth", "EN"),
        LocalizedText("Geburtsort", "DE"),
    )
    assert needed.evidence_type_id == "2af27699-f131-4411-8fdb-9e8cd4e8bded"
    (concept,) = needed.classifications
    assert concept.identifier == "b07146b6-1468-41a7-a10f-ee2a61429dbc"
    assert concept.type == "Codelist"
    assert concept.value_expression == (
        "https://sr.oots.tech.europa.eu/ep-classification/de/countryresidence"
    )


def test_tdd_old_sample_with_a_url_level_and_no_languages() -> None:
    body = (
        DSD_SAMPLES
        / "XML samples and snippets (old)"
        / "4.4.3 Query Error Response of the DSD requesting EP classification - Two EPs - "
        "DSD ERR005.xml"
    ).read_bytes()
    needed = parse_providers(body, classification="CertificateOfInsurance", country="DE")
    assert isinstance(needed, AttributeNeeded)
    assert needed.jurisdiction_level == "https://sr.ec.europa.eu/codelist/locationLevel/LAU"
    assert needed.level == "jurisdiction-admin-l3"
    assert needed.context_id == "CompanyHq"
    assert needed.description == (LocalizedText("Company's HQ Location", "EN"),)
    assert [c.identifier for c in needed.classifications] == [
        "TypeOfInsurance",
        "SomeOtherCriterion",
    ]


def test_tdd_two_birth_registries_with_their_classifications() -> None:
    body = (
        DSD_SAMPLES
        / "Complete XML examples (DSD)"
        / "4.3. Query Response of the DSD - Birth Certificate.xml"
    ).read_bytes()
    answer = parse_providers(body, classification=BIRTH, country="DE")
    assert isinstance(answer, ProvidersFound)
    berlin, hamburg = answer.providers
    assert (berlin.provider_id, berlin.provider_scheme) == (
        "DE73524311",
        "urn:cef.eu:names:identifier:EAS:9930",
    )
    assert berlin.access_service_id == "8889909098"
    assert berlin.jurisdiction_admin_l3 == "11000000"
    assert hamburg.provider_name == "Civil Registration Office Hamburg"
    assert hamburg.jurisdiction_admin_l3 == "02000000"
    assert berlin.classifications[0].supported_values == (
        "ApplicantHasNeverBeenResidentInGermany",
        "ApplicantHasBeenResidentInGermany",
    )
    assert hamburg.classifications[0].supported_values == ("ApplicantHasBeenResidentInGermany",)
    # Three distributions, two formats: the list names each format once.
    assert len(berlin.distributed_as) == 3
    assert berlin.distributions == ("application/xml", "application/pdf")
    assert berlin.level_of_assurance == "High"
    xml = berlin.requested_evidence_type()
    assert xml is not None and xml.format == "application/xml"
    assert (
        xml.conforms_to == "https://sr.oots.tech.europa.eu/distributions/certificate-of-birth-1.0.0"
    )
    (chosen,) = berlin.provider_classifications(
        [("b07146b6-1468-41a7-a10f-ee2a61429dbc", "ApplicantHasBeenResidentInGermany")]
    )
    assert chosen.value == "ApplicantHasBeenResidentInGermany"
    assert berlin.provider_classifications() == ()


def test_tdd_evidence_broker_samples() -> None:
    birth = EB_SAMPLES / "4.3. Get Evidence Types for Requirement Query - Birth Certificate.xml"
    (evidence_type,) = parse_evidence_types(birth.read_bytes())
    assert evidence_type.classification == BIRTH
    assert evidence_type.country == "DE"
    requirements = parse_requirements(
        (EB_SAMPLES / "4.2. Get List of Requirements Query - Birth Certificate.xml").read_bytes()
    )
    assert requirements and all(isinstance(r, RequirementInfo) for r in requirements)
    error = EB_SAMPLES / "4.4. Query Error Response of the Evidence Broker - Birth.xml"
    with pytest.raises(CommonServicesRefused) as refused:
        parse_requirements(error.read_bytes())
    assert refused.value.remote_code == "EB:ERR:0003"
    assert refused.value.code == "SP-743" and refused.value.client_fault


# --- what is not a readable answer ------------------------------------------------------------

QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:4.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:4.0"
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0"


def failure(code: str | None, inner: str = "") -> bytes:
    code_attribute = "" if code is None else f' code="{code}"'
    return (
        f'<q:QueryResponse xmlns:q="{QUERY}" xmlns:rs="{RS}" xmlns:rim="{RIM}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'status="{FAILURE}"><rs:Exception xsi:type="rs:InvalidRequestExceptionType"'
        f'{code_attribute} message="refused" detail="because">{inner}</rs:Exception>'
        "</q:QueryResponse>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>Bad gateway</body></html>", "root element"),
        (b"not xml at all", "not well-formed"),
        (b"", "not well-formed"),
        (
            b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY x "y">]>'
            b'<q:QueryResponse xmlns:q="' + QUERY.encode() + b'"/>',
            "document type",
        ),
        # The right local name in the wrong namespace is another root.
        (b'<QueryResponse xmlns="urn:other" status="x"/>', "root element"),
        (
            f'<q:QueryResponse xmlns:q="{QUERY}" status="urn:something:else"/>'.encode(),
            "unknown response status",
        ),
        (
            f'<q:QueryResponse xmlns:q="{QUERY}" status="{FAILURE}"/>'.encode(),
            "without rs:Exception",
        ),
    ],
    ids=["html", "text", "empty", "dtd", "other-namespace", "status", "no-exception"],
)
def test_unreadable_answers(body: bytes, reason: str) -> None:
    for parse in (
        parse_requirements,
        parse_evidence_types,
        lambda b: parse_providers(b, classification="x", country="FI"),
    ):
        with pytest.raises(CommonServicesBadAnswer, match=reason) as raised:
            parse(body)
        assert raised.value.code == "SP-742" and not raised.value.retryable


def test_a_requirement_without_identifier_is_unreadable() -> None:
    body = capture("eb_requirements_fr").replace(
        f"<sdg:Identifier>{TEST_REQUIREMENT}</sdg:Identifier>".encode(), b""
    )
    with pytest.raises(CommonServicesBadAnswer, match="sdg:Requirement/sdg:Identifier"):
        parse_requirements(body)


def test_failure_with_a_code_is_refused_with_it() -> None:
    with pytest.raises(CommonServicesRefused) as refused:
        parse_evidence_types(failure("EB:ERR:0002"))
    assert refused.value.remote_code == "EB:ERR:0002"
    assert refused.value.remote_message == "refused"
    assert "EB:ERR:0002: refused (because)" in refused.value.error_text
    with pytest.raises(CommonServicesRefused) as without_code:
        parse_requirements(failure(None))
    assert without_code.value.remote_code is None


def test_dsd_refusals() -> None:
    def providers(body: bytes) -> object:
        return parse_providers(body, classification="x", country="FI")

    with pytest.raises(CommonServicesAttributeValueUnknown) as unknown:
        providers(failure("DSD:ERR:0006"))
    assert unknown.value.code == "SP-744" and unknown.value.remote_code == "DSD:ERR:0006"
    with pytest.raises(CommonServicesRefused) as refused:
        providers(failure("DSD:ERR:0002"))
    assert type(refused.value) is CommonServicesRefused
    assert refused.value.remote_code == "DSD:ERR:0002"
    # An "ask the user" answer that names nothing to ask cannot be acted upon.
    with pytest.raises(CommonServicesBadAnswer, match="no attribute"):
        providers(failure("DSD:ERR:0005"))
    assert providers(failure("DSD:ERR:0001")) == ProvidersFound(())


# --- the simulated services' answers, in both interface versions -----------------------------


@pytest.mark.parametrize("accept_version", [None, "oots-cs:v2.0"], ids=["v1.0", "v2.0"])
def test_the_simulated_services_answers(accept_version: str | None) -> None:
    def ask(query_id: str, **params: str) -> bytes:
        values = {"queryId": [query_id], **{k: [v] for k, v in params.items()}}
        return search(DEFAULT_NETWORK, values, accept_version=accept_version)

    (degree,) = parse_requirements(ask(QUERY_REQUIREMENTS, **{"procedure-id": "T3"}))
    assert degree.identifier == REQ_DEGREE
    types = parse_evidence_types(ask(QUERY_EVIDENCE_TYPES, **{"requirement-id": REQ_DEGREE}))
    assert [(t.classification, t.country) for t in types] == [
        (ET_FI_DEGREE, "FI"),
        (ET_SE_DEGREE, "SE"),
    ]
    swedish = parse_providers(
        ask(
            QUERY_DATA_SERVICES,
            **{"evidence-type-classification": ET_SE_DEGREE, "country-code": "SE"},
        ),
        classification=ET_SE_DEGREE,
        country="SE",
    )
    assert isinstance(swedish, ProvidersFound)
    assert [p.provider_id for p in swedish.providers] == ["SE-UHR-DIRECT", "SE-LADOK-ERROR"]
    birth = {"evidence-type-classification": ET_FI_BIRTH, "country-code": "FI"}
    needed = parse_providers(
        ask(QUERY_DATA_SERVICES, **birth), classification=ET_FI_BIRTH, country="FI"
    )
    assert isinstance(needed, AttributeNeeded) and needed.jurisdiction_level == "NUTS2"
    with pytest.raises(CommonServicesAttributeValueUnknown):
        parse_providers(
            ask(QUERY_DATA_SERVICES, **birth, **{"jurisdiction-admin-l2": "FI20"}),
            classification=ET_FI_BIRTH,
            country="FI",
        )
    with pytest.raises(CommonServicesRefused) as unknown_query:
        parse_requirements(ask("urn:fdc:oots:nothing"))
    assert unknown_query.value.remote_code == "DSD:ERR:0004"


def test_the_client_asks_the_query_ids_the_services_answer() -> None:
    from integrations.oots.common_services import queries

    assert queries.QUERY_REQUIREMENTS == QUERY_REQUIREMENTS
    assert queries.QUERY_EVIDENCE_TYPES == QUERY_EVIDENCE_TYPES
    assert queries.QUERY_DATA_SERVICES == QUERY_DATA_SERVICES

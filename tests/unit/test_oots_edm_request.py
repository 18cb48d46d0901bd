"""Building and reading the EDM QueryRequest, at v1.2 and v2.0.

Round trips (build, then read back, gives the same request), the version differences as they
appear on the wire, the requests of the conformance folder read by ``parse_query_request``,
and what the builder refuses. Schema and Schematron checks are in
``test_oots_edm_validation.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Final

import pytest
from lxml import etree

from integrations.oots.edm import (
    EdmParseError,
    EdmVersion,
    EvidenceRequest,
    NaturalPerson,
    UnsupportedEdmVersion,
    build_query_request,
    choose_version,
    parse_query_request,
    parse_query_response,
)
from integrations.oots.edm.wire import QUERY_NS, RIM_NS, SDG_NS, XML_LANG, XSI_NS
from tests.unit.test_oots_edm_samples import (
    EDM_2_0,
    PREVIEW,
    RETURN,
    SAMPLES_1_0,
    TWO_STEP,
    all_requests,
    company_request,
    evidence_type,
    first_request,
    reel,
    rename_prefixes,
    second_request,
    ws_plugin_message,
)

NS: Final = {"query": QUERY_NS, "rim": RIM_NS, "sdg": SDG_NS, "xsi": XSI_NS}
BUILT: Final = all_requests()
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def tree(document: bytes) -> etree._Element:
    return etree.fromstring(document, _PARSER)


def top_slots(document: bytes) -> list[str]:
    return [str(s.get("name")) for s in tree(document).iterchildren(f"{{{RIM_NS}}}Slot")]


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list) and len(found) == 1, path
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "request_"), BUILT, ids=[name for name, _ in BUILT])
def test_round_trip(name: str, request_: EvidenceRequest) -> None:
    assert parse_query_request(build_query_request(request_)) == request_


@pytest.mark.parametrize(("name", "request_"), BUILT, ids=[name for name, _ in BUILT])
def test_reading_binds_namespaces_not_prefixes(name: str, request_: EvidenceRequest) -> None:
    document = build_query_request(request_)
    renamed = rename_prefixes(document, {"rim": "ns2", "query": "ns5", "sdg": "p4s", "xsi": "i"})
    assert b"rim:" not in renamed.replace(b"xsd:rim:4.0", b"")
    assert parse_query_request(renamed) == request_
    # rim as the default namespace: ``xsi:type="StringValueType"`` then resolves through it
    assert parse_query_request(rename_prefixes(document, {"rim": ""})) == request_


def test_build_is_deterministic_utf8_with_declaration() -> None:
    document = build_query_request(first_request(EdmVersion.V2_0))
    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert document == build_query_request(first_request(EdmVersion.V2_0))
    assert "Københavns Kommune".encode() in document


# --- the version differences on the wire -----------------------------------------------------


@pytest.mark.parametrize("version", list(EdmVersion))
def test_specification_identifier(version: EdmVersion) -> None:
    root = tree(build_query_request(first_request(version)))
    value = one(root, "rim:Slot[@name='SpecificationIdentifier']/rim:SlotValue/rim:Value")
    assert value.text == version.value


def test_procedure_is_a_localized_string_at_v1_2() -> None:
    root = tree(build_query_request(first_request(EdmVersion.V1_2)))
    value = one(root, "rim:Slot[@name='Procedure']/rim:SlotValue")
    assert value.get(f"{{{XSI_NS}}}type") == "rim:InternationalStringValueType"
    localized = one(value, "rim:Value/rim:LocalizedString")
    assert (localized.get("value"), localized.get(XML_LANG)) == ("R1", "EN")


def test_procedure_is_a_plain_string_at_v2_0() -> None:
    root = tree(build_query_request(first_request(EdmVersion.V2_0)))
    value = one(root, "rim:Slot[@name='Procedure']/rim:SlotValue")
    assert value.get(f"{{{XSI_NS}}}type") == "rim:StringValueType"
    assert one(value, "rim:Value").text == "R1"


@pytest.mark.parametrize("version", list(EdmVersion))
def test_no_request_language_attribute(version: EdmVersion) -> None:
    root = tree(build_query_request(first_request(version)))
    assert root.get(XML_LANG) is None
    assert not root.xpath("//sdg:Language", namespaces=NS)


def test_second_request_slots_follow_the_v1_2_sample() -> None:
    """Same slots, same order as ``EDM_Second_Request.xml`` (PreviewLocation after Procedure)."""
    ours = top_slots(build_query_request(second_request(EdmVersion.V1_2)))
    sample = top_slots((TWO_STEP / "EDM_Second_Request.xml").read_bytes())
    assert [s for s in sample if s in ours] == ours
    assert ours.index("PreviewLocation") == ours.index("Procedure") + 1


def test_second_request_at_v2_0_adds_return_location() -> None:
    document = build_query_request(second_request(EdmVersion.V2_0))
    slots = top_slots(document)
    assert slots[slots.index("PreviewLocation") + 1] == "ReturnLocation"
    root = tree(document)
    assert one(root, "rim:Slot[@name='PreviewLocation']/rim:SlotValue/rim:Value").text == PREVIEW
    assert one(root, "rim:Slot[@name='ReturnLocation']/rim:SlotValue/rim:Value").text == RETURN


def test_first_request_has_no_preview_slots() -> None:
    for version in EdmVersion:
        slots = top_slots(build_query_request(first_request(version)))
        assert "PreviewLocation" not in slots and "ReturnLocation" not in slots


def test_requester_agent_carries_the_authority_and_its_country() -> None:
    root = tree(build_query_request(first_request(EdmVersion.V2_0)))
    agent = one(root, "rim:Slot[@name='EvidenceRequester']/rim:SlotValue/rim:Element/sdg:Agent")
    identifier = one(agent, "sdg:Identifier")
    assert (identifier.text, identifier.get("schemeID")) == (
        "64942212",
        "urn:cef.eu:names:identifier:EAS:0184",
    )
    assert one(agent, "sdg:Address/sdg:AdminUnitLevel1").text == "DK"
    assert one(agent, "sdg:Classification").text == "ER"


def test_company_request_has_legal_person_and_representative() -> None:
    root = tree(build_query_request(company_request(EdmVersion.V1_2)))
    query = one(root, "query:Query")
    names = [s.get("name") for s in query.iterchildren(f"{{{RIM_NS}}}Slot")]
    assert names == ["LegalPerson", "AuthorizedRepresentative", "EvidenceRequest"]
    identifier = one(query, ".//sdg:LegalPerson/sdg:LegalPersonIdentifier")
    assert identifier.get("schemeID") == "eidas"


def test_fixed_query_values() -> None:
    root = tree(build_query_request(first_request(EdmVersion.V1_2)))
    assert one(root, "query:ResponseOption").get("returnType") == "LeafClassWithRepositoryItem"
    assert one(root, "query:Query").get("queryDefinition") == "DocumentQuery"
    assert root.get("id") == "urn:uuid:6f0c2a59-8b1e-4d0a-9a51-0b7c3d1e2f40"


# --- what the builder refuses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issue_datetime": datetime(2026, 3, 2, 9, 15)}, "timezone"),
        ({"requirements": ()}, "requirement"),
        ({"preview_location": "http://preview.example"}, "https"),
        ({"return_location": RETURN}, "v2.0 only"),
        ({"evidence_type": evidence_type(transformation=True)}, None),
        (
            {
                "subject": NaturalPerson(
                    "A", "B", datetime(2000, 1, 1).date(), level_of_assurance=None
                )
            },
            "assurance",
        ),
    ],
    ids=[
        "naive-time",
        "no-requirement",
        "http-preview",
        "return-at-v1.2",
        "transformation-at-v2.0",
        "no-loa",
    ],
)
def test_builder_refuses(change: dict[str, object], message: str | None) -> None:
    version = EdmVersion.V1_2 if "return_location" in change else EdmVersion.V2_0
    request = replace(first_request(version), **change)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message or "Transformation"):
        build_query_request(request)


# --- choosing the version from the DSD -------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "chosen"),
    [
        (["oots-edm:v2.0"], EdmVersion.V2_0),
        (["oots-edm:v1.2"], EdmVersion.V1_2),
        (["oots-edm:v1.0", "oots-edm:v1.2"], EdmVersion.V1_2),
        (["oots-edm:v1.2", " oots-edm:v2.0 "], EdmVersion.V2_0),
    ],
)
def test_choose_version(declared: list[str], chosen: EdmVersion) -> None:
    assert choose_version(declared) is chosen


@pytest.mark.parametrize("declared", [[], ["oots-edm:v1.0"], ["oots-cs:v2.0"]])
def test_choose_version_refuses(declared: list[str]) -> None:
    with pytest.raises(UnsupportedEdmVersion):
        choose_version(declared)


def test_choose_version_reads_the_live_dsd_capture() -> None:
    dsd = etree.parse(str(EDM_2_0 / "common_services" / "dsd_data_services_fi.xml"), _PARSER)
    declared = [str(e.text) for e in dsd.iterfind(".//{*}AccessService/{*}ConformsTo")]
    assert choose_version(declared) is EdmVersion.V2_0


# --- requests of the conformance folder -------------------------------------------------------


def test_two_step_first_request() -> None:
    request = parse_query_request((TWO_STEP / "EDM_Ferst_Request.xml").read_bytes())
    assert request.version is EdmVersion.V1_2
    assert request.procedure == "T2"
    assert request.preview_location is None
    assert (request.possibility_for_preview, request.explicit_request_given) == (True, True)
    assert [r.identifier for r in request.requirements] == [
        "https://sr.oots.tech.ec.europa.eu/requirements/cfcd4e22-30f1-48fa-93e4-6cf98cedbf40",
        "https://sr.oots.tech.ec.europa.eu/requirements/99a0a5d4-10ba-42c3-a0be-5566b441cbb6",
    ]
    assert (request.requester.identifier, request.requester.country) == ("NL222332239", "NL")
    assert request.provider.identifier == "02-SchoolAuthority-34"
    assert isinstance(request.subject, NaturalPerson)
    assert request.subject.identifier == "DE/DE/123456789"
    assert request.evidence_type.transformation is not None
    assert [c.value for c in request.provider_classifications] == ["HH"]


def test_two_step_second_request_repeats_the_preview_location() -> None:
    first_answer = parse_query_response((TWO_STEP / "EDM_Ferst_Response.xml").read_bytes())
    second = parse_query_request((TWO_STEP / "EDM_Second_Request.xml").read_bytes())
    first = parse_query_request((TWO_STEP / "EDM_Ferst_Request.xml").read_bytes())
    assert second.preview_location is not None
    assert second.preview_location == getattr(first_answer, "location", None)
    # apart from its identity, time and preview location, the second request is the first
    assert (
        replace(
            second,
            request_id=first.request_id,
            issue_datetime=first.issue_datetime,
            preview_location=None,
        )
        == first
    )


def test_v2_0_reference_request() -> None:
    request = parse_query_request((EDM_2_0 / "reference" / "messages" / "requete.xml").read_bytes())
    assert request.version is EdmVersion.V2_0
    assert request.procedure == "T3"
    assert request.intermediary is not None and request.intermediary.identifier == "OOTSFRANCE"
    assert request.requester.identifier == "00000000000002"
    assert request.evidence_type.format == "application/pdf"
    assert request.evidence_type.transformation is None


@pytest.mark.parametrize(
    ("name", "procedure"), [("requete.xml", "00"), ("requete.demarcheInconnue.xml", "T3")]
)
def test_real_v2_0_requests(name: str, procedure: str) -> None:
    request = parse_query_request(reel(name).body())
    assert (request.version, request.procedure) == (EdmVersion.V2_0, procedure)
    assert isinstance(request.subject, NaturalPerson)
    assert request.subject.identifier is None  # the real capture carries no eIDAS identifier
    assert request.evidence_type.titles[-1].value == "Test evidence"


@pytest.mark.parametrize(
    "name",
    [
        "requete.xml",
        "requete.demarcheInconnue.xml",
        "requete.sansProcedure.xml",
        "requete.sansRequeteur.xml",
    ],
)
def test_hand_made_partial_requests_are_refused(name: str) -> None:
    """``incoming/`` (not ``reel/``) elides slots with ``<!-- … -->``: a provider answers
    ``EDM:ERR:0003``; the reader refuses it (no ``SpecificationIdentifier`` value)."""
    with pytest.raises(EdmParseError):
        parse_query_request(ws_plugin_message((EDM_2_0 / "incoming" / name).read_bytes()).body())


def test_v1_0_request_is_refused() -> None:
    sample = (
        SAMPLES_1_0
        / "2 Example for requesting a Birth Certificate - natural person"
        / "2.1 Step 1  Evidence Request - Birth - full example.xml"
    )
    with pytest.raises(UnsupportedEdmVersion, match=r"v1\.0"):
        parse_query_request(sample.read_bytes())


@pytest.mark.parametrize(
    "document",
    [
        b"not xml",
        b'<!DOCTYPE x [<!ENTITY e "e">]><query:QueryRequest xmlns:query="'
        + QUERY_NS.encode()
        + b'"/>',
        b'<QueryRequest xmlns="urn:other"/>',
    ],
    ids=["not-xml", "doctype", "wrong-root"],
)
def test_unreadable_requests(document: bytes) -> None:
    with pytest.raises(EdmParseError):
        parse_query_request(document)

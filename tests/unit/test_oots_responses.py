"""The response builders (``integrations/oots/edm/responses.py``): what a provider answers.

Judged three ways: ``parse_query_response`` of the library reads every built answer back to
the same values (v1.2 and v2.0); every built answer validates against the RegRep 4 and SDG
1.0.0 schemas of ``oots-edm-1.0/xsd`` (the loader of ``test_oots_edm_validation``); and the
answers have the slots, in the order, of the conformance samples of each version.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Final

import pytest
from lxml import etree

from integrations.oots.edm import (
    Agent,
    EdmError,
    EdmVersion,
    Evidence,
    EvidenceMetadata,
    LocalizedText,
    PreviewRequired,
    parse_query_response,
)
from integrations.oots.edm.errors import EDM_ERROR_CODES, SEVERITY_ERROR
from integrations.oots.edm.wire import RIM_NS, RS_NS
from serviceplatform.sandbox.oots_evidence_answers import (
    ResponseContext,
    attachments_of,
    build_error_response,
    build_evidence_response,
    build_preview_required,
)
from tests.unit.test_oots_edm_samples import (
    EDM_2_0,
    PERSON,
    TWO_STEP,
    first_request,
    second_request,
)
from tests.unit.test_oots_edm_validation import schema_errors

ISSUED: Final = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
RESPONSE_ID: Final = uuid.UUID("3b9d1f0e-7a2c-4e55-9c31-5d8e2f4a6b17")
PROVIDER_AGENT: Final = Agent(
    identifier="DE73524311",
    scheme="urn:cef.eu:names:identifier:EAS:9930",
    names=(LocalizedText("Civil Registration Office Berlin I"),),
    country="DE",
)
LOCATION: Final = "https://preview.provider.example.de/requests?session=d36af8bc-fea6-4ee5"
VERSIONS: Final = list(EdmVersion)


def evidence(**changes: object) -> Evidence:
    base = Evidence(
        content=b"%PDF-1.4 birth certificate",
        mime_type="application/pdf",
        content_id="7c2e04cf-7d20-4363-908d-827817746725@provider.example.de",
        filename="BirthCertificate",
        metadata=EvidenceMetadata(
            identifier="0b8f6a0e-52d4-4a51-8f3a-1f2e3d4c5b6a",
            evidence_type_classification="https://sr.oots.tech.ec.europa.eu/"
            "evidencetypeclassifications/DE/ca8afed6-2dc0-422a-a931-d21c3d8d370e",
            evidence_type_titles=(
                LocalizedText("Certificate of Birth"),
                LocalizedText("Geburtsurkunde", "DE"),
            ),
            issuing_authority=replace(PROVIDER_AGENT, country=None),
            issuing_date=date(2026, 2, 27),
            format="application/pdf",
            subject=PERSON,
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def annex() -> Evidence:
    return evidence(
        content=b'{"translation": true}',
        mime_type="application/json",
        content_id="annex-1@provider.example.de",
        filename="Translation",
        classification="HumanReadableVersion",
        metadata=replace(
            evidence().metadata, identifier="5e1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b", format=None
        ),
    )


def top_slots(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    return [slot.get("name") or "" for slot in root.iterchildren(f"{{{RIM_NS}}}Slot")]


def exception_slots(document: bytes) -> list[str]:
    exception = etree.fromstring(document).find(f"{{{RS_NS}}}Exception")
    assert exception is not None
    return [slot.get("name") or "" for slot in exception.iterchildren(f"{{{RIM_NS}}}Slot")]


# --- evidence ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.value)
def test_evidence_reads_back(version: EdmVersion) -> None:
    request = first_request(version)
    built = evidence()
    body, attachments = build_evidence_response(
        request, built, provider=PROVIDER_AGENT, response_id=RESPONSE_ID, issued=ISSUED
    )
    assert attachments == {built.content_id: built.content}
    read = parse_query_response(body, attachments)
    assert isinstance(read, Evidence)
    classification = "MainEvidence" if version is EdmVersion.V2_0 else None
    assert read == replace(
        built,
        version=version,
        request_id=f"urn:uuid:{request.request_id}",
        response_id=str(RESPONSE_ID),
        issue_datetime=ISSUED,
        providers=(replace(PROVIDER_AGENT, classification="EP"),),
        classification=classification,
    )


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.value)
def test_evidence_with_an_associated_document(version: EdmVersion) -> None:
    built = evidence(associated=(annex(),))
    body, attachments = build_evidence_response(first_request(version), built)
    assert attachments == attachments_of(built)
    assert len(attachments) == 2
    read = parse_query_response(body, attachments)
    assert isinstance(read, Evidence)
    assert read.content == built.content
    assert [a.content for a in read.associated] == [annex().content]
    assert read.associated[0].mime_type == "application/json"
    if version is EdmVersion.V2_0:
        assert (read.classification, read.associated[0].classification) == (
            "MainEvidence",
            "HumanReadableVersion",
        )
    assert schema_errors(body) == []


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.value)
def test_open_metadata_is_taken_from_the_request(version: EdmVersion) -> None:
    """``sdg:Evidence`` requires subject, authority, type, date, format: a bare evidence gets
    them from the request (and a new identifier, today's date)."""
    request = first_request(version)
    bare = evidence(metadata=EvidenceMetadata())
    body, attachments = build_evidence_response(request, bare)
    read = parse_query_response(body, attachments)
    assert isinstance(read, Evidence)
    metadata = read.metadata
    assert metadata.subject == request.subject
    assert metadata.evidence_type_classification == request.evidence_type.classification
    assert metadata.evidence_type_titles == request.evidence_type.titles
    assert metadata.issuing_authority is not None
    assert metadata.issuing_authority.identifier == request.provider.identifier
    assert metadata.format == "application/pdf"
    assert metadata.issuing_date == date.today()
    assert uuid.UUID(metadata.identifier or "")
    assert schema_errors(body) == []


# --- preview -------------------------------------------------------------------------------------


def test_v1_2_preview_with_method_and_descriptions_reads_back() -> None:
    request = first_request(EdmVersion.V1_2)
    texts = (
        LocalizedText("Please select your diploma."),
        LocalizedText("Vælg dit eksamensbevis.", "DA"),
    )
    body = build_preview_required(request, LOCATION, texts, "POST", response_id=RESPONSE_ID)
    assert parse_query_response(body) == PreviewRequired(
        location=LOCATION,
        method="POST",
        description=texts,
        version=EdmVersion.V1_2,
        request_id=f"urn:uuid:{request.request_id}",
        response_id=str(RESPONSE_ID),
    )
    assert exception_slots(body) == [
        "Timestamp",
        "PreviewLocation",
        "PreviewDescription",
        "PreviewMethod",
    ]


def test_v2_0_preview_has_no_method_slot() -> None:
    request = first_request(EdmVersion.V2_0)
    body = build_preview_required(request, LOCATION, "Please approve.")
    read = parse_query_response(body)
    assert isinstance(read, PreviewRequired)
    assert (read.location, read.method, read.version) == (LOCATION, "GET", EdmVersion.V2_0)
    assert read.description == (LocalizedText("Please approve."),)
    assert exception_slots(body) == ["Timestamp", "PreviewLocation", "PreviewDescription"]


@pytest.mark.parametrize(
    ("version", "location", "method", "message"),
    [
        (EdmVersion.V2_0, LOCATION, "POST", "v2.0"),
        (EdmVersion.V1_2, "http://plain.example/p", "GET", "https"),
        (EdmVersion.V1_2, LOCATION, "PUT", "GET or POST"),
    ],
)
def test_preview_refuses(version: EdmVersion, location: str, method: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_preview_required(first_request(version), location, "x", method)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.value)
@pytest.mark.parametrize("code", sorted(EDM_ERROR_CODES))
def test_every_error_code_reads_back(version: EdmVersion, code: str) -> None:
    request = second_request(version)
    row = EDM_ERROR_CODES[code]
    body = build_error_response(
        request,
        code,
        detail="told in detail",
        response_id=RESPONSE_ID,
        timestamp=ISSUED,
        slots=[("ErrorHint", "look here")],
    )
    assert parse_query_response(body) == EdmError(
        code=code,
        severity=SEVERITY_ERROR,
        message=row.name,
        detail="told in detail",
        exception_type=row.exception_type,
        timestamp=ISSUED,
        version=version,
        request_id=f"urn:uuid:{request.request_id}",
        response_id=str(RESPONSE_ID),
        slots=(("ErrorHint", "look here"),),
    )
    assert schema_errors(body) == []


def test_error_with_own_message_and_type() -> None:
    body = build_error_response(
        first_request(EdmVersion.V2_0),
        "EDM:ERR:0004",
        "No record of this person",
        "rs:ObjectNotFoundExceptionType",
    )
    read = parse_query_response(body)
    assert isinstance(read, EdmError)
    assert (read.code, read.message) == ("EDM:ERR:0004", "No record of this person")


def test_authorization_error_without_location_is_no_preview() -> None:
    """``EDM:ERR:0002`` without ``PreviewLocation`` (the user declined) reads as an error."""
    body = build_error_response(first_request(EdmVersion.V2_0), "EDM:ERR:0002")
    read = parse_query_response(body)
    assert isinstance(read, EdmError)
    assert read.code == "EDM:ERR:0002"


def test_unknown_code_needs_its_type() -> None:
    with pytest.raises(ValueError, match="code list"):
        build_error_response(first_request(EdmVersion.V2_0), "EDM:ERR:0099")


def test_answer_to_an_unreadable_request() -> None:
    """Knowing only the request id, a provider can still answer ``EDM:ERR:0003``."""
    context = ResponseContext("urn:uuid:0d6c7c3e-4b8a-4f55-8a57-9a0e5c1b2d33", EdmVersion.V1_2)
    body = build_error_response(context, "EDM:ERR:0003", detail="not XML")
    read = parse_query_response(body)
    assert isinstance(read, EdmError)
    assert (read.code, read.request_id, read.version) == (
        "EDM:ERR:0003",
        context.request_id,
        EdmVersion.V1_2,
    )
    assert top_slots(body) == ["SpecificationIdentifier", "EvidenceResponseIdentifier"]
    assert schema_errors(body) == []


def test_evidence_needs_a_subject() -> None:
    context = ResponseContext("urn:uuid:0d6c7c3e-4b8a-4f55-8a57-9a0e5c1b2d33", EdmVersion.V2_0)
    with pytest.raises(ValueError, match="subject"):
        build_evidence_response(context, evidence(metadata=EvidenceMetadata()))


def test_answer_in_another_version_than_the_request() -> None:
    body = build_error_response(
        first_request(EdmVersion.V1_2), "EDM:ERR:0007", version=EdmVersion.V2_0
    )
    read = parse_query_response(body)
    assert isinstance(read, EdmError) and read.version is EdmVersion.V2_0


# --- schemas and the shape of the samples -----------------------------------------------


def all_answers() -> list[tuple[str, bytes]]:
    answers = []
    for version in VERSIONS:
        label = version.value.rsplit(":", 1)[1]
        request = second_request(version)
        answers += [
            (f"{label}-evidence", build_evidence_response(request, evidence())[0]),
            (
                f"{label}-evidence-annex",
                build_evidence_response(request, evidence(associated=(annex(),)))[0],
            ),
            (f"{label}-preview", build_preview_required(first_request(version), LOCATION, "x")),
            (f"{label}-error", build_error_response(request, "EDM:ERR:0004", detail="none")),
            (f"{label}-query-error", build_error_response(request, "EDM:ERR:0008")),
        ]
    return answers


ANSWERS: Final = all_answers()


@pytest.mark.parametrize(("name", "document"), ANSWERS, ids=[n for n, _ in ANSWERS])
def test_built_answer_validates_against_the_official_schemas(name: str, document: bytes) -> None:
    assert schema_errors(document) == []


@pytest.mark.parametrize(
    ("built", "sample"),
    [
        (
            lambda: build_preview_required(
                first_request(EdmVersion.V1_2), LOCATION, "x", provider=PROVIDER_AGENT
            ),
            TWO_STEP / "EDM_Ferst_Response.xml",
        ),
        (
            lambda: build_evidence_response(
                second_request(EdmVersion.V1_2), evidence(), provider=PROVIDER_AGENT
            )[0],
            TWO_STEP / "EDM_Second_Response.xml",
        ),
        (
            lambda: build_evidence_response(
                second_request(EdmVersion.V2_0), evidence(), provider=PROVIDER_AGENT
            )[0],
            EDM_2_0 / "reference" / "messages" / "reponse.xml",
        ),
        (
            lambda: build_error_response(
                second_request(EdmVersion.V2_0), "EDM:ERR:0004", provider=PROVIDER_AGENT
            ),
            EDM_2_0 / "reference" / "messages" / "erreur.xml",
        ),
    ],
    ids=["v1.2-preview", "v1.2-evidence", "v2.0-evidence", "v2.0-error"],
)
def test_top_slots_are_those_of_the_samples(built: object, sample: object) -> None:
    assert callable(built)
    document = built()
    assert top_slots(document) == top_slots(sample.read_bytes())  # type: ignore[attr-defined]


def test_evidence_layout_per_version() -> None:
    """v1.2: the document directly in the list; v2.0: in a classified package."""
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}type"
    for version, path in (
        (EdmVersion.V1_2, ["rim:ExtrinsicObjectType"]),
        (EdmVersion.V2_0, ["rim:RegistryPackageType", "rim:ExtrinsicObjectType"]),
    ):
        body, _ = build_evidence_response(second_request(version), evidence())
        element = etree.fromstring(body)
        found = []
        for _ in path:
            listing = element.find(f"{{{RIM_NS}}}RegistryObjectList")
            assert listing is not None
            element = listing[0]
            found.append(element.get(xsi))
        assert found == path

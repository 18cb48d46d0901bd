"""Reading EDM QueryResponses: the real v2.0 captures, the v1.2 two-step exchange, the v2.0
reference error messages, the hand-made v2.0 corpus, and the EDM error code table."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import pytest
from lxml import etree

from integrations.oots.edm import (
    EDM_ERROR_CODES,
    EdmError,
    EdmParseError,
    EdmVersion,
    Evidence,
    LocalizedText,
    NaturalPerson,
    PreviewRequired,
    UnsupportedEdmVersion,
    parse_query_response,
)
from integrations.oots.edm.errors import (
    SEVERITY_ERROR,
    SEVERITY_PREVIEW_REQUIRED,
    code_for_exception_type,
)
from integrations.oots.edm.response import content_id
from integrations.oots.edm.wire import QUERY_NS, RS_NS
from tests.unit.test_oots_edm_samples import (
    EDM_1_0,
    EDM_2_0,
    REEL_FILES,
    SAMPLES_1_0,
    TWO_STEP,
    reel,
    rename_prefixes,
    ws_plugin_message,
)

MESSAGES: Final = EDM_2_0 / "reference" / "messages"
INCOMING: Final = EDM_2_0 / "incoming"
TWO_STEP_CID: Final = "bb39b56b-57e2-4e0b-98a4-70f5a8127b3c@it.nrw"
REFERENCE_PDF_CID: Final = "1a2b3c4d-0000-4000-8000-000000000003@pdf.oots.fr"
SESSION: Final = (
    "https://preview.space.example.com/requests?session=d36af8bc-fea6-4ee5-a32d-5bef82cdb071"
)


def answers_in_reel() -> list[str]:
    return [name for name, (_, _, root) in REEL_FILES.items() if root == "QueryResponse"]


# --- the real captures -----------------------------------------------------------------------


@pytest.mark.parametrize("name", answers_in_reel())
def test_every_real_response_is_read(name: str) -> None:
    message = reel(name)
    outcome = parse_query_response(message.body(), message.attachments())
    assert outcome.version is EdmVersion.V2_0
    assert isinstance(outcome, Evidence if message.action == "ExecuteQueryResponse" else EdmError)


def test_real_evidence_with_its_pdf() -> None:
    message = reel("reponseAvecPieceJointe.xml")
    evidence = parse_query_response(message.body(), message.attachments())
    assert isinstance(evidence, Evidence)
    assert evidence.content.startswith(b"%PDF-") and evidence.content.rstrip().endswith(b"%%EOF")
    assert evidence.mime_type == "application/pdf"
    assert evidence.content_id == "802edbd4-fdfb-4345-84bd-0b7f17549075@pdf.oots.fr"
    assert (evidence.filename, evidence.classification) == ("Evidence", "MainEvidence")
    assert evidence.response_id == "728c1aa1-5297-4d7c-9d7d-01fcce90075a"
    assert evidence.issue_datetime == datetime(2026, 8, 11, 9, 22, 22, 312000, tzinfo=UTC)
    metadata = evidence.metadata
    assert metadata.identifier == "f114a58d-3f5e-46f1-b067-d53f88c6619b"
    assert metadata.issuing_date == date(1970, 3, 3)
    assert metadata.issuing_authority is not None
    assert metadata.issuing_authority.identifier == "00000000000001"
    # the titles are separated by a stray "," in the capture (mixed content): both are read
    assert metadata.evidence_type_titles == (
        LocalizedText("Justificatif de test", "FR"),
        LocalizedText("Test evidence", "EN"),
    )
    assert isinstance(metadata.subject, NaturalPerson)
    assert (metadata.subject.family_name, metadata.subject.identifier) == ("Dupont", None)
    assert [(p.identifier, p.classification) for p in evidence.providers] == [
        ("00000000000001", "EP")
    ]


def test_real_error() -> None:
    message = reel("erreurObjetIntrouvable.xml")
    error = parse_query_response(message.body(), message.attachments())
    assert error == EdmError(
        code="EDM:ERR:0004",
        severity=SEVERITY_ERROR,
        message="Object not found",
        detail=None,
        exception_type="rs:ObjectNotFoundExceptionType",
        timestamp=datetime(2026, 8, 11, 9, 22, 24, 301000, tzinfo=UTC),
        version=EdmVersion.V2_0,
        request_id="urn:uuid:27e0872f-c4bf-43bd-8e33-0e19f7325f53",
        response_id="ebbd2e86-e0e3-47a5-8293-8fb17387c594",
    )


def test_real_responses_read_alike_under_other_prefixes() -> None:
    """The captures' prefixes are one generator's choice; other ones read the same."""
    renames = {
        "rim": "ns4",
        "query": "ns2",
        "rs": "ns3",
        "sdg": "ns6",
        "xlink": "ns7",
        "xsi": "ns1",
    }
    for name in answers_in_reel():
        message = reel(name)
        body = message.body()
        renamed = rename_prefixes(body, renames)
        assert renamed != body
        assert parse_query_response(renamed, message.attachments()) == parse_query_response(
            body, message.attachments()
        )


# --- the v1.2 two-step exchange ----------------------------------------------------------------


def test_first_answer_asks_for_a_preview() -> None:
    outcome = parse_query_response((TWO_STEP / "EDM_Ferst_Response.xml").read_bytes())
    assert outcome == PreviewRequired(
        location=SESSION,
        method="GET",
        description=(
            LocalizedText("Kies uw diploma.", "NL"),
            LocalizedText("Vă rugăm să selectați diploma dvs.", "RO"),
            LocalizedText("Please select your diploma.", "EN"),
        ),
        version=EdmVersion.V1_2,
        request_id="urn:uuid:4ffb5281-179d-4578-adf2-39fd13ccc797",
        response_id="530ad1e2-5eaf-4a9a-8192-227432eea95d",
    )
    assert isinstance(outcome, PreviewRequired)
    assert outcome.description_in("DA", "EN") == "Please select your diploma."
    assert outcome.description_in("DA") == "Kies uw diploma."


def test_second_request_carries_the_location_of_the_first_answer() -> None:
    answer = parse_query_response((TWO_STEP / "EDM_Ferst_Response.xml").read_bytes())
    assert isinstance(answer, PreviewRequired)
    second = etree.parse(str(TWO_STEP / "EDM_Second_Request.xml")).getroot()
    values = second.xpath(
        "r:Slot[@name='PreviewLocation']/r:SlotValue/r:Value/text()",
        namespaces={"r": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0"},
    )
    assert isinstance(values, list) and [str(v).strip() for v in values] == [answer.location]


def test_second_answer_is_the_evidence() -> None:
    content = b"<SecondaryEducationCompletion/>"
    evidence = parse_query_response(
        (TWO_STEP / "EDM_Second_Response.xml").read_bytes(), {f"cid:{TWO_STEP_CID}": content}
    )
    assert isinstance(evidence, Evidence)
    assert (evidence.content, evidence.mime_type, evidence.content_id) == (
        content,
        "application/xml",
        TWO_STEP_CID,
    )
    assert evidence.filename == "SecondaryEducationCompletion"
    assert evidence.version is EdmVersion.V1_2
    assert evidence.classification is None  # v1.2: no package, no classification
    assert evidence.request_id == "urn:uuid:cb6b247f-232a-4163-87ce-c3e49b148e0a"
    assert evidence.metadata.evidence_type_classification == (
        "https://sr.oots.tech.ec.europa.eu/evidencetypeclassifications/DE/"
        "17a2b329-5ae5-4de6-b360-db504fad0526"
    )
    assert evidence.metadata.conforms_to == (
        "https://sr.oots.tech.ec.europa.eu/datamodels/secondary-education-evidence-1.0.0"
    )
    assert evidence.metadata.issuing_date == date(2019, 5, 10)


@pytest.mark.parametrize("key", [TWO_STEP_CID, f"cid:{TWO_STEP_CID}", f"<{TWO_STEP_CID}>"])
def test_attachment_keys_are_content_ids_in_any_spelling(key: str) -> None:
    evidence = parse_query_response(
        (TWO_STEP / "EDM_Second_Response.xml").read_bytes(), {key: b"x"}
    )
    assert isinstance(evidence, Evidence) and evidence.content == b"x"


@pytest.mark.parametrize("attachments", [None, {}, {"cid:other@x": b"x"}])
def test_missing_attachment_is_an_unreadable_answer(attachments: dict[str, bytes] | None) -> None:
    with pytest.raises(EdmParseError, match=TWO_STEP_CID):
        parse_query_response((TWO_STEP / "EDM_Second_Response.xml").read_bytes(), attachments)


# --- the v2.0 reference messages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "exception_type"),
    [
        ("erreur.xml", "EDM:ERR:0004", "rs:ObjectNotFoundExceptionType"),
        ("erreurRequeteInvalide.xml", "EDM:ERR:0003", "rs:InvalidRequestExceptionType"),
        ("erreurCapaciteNonSupportee.xml", "EDM:ERR:0007", "rs:UnsupportedCapabilityExceptionType"),
        ("erreurExpiration.xml", "EDM:ERR:0005", "rs:TimeoutExceptionType"),
    ],
)
def test_reference_errors(name: str, code: str, exception_type: str) -> None:
    error = parse_query_response((MESSAGES / name).read_bytes())
    assert isinstance(error, EdmError)
    assert (error.code, error.exception_type, error.severity) == (
        code,
        exception_type,
        SEVERITY_ERROR,
    )
    assert error.message == EDM_ERROR_CODES[code].name
    assert error.timestamp == datetime(2026, 8, 6, 10, 0, tzinfo=UTC)
    assert error.version is EdmVersion.V2_0


def test_reference_evidence_with_the_attachment_of_its_envelope() -> None:
    """The PDF travels in ``reference/soap/reponse.soumission.xml``, base64 inside literal
    parentheses; a lenient decoder (the one MIME readers use) gets it."""
    envelope = etree.parse(str(EDM_2_0 / "reference" / "soap" / "reponse.soumission.xml"))
    pdf = {
        str(p.get("payloadId")): base64.b64decode(p.findtext("value") or "")
        for p in envelope.iter("payload")
    }[f"cid:{REFERENCE_PDF_CID}"]
    evidence = parse_query_response(
        (MESSAGES / "reponse.xml").read_bytes(), {REFERENCE_PDF_CID: pdf}
    )
    assert isinstance(evidence, Evidence)
    assert evidence.content.startswith(b"%PDF")
    assert (evidence.classification, evidence.version) == ("MainEvidence", EdmVersion.V2_0)


# --- the hand-made v2.0 corpus (``incoming/``, regression material) --------------------------


def incoming(name: str) -> Evidence | PreviewRequired | EdmError:
    message = ws_plugin_message((INCOMING / name).read_bytes())
    return parse_query_response(message.body(), message.attachments())


def test_preview_without_method_or_description_reads_as_get() -> None:
    outcome = incoming("erreurAutorisationRequise.xml")
    assert isinstance(outcome, PreviewRequired)
    assert (outcome.location, outcome.method, outcome.description) == (
        "https://previsualisation.example.si/espace?jeton=abc",
        "GET",
        (),
    )
    assert outcome.version is None  # that file has no SpecificationIdentifier slot


def test_preview_without_code_is_recognised_by_its_type() -> None:
    """``R-EDM-ERR-C026`` requires ``@code``; the file omits it: the type gives the code."""
    assert isinstance(incoming("erreurSansCode.xml"), PreviewRequired)


def test_a_preview_location_that_is_no_url_does_not_make_a_preview() -> None:
    error = incoming("erreurObjetIntrouvable.xml")
    assert isinstance(error, EdmError)
    assert error.code == "EDM:ERR:0004"
    assert error.detail == "No evidence found for the requested procedure"
    assert error.slots == (("PreviewLocation", "undefined"),)


def test_hand_made_evidence_without_metadata() -> None:
    evidence = incoming("reponseAvecPieceJointe.xml")
    assert isinstance(evidence, Evidence)
    assert evidence.mime_type == "application/octet-stream"  # no sdg:Distribution to say
    assert evidence.content == b"e2RhdGE6J3RydWN9"  # a placeholder, base64 once more


# --- more cases -------------------------------------------------------------------------------


def test_v1_0_answer_is_refused() -> None:
    error = (
        SAMPLES_1_0
        / "3 Example for requesting Secondary Education Completion Evidence"
        / "3.2 Step 2 Error Response - Education - full example.xml"
    )
    with pytest.raises(UnsupportedEdmVersion):
        parse_query_response(error.read_bytes())


def _error_body(
    exception: str, *, status: str = "Failure", version: str = "oots-edm:v2.0"
) -> bytes:
    return f"""<q:QueryResponse xmlns:q="{QUERY_NS}" xmlns:r="{RS_NS}"
        xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:4.0"
        xmlns:x="http://www.w3.org/2001/XMLSchema-instance" requestId="urn:uuid:1"
        status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:{status}">
      <rim:Slot name="SpecificationIdentifier"><rim:SlotValue x:type="rim:StringValueType">
        <rim:Value>{version}</rim:Value></rim:SlotValue></rim:Slot>{exception}</q:QueryResponse>""".encode()


def test_query_exception_type_is_resolved_through_its_namespace() -> None:
    body = _error_body(
        f'<r:Exception x:type="q:QueryExceptionType" severity="{SEVERITY_ERROR}" message="m"/>'
    )
    error = parse_query_response(body)
    assert isinstance(error, EdmError)
    assert (error.code, error.exception_type) == ("EDM:ERR:0008", "query:QueryExceptionType")


def test_preview_code_without_location_is_an_error() -> None:
    body = _error_body(
        '<r:Exception x:type="r:AuthorizationExceptionType" code="EDM:ERR:0002" '
        f'severity="{SEVERITY_PREVIEW_REQUIRED}"/>'
    )
    error = parse_query_response(body)
    assert isinstance(error, EdmError) and error.code == "EDM:ERR:0002"


def test_v1_2_post_method_is_kept() -> None:
    body = (
        (TWO_STEP / "EDM_Ferst_Response.xml")
        .read_bytes()
        .replace(b"<rim:Value>GET</rim:Value>", b"<rim:Value>post</rim:Value>")
    )
    outcome = parse_query_response(body)
    assert isinstance(outcome, PreviewRequired) and outcome.method == "POST"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (_error_body(""), EdmParseError),
        (_error_body("", status="Success"), EdmParseError),
        (_error_body("<r:Exception/>", version="oots-edm:v1.1"), UnsupportedEdmVersion),
        (b"<x/>", EdmParseError),
    ],
    ids=[
        "failure-without-exception",
        "success-without-evidence",
        "other-version",
        "not-a-response",
    ],
)
def test_unreadable_answers(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_query_response(body)


def test_content_id_spellings() -> None:
    assert content_id("cid:a@b") == content_id("<a@b>") == content_id(" CID:a@b ") == "a@b"


# --- the EDM error code table --------------------------------------------------------------


def code_list_rows() -> dict[str, tuple[str, str]]:
    """``EDMErrorCodes-CodeList.gc`` read with a recovering parser (the file is not
    well-formed: see ``errors.py``)."""
    path: Path = EDM_1_0 / "codelists" / "OOTS" / "EDMErrorCodes-CodeList.gc"
    with pytest.raises(etree.XMLSyntaxError):
        etree.parse(str(path))
    root = etree.parse(str(path), etree.XMLParser(recover=True)).getroot()
    rows: dict[str, tuple[str, str]] = {}
    for row in root.iter("Row"):
        values = {
            v.get("ColumnRef"): " ".join(
                (v.findtext("SimpleValue") or "".join(str(t) for t in v.itertext())).split()
            )
            for v in row.iter("Value")
        }
        rows[str(values["code"])] = (str(values["name-Value"]), str(values["name-Type"]))
    return rows


def test_error_table_is_the_code_list() -> None:
    rows = code_list_rows()
    assert sorted(rows) == sorted(EDM_ERROR_CODES) == [f"EDM:ERR:000{i}" for i in range(1, 9)]
    for code, (name, exception_type) in rows.items():
        entry = EDM_ERROR_CODES[code]
        assert entry.exception_type == exception_type
        # the malformed 0008 row swallows the closing tag into the text
        assert name.startswith(entry.name), (code, name)


def test_code_for_exception_type() -> None:
    for code, entry in EDM_ERROR_CODES.items():
        assert code_for_exception_type(entry.namespace, entry.local_name) == code
        assert code_for_exception_type(None, entry.local_name) == code
    assert code_for_exception_type(QUERY_NS, "AuthorizationExceptionType") is None
    assert code_for_exception_type(RS_NS, "SomethingElse") is None

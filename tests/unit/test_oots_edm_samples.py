"""Shared material of the EDM tests, and what the WS plugin captures in ``incoming/reel/`` are.

The conformance folder is read in place (``shared/conformance/``), never copied. The real
captures are Domibus 5.2.1 WS plugin SOAP 1.2 envelopes, not bare RegRep messages:

- ``retrieveMessageResponse``: the ebMS ``Messaging`` header in ``soap:Header`` and, in the
  body, one ``payload`` per AS4 part (unqualified elements, ``webservicePlugin-body.xsd``
  ``LargePayloadType``): ``@payloadId`` = ``cid:...``, ``@contentType``, and the part's bytes
  base64 in ``value``. The RegRep document is the payload of type ``application/x-ebrs+xml``;
  an evidence is another payload;
- ``listPendingMessagesResponse``: ``messageID`` elements (none when nothing is pending);
- ``submitResponse``: the ``messageID`` Domibus gave the submitted message and a
  ``messageEntityID``.

A payload's type is its ``@contentType``, else the ``MimeType`` part property of the ebMS
``PartInfo`` with the same ``cid:`` (the hand-made envelopes of ``incoming/`` omit
``@contentType``). Their ``CompressionType`` ``application/gzip`` part properties are ignored:
Domibus hands the backend decompressed parts, and those payloads are not gzip data anyway.

``ws_plugin_message`` reads them the way a backend of the WS plugin does. It lives in the
tests because the transport is not the EDM library's business.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import pytest
from lxml import etree

from integrations.oots.edm import (
    Address,
    EdmVersion,
    EvidenceProvider,
    EvidenceRequest,
    IntermediaryPlatform,
    LegalIdentifier,
    LegalPerson,
    LocalizedText,
    NaturalPerson,
    ProviderClassification,
    RequestedEvidenceType,
    Requester,
    Requirement,
    parse_query_request,
    parse_query_response,
)

CONFORMANCE: Final = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
EDM_1_0: Final = CONFORMANCE / "oots-edm-1.0"
EDM_2_0: Final = CONFORMANCE / "oots-edm-2.0"
TWO_STEP: Final = CONFORMANCE / "oots-edm-1.2-two-step"
REEL: Final = EDM_2_0 / "incoming" / "reel"
SAMPLES_1_0: Final = (
    EDM_1_0
    / "xml"
    / "Request-Response Samples"
    / "4.5.4 - OOTS-EDM XML Examples of the Evidence Exchange"
)

SOAP12_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
EBMS_NS: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
WSPLUGIN_NS: Final = "http://eu.domibus.wsplugin/"
EBRS_MIME: Final = "application/x-ebrs+xml"
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


# --- the WS plugin envelopes -------------------------------------------------------------------


@dataclass(frozen=True)
class WsPluginMessage:
    """What a WS plugin envelope holds, read by namespace URI (prefixes vary)."""

    operation: str
    action: str | None = None
    specification_id: str | None = None
    message_id: str | None = None
    #: content id (without ``cid:``) -> (content type, bytes)
    payloads: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)
    #: ``messageID`` children of the body operation (list/submit responses)
    message_ids: tuple[str, ...] = ()

    def body(self) -> bytes:
        """The RegRep document: the one ``application/x-ebrs+xml`` payload."""
        bodies = [data for kind, data in self.payloads.values() if kind == EBRS_MIME]
        assert len(bodies) == 1, f"{len(bodies)} RegRep payloads"
        return bodies[0]

    def attachments(self) -> dict[str, bytes]:
        return {cid: data for cid, (kind, data) in self.payloads.items() if kind != EBRS_MIME}


def strict_base64(value: str) -> bytes:
    """xs:base64Binary as a strict decoder reads it (whitespace allowed, nothing else)."""
    return base64.b64decode("".join(value.split()), validate=True)


def ws_plugin_message(envelope: bytes) -> WsPluginMessage:
    root = etree.fromstring(envelope, _PARSER)
    assert root.tag == f"{{{SOAP12_NS}}}Envelope"
    body = root.find(f"{{{SOAP12_NS}}}Body")
    assert body is not None and len(body) == 1
    operation = body[0]
    assert etree.QName(operation).namespace == WSPLUGIN_NS
    user_message = root.find(
        f"{{{SOAP12_NS}}}Header/{{{EBMS_NS}}}Messaging/{{{EBMS_NS}}}UserMessage"
    )
    action = spec = message_id = None
    part_types: dict[str, str | None] = {}
    if user_message is not None:
        action = user_message.findtext(f"{{{EBMS_NS}}}CollaborationInfo/{{{EBMS_NS}}}Action")
        message_id = user_message.findtext(f"{{{EBMS_NS}}}MessageInfo/{{{EBMS_NS}}}MessageId")
        for prop in user_message.iterfind(f"{{{EBMS_NS}}}MessageProperties/{{{EBMS_NS}}}Property"):
            if prop.get("name") == "SpecificationId":
                spec = prop.text
        for part in user_message.iterfind(f"{{{EBMS_NS}}}PayloadInfo/{{{EBMS_NS}}}PartInfo"):
            mime = [
                p.text
                for p in part.iterfind(f"{{{EBMS_NS}}}PartProperties/{{{EBMS_NS}}}Property")
                if p.get("name") == "MimeType"
            ]
            part_types[(part.get("href") or "").removeprefix("cid:")] = mime[0] if mime else None
    payloads: dict[str, tuple[str | None, bytes]] = {}
    for payload in operation.iterfind("payload"):
        cid = (payload.get("payloadId") or "").removeprefix("cid:")
        # The payload's own contentType, else the MimeType the ebMS PartInfo declares.
        kind = payload.get("contentType") or part_types.get(cid)
        payloads[cid] = (kind, strict_base64(payload.findtext("value") or ""))
    return WsPluginMessage(
        operation=etree.QName(operation).localname,
        action=action,
        specification_id=spec,
        message_id=message_id,
        payloads=payloads,
        message_ids=tuple(m.text or "" for m in operation.iterfind("messageID")),
    )


def reel(name: str) -> WsPluginMessage:
    return ws_plugin_message((REEL / name).read_bytes())


# --- requests the tests build ---------------------------------------------------------------------

ISSUED: Final = datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC)
REQUEST_ID: Final = uuid.UUID("6f0c2a59-8b1e-4d0a-9a51-0b7c3d1e2f40")
PREVIEW: Final = "https://preview.provider.example.de/requests?session=d36af8bc-fea6-4ee5"
RETURN: Final = "https://portal.example.dk/oots/return?exchange=6f0c2a59"

REQUESTER: Final = Requester(
    name="Københavns Kommune",
    identifier="64942212",
    scheme="urn:cef.eu:names:identifier:EAS:0184",
)
PROVIDER: Final = EvidenceProvider(
    identifier="DE73524311",
    scheme="urn:cef.eu:names:identifier:EAS:9930",
    name="Civil Registration Office Berlin I",
)
PERSON: Final = NaturalPerson(
    family_name="Jensen",
    given_name="Mette",
    date_of_birth=date(1985, 4, 12),
    identifier="DE/DK/123456789",
    level_of_assurance="High",
)
COMPANY: Final = LegalPerson(
    legal_name="Nordisk Eksempel AB",
    legal_person_identifier="SE/DK/556732170",
    identifiers=(LegalIdentifier("SE556732170701", "VAT"),),
    level_of_assurance="Substantial",
)
REPRESENTATIVE: Final = NaturalPerson(
    family_name="Lindqvist",
    given_name="Erik",
    date_of_birth=date(1970, 1, 31),
    identifier="SE/DK/197001319",
    level_of_assurance="Substantial",
)
#: Semantic Repository host of the live acceptance DSD (``common_services/dsd_*.xml``) and of
#: the v1.2 and v2.0 samples; the v1.0 Schematron still names ``sr.oots.tech.europa.eu``.
SR: Final = "https://sr.oots.tech.ec.europa.eu"
SR_V1_0: Final = "https://sr.oots.tech.europa.eu"


def evidence_type(sr: str = SR, *, transformation: bool = False) -> RequestedEvidenceType:
    return RequestedEvidenceType(
        identifier="41170824-15d9-4c16-984e-63b75b937b8c",
        classification=f"{sr}/evidencetypeclassifications/DE/ca8afed6-2dc0-422a-a931-d21c3d8d370e",
        titles=(LocalizedText("Certificate of Birth"), LocalizedText("Geburtsurkunde", "DE")),
        descriptions=(LocalizedText("Birth certificate issued by the civil registration office."),),
        format="application/pdf",
        conforms_to=f"{sr}/distributions/certificate-of-birth-1.0.0" if transformation else None,
        transformation=(
            f"{sr}/distributions/certificate-of-birth-1.0.0/age-of-majority"
            if transformation
            else None
        ),
    )


def requirement(sr: str = SR) -> Requirement:
    return Requirement(
        identifier=f"{sr}/requirements/315cfd75-6605-49c4-b0fe-799833b41099",
        names=(LocalizedText("Proof of birth"), LocalizedText("Bevis for fødsel", "DA")),
    )


def first_request(version: EdmVersion, *, sr: str = SR) -> EvidenceRequest:
    """A first request about a person, as the portal sends it (preview possible)."""
    return EvidenceRequest(
        request_id=REQUEST_ID,
        issue_datetime=ISSUED,
        procedure="R1",
        requirements=(requirement(sr),),
        evidence_type=evidence_type(sr),
        provider=PROVIDER,
        requester=REQUESTER,
        subject=PERSON,
        explicit_request_given=True,
        possibility_for_preview=True,
        version=version,
    )


def second_request(version: EdmVersion) -> EvidenceRequest:
    """The request after the preview: it carries the preview location (and v2.0 the return)."""
    return replace(
        first_request(version),
        request_id=uuid.UUID("0d6c7c3e-4b8a-4f55-8a57-9a0e5c1b2d33"),
        preview_location=PREVIEW,
        return_location=RETURN if version is EdmVersion.V2_0 else None,
    )


def company_request(version: EdmVersion) -> EvidenceRequest:
    """A request about a company, with its authorized representative."""
    return replace(
        first_request(version),
        subject=COMPANY,
        authorized_representative=REPRESENTATIVE,
        possibility_for_preview=False,
    )


def full_request(version: EdmVersion) -> EvidenceRequest:
    """Every optional part at once: intermediary, provider classification, person details."""
    return replace(
        second_request(version),
        intermediary=IntermediaryPlatform(
            name="Serviceplatformen",
            identifier="19435075",
            scheme="urn:cef.eu:names:identifier:EAS:0184",
        ),
        provider_classifications=(
            ProviderClassification(
                identifier="9be524c1-6efe-417a-974c-088f54f0bcae",
                scheme=f"{SR}/codelists/DE/federalStates",
                type="codelist",
                value="BE",
                value_expression=f"{SR}/codelists/DE/federalStates/2aae6c35",
                descriptions=(LocalizedText("Select the federal state of birth."),),
            ),
        ),
        subject=replace(
            PERSON,
            birth_name="Mette Holm",
            place_of_birth="Berlin",
            gender="Female",
            current_address=Address(
                admin_unit_level1="DK",
                full_address="Rådhuspladsen 1, 1550 København V",
                post_code="1550",
                post_city_name="København V",
                thoroughfare="Rådhuspladsen",
                locator_designator="1",
                admin_unit_level2="DK011",
            ),
        ),
    )


def all_requests() -> list[tuple[str, EvidenceRequest]]:
    """Every request shape the tests build, named, in both versions."""
    built = []
    for version in EdmVersion:
        label = version.value.rsplit(":", 1)[1]
        built += [
            (f"{label}-first", first_request(version)),
            (f"{label}-second", second_request(version)),
            (f"{label}-company", company_request(version)),
            (f"{label}-full", full_request(version)),
        ]
    built.append(
        (
            "v1.2-transformation",
            replace(
                first_request(EdmVersion.V1_2), evidence_type=evidence_type(transformation=True)
            ),
        )
    )
    return built


def rename_prefixes(document: bytes, renames: dict[str, str]) -> bytes:
    """The same document with other namespace prefixes (element names and QName values)."""
    text = document.decode()
    for old, new in renames.items():
        declaration = f"xmlns:{new}=" if new else "xmlns="
        text = text.replace(f"xmlns:{old}=", declaration)
        text = re.sub(rf"(?<![\w.:-]){old}:(?=[A-Za-z])", f"{new}:" if new else "", text)
    return text.encode()


# --- the real captures: what each file is -------------------------------------------------------

#: Every file of ``incoming/reel/``: body operation, ebMS action, and what its payload is.
REEL_FILES: Final = {
    "requete.xml": ("retrieveMessageResponse", "ExecuteQueryRequest", "QueryRequest"),
    "requete.demarcheInconnue.xml": (
        "retrieveMessageResponse",
        "ExecuteQueryRequest",
        "QueryRequest",
    ),
    "reponseAvecPieceJointe.xml": (
        "retrieveMessageResponse",
        "ExecuteQueryResponse",
        "QueryResponse",
    ),
    "erreurObjetIntrouvable.xml": ("retrieveMessageResponse", "ExceptionResponse", "QueryResponse"),
    "listeMessagesEnAttente.xml": ("listPendingMessagesResponse", None, None),
    "listeMessagesEnAttente.vide.xml": ("listPendingMessagesResponse", None, None),
    "soumissionMessage.xml": ("submitResponse", None, None),
}


def test_every_real_capture_is_accounted_for() -> None:
    assert sorted(p.name for p in REEL.iterdir()) == sorted(REEL_FILES)


@pytest.mark.parametrize("name", sorted(REEL_FILES))
def test_real_capture_kind(name: str) -> None:
    operation, action, payload_root = REEL_FILES[name]
    message = reel(name)
    assert (message.operation, message.action) == (operation, action)
    if payload_root is None:
        assert message.payloads == {}
        return
    assert message.specification_id == EdmVersion.V2_0.value
    root = etree.fromstring(message.body(), _PARSER)
    assert etree.QName(root).localname == payload_root


def test_pending_list_and_submit_answer_name_the_request_message() -> None:
    request_message_id = reel("requete.xml").message_id
    assert reel("listeMessagesEnAttente.xml").message_ids == (request_message_id,)
    assert reel("listeMessagesEnAttente.vide.xml").message_ids == ()
    assert reel("soumissionMessage.xml").message_ids == (request_message_id,)


def test_real_captures_pair_requests_and_answers() -> None:
    """The real answers name the real requests: the exchange is one, end to end."""
    found = parse_query_request(reel("requete.xml").body())
    unknown = parse_query_request(reel("requete.demarcheInconnue.xml").body())
    answer = reel("reponseAvecPieceJointe.xml")
    error = reel("erreurObjetIntrouvable.xml")
    evidence = parse_query_response(answer.body(), answer.attachments())
    failure = parse_query_response(error.body(), error.attachments())
    assert evidence.request_id == f"urn:uuid:{found.request_id}"
    assert failure.request_id == f"urn:uuid:{unknown.request_id}"
    assert (found.procedure, unknown.procedure) == ("00", "T3")


def test_reference_attachment_is_not_strict_base64() -> None:
    """``reference/soap/reponse.soumission.xml`` wraps the PDF's base64 in literal parentheses
    (the README says so): a strict decoder refuses it; only a lenient one gets the PDF."""
    root = etree.parse(str(EDM_2_0 / "reference" / "soap" / "reponse.soumission.xml"), _PARSER)
    values = {p.get("payloadId"): p.findtext("value") or "" for p in root.iter("payload")}
    pdf = values["cid:1a2b3c4d-0000-4000-8000-000000000003@pdf.oots.fr"].strip()
    assert pdf.startswith("(") and pdf.endswith(")")
    with pytest.raises(binascii.Error):
        strict_base64(pdf)
    assert base64.b64decode(pdf).startswith(b"%PDF")

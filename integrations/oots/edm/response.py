"""Reading an EDM evidence response (``query:QueryResponse``) into its outcome.

``parse_query_response`` returns ``Evidence``, ``PreviewRequired`` or ``EdmError``; it raises
``EdmParseError`` only when what arrived is not a readable response (see ``errors.py``).

How an answer is recognised
---------------------------
- ``@status`` ``...ResponseStatusType:Failure`` with an ``rs:Exception``: the error answer.
  It is ``PreviewRequired`` when the exception is ``EDM:ERR:0002`` (or, ``@code`` omitted,
  ``rs:AuthorizationExceptionType``) *and* carries a ``PreviewLocation`` slot starting with
  ``https://``; any other exception is an ``EdmError``. The hand-made v2.0 corpus has an
  ``EDM:ERR:0004`` carrying ``PreviewLocation`` = ``undefined``: that stays an error.
- any other status: the evidence answer. Each ``rim:RegistryObject`` of type
  ``rim:ExtrinsicObjectType`` (at any depth) is one document; its ``EvidenceMetadata`` slot
  holds ``sdg:Evidence`` and its ``rim:RepositoryItemRef/@xlink:href`` = ``cid:<id>`` names the
  attachment. ``attachments`` maps content ids (with or without ``cid:``/``<>``) to bytes.

``xsi:type`` values and every element name are resolved through namespace URIs, so the
varying prefixes of the real Domibus captures do not matter.

What differs between v1.2 and v2.0 in a response
------------------------------------------------
1. The evidence's place: v1.2 puts each ``rim:ExtrinsicObjectType`` directly in the top
   ``rim:RegistryObjectList`` (``oots-edm-1.2-two-step/EDM_Second_Response.xml``); v2.0 wraps
   them in a ``rim:RegistryPackageType`` object with its own ``rim:RegistryObjectList`` and
   classifies each (``rim:Classification classificationScheme="urn:fdc:oots:classification:edm"
   classificationNode="MainEvidence"``; ``oots-edm-2.0/reference/messages/reponse.xml`` and the
   real capture ``incoming/reel/reponseAvecPieceJointe.xml``). The main evidence is the one
   classified ``MainEvidence``, else the first; the others are ``Evidence.associated``.
2. The preview answer: v1.2 has ``PreviewLocation``, ``PreviewDescription`` (an
   ``InternationalStringValueType``) and ``PreviewMethod`` (``GET``/``POST``)
   (``EDM_Ferst_Response.xml``); v2.0 dropped ``PreviewMethod`` (``GET`` only; v2.0.1 TDD as
   reported by ``numerique-gouv/oots-france`` ``docs/versions_tdd.md``; the v2.0 preview
   message of the conformance folder, ``incoming/erreurAutorisationRequise.xml``, has no
   method either). A missing method reads as ``GET``.
3. ``SpecificationIdentifier``: ``oots-edm:v1.2`` / ``oots-edm:v2.0``. Another value is
   refused (``UnsupportedEdmVersion``); a missing one (the hand-made corpus) reads as None.

The ``EDM:ERR`` codes and exception types are the same in both versions (``errors.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from lxml import etree

from integrations.oots.edm import sdg
from integrations.oots.edm.errors import (
    PREVIEW_REQUIRED_CODE,
    EdmParseError,
    code_for_exception_type,
)
from integrations.oots.edm.model import (
    Agent,
    EdmError,
    EdmVersion,
    Evidence,
    EvidenceMetadata,
    LocalizedText,
    PreviewRequired,
    QueryOutcome,
)
from integrations.oots.edm.wire import (
    QUERY_NS,
    RIM_NS,
    RS_NS,
    SDG_NS,
    STATUS_FAILURE,
    XLINK_NS,
    child,
    children,
    localized_strings,
    parse_document,
    q,
    slot_elements,
    slot_string,
    slot_value,
    xsi_type,
)

MAIN_EVIDENCE = "MainEvidence"
_DEFAULT_MEDIA_TYPE = "application/octet-stream"


def parse_query_response(
    body: bytes, attachments: Mapping[str, bytes] | None = None
) -> QueryOutcome:
    """The outcome a ``query:QueryResponse`` reports (see the module docstring).

    ``attachments`` are the AS4 payloads other than the body, by content id; an evidence
    answer whose referenced attachment is not among them raises ``EdmParseError``.
    """
    root = parse_document(body, expected="QueryResponse")
    identifier = slot_string(root, "SpecificationIdentifier")
    version = None if identifier is None else EdmVersion.from_identifier(identifier)
    status = root.get("status")
    if status is None:
        raise EdmParseError("QueryResponse/@status is missing")
    if status == STATUS_FAILURE:
        return _read_exception(root, version)
    return _read_evidence(root, version, _by_content_id(attachments or {}))


def content_id(reference: str) -> str:
    """``cid:abc@x`` / ``<abc@x>`` / ``abc@x`` -> ``abc@x`` (RFC 2392 content id)."""
    reference = reference.strip()
    if reference[:4].lower() == "cid:":
        reference = reference[4:]
    return reference.strip("<>")


def _by_content_id(attachments: Mapping[str, bytes]) -> dict[str, bytes]:
    return {content_id(key): value for key, value in attachments.items()}


def _read_datetime(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- errors and preview ---------------------------------------------------------------------


def _type_name(namespace: str | None, local: str) -> str:
    """A prefix-independent spelling of an exception type: ``rs:X``/``query:X`` as the code
    list writes them, Clark notation for any other namespace."""
    if namespace == RS_NS:
        return f"rs:{local}"
    if namespace == QUERY_NS:
        return f"query:{local}"
    return local if namespace is None else f"{{{namespace}}}{local}"


def _read_exception(root: etree._Element, version: EdmVersion | None) -> QueryOutcome:
    exception = child(root, RS_NS, "Exception")
    if exception is None:
        raise EdmParseError("a Failure response without rs:Exception")
    resolved = xsi_type(exception)
    code = exception.get("code")
    if code is not None:
        code = code.strip()
    elif resolved is not None:
        code = code_for_exception_type(*resolved)
    request_id = root.get("requestId")
    response_id = slot_string(root, "EvidenceResponseIdentifier")
    location = slot_string(exception, "PreviewLocation")
    if code == PREVIEW_REQUIRED_CODE and location is not None and location.startswith("https://"):
        method = slot_string(exception, "PreviewMethod")
        return PreviewRequired(
            location=location,
            method=(method or "GET").upper(),
            description=tuple(
                LocalizedText(value, lang or "EN")
                for value, lang in localized_strings(slot_value(exception, "PreviewDescription"))
            ),
            version=version,
            request_id=request_id,
            response_id=response_id,
        )
    other_slots = tuple(
        (name, value)
        for item in children(exception, RIM_NS, "Slot")
        if (name := item.get("name")) and name != "Timestamp"
        if (value := slot_string(exception, name)) is not None
    )
    return EdmError(
        code=code,
        severity=exception.get("severity"),
        message=exception.get("message"),
        detail=exception.get("detail"),
        exception_type=None if resolved is None else _type_name(*resolved),
        timestamp=_read_datetime(slot_string(exception, "Timestamp")),
        version=version,
        request_id=request_id,
        response_id=response_id,
        slots=other_slots,
    )


# --- evidence ---------------------------------------------------------------------------------


def _extrinsic_objects(root: etree._Element) -> list[etree._Element]:
    found = []
    for candidate in root.iter(q(RIM_NS, "RegistryObject")):
        resolved = xsi_type(candidate)
        if (
            resolved is not None
            and resolved[1] == "ExtrinsicObjectType"
            and resolved[0]
            in (
                RIM_NS,
                None,
            )
        ):
            found.append(candidate)
    return found


def _classification(element: etree._Element) -> str | None:
    for item in children(element, RIM_NS, "Classification"):
        node = item.get("classificationNode")
        if node:
            return node.strip()
    return None


def _read_document(
    element: etree._Element,
    attachments: Mapping[str, bytes],
    *,
    version: EdmVersion | None,
    request_id: str | None,
    response_id: str | None,
    issue_datetime: datetime | None,
    providers: tuple[Agent, ...],
) -> Evidence:
    evidences = slot_elements(element, "EvidenceMetadata", SDG_NS, "Evidence")
    metadata = sdg.read_evidence_metadata(evidences[0]) if evidences else EvidenceMetadata()
    reference = child(element, RIM_NS, "RepositoryItemRef")
    href = None if reference is None else reference.get(q(XLINK_NS, "href"))
    if href is None or not href.strip().lower().startswith("cid:"):
        raise EdmParseError(
            f"evidence {element.get('id')} has no rim:RepositoryItemRef to a cid: attachment"
        )
    cid = content_id(href)
    if cid not in attachments:
        raise EdmParseError(f"the evidence attachment cid:{cid} was not supplied")
    return Evidence(
        content=attachments[cid],
        mime_type=metadata.format or _DEFAULT_MEDIA_TYPE,
        content_id=cid,
        filename=None if reference is None else reference.get(q(XLINK_NS, "title")),
        metadata=metadata,
        version=version,
        request_id=request_id,
        response_id=response_id,
        issue_datetime=issue_datetime,
        providers=providers,
        classification=_classification(element),
    )


def _read_evidence(
    root: etree._Element, version: EdmVersion | None, attachments: Mapping[str, bytes]
) -> Evidence:
    objects = _extrinsic_objects(root)
    if not objects:
        raise EdmParseError("a successful response without an evidence (rim:ExtrinsicObjectType)")
    issue_datetime = _read_datetime(slot_string(root, "IssueDateTime"))
    providers = tuple(
        sdg.read_agent(item) for item in slot_elements(root, "EvidenceProvider", SDG_NS, "Agent")
    )
    documents = [
        _read_document(
            element,
            attachments,
            version=version,
            request_id=root.get("requestId"),
            response_id=slot_string(root, "EvidenceResponseIdentifier"),
            issue_datetime=issue_datetime,
            providers=providers,
        )
        for element in objects
    ]
    main = next((d for d in documents if d.classification == MAIN_EVIDENCE), documents[0])
    others = tuple(d for d in documents if d is not main)
    return replace(main, associated=others) if others else main


__all__ = ["content_id", "parse_query_response"]

"""Building what an Evidence Provider answers (``query:QueryResponse``), v1.2 and v2.0.

The reading side is the platform's ``integrations/oots/edm/response.py``
(``parse_query_response``); this module is its mirror, for the simulated providers and the
tests, so it lives in the sandbox, not in the product: whatever is built here reads back to
the same ``Evidence``, ``PreviewRequired`` or ``EdmError``.

- ``build_evidence_response(request, evidence)`` -> ``(body, {content id: bytes})``: the
  successful answer and the AS4 attachments its ``rim:RepositoryItemRef``\\ s point at;
- ``build_preview_required(request, location, description, method)``: the first answer of a
  provider that needs a preview (``rs:AuthorizationExceptionType``, ``EDM:ERR:0002``, severity
  ``...:PreviewRequired``, slots ``PreviewLocation``, ``PreviewDescription`` and, v1.2 only,
  ``PreviewMethod``);
- ``build_error_response(request, code, message, exception_type)``: any ``EDM:ERR`` answer.

``request`` is the ``EvidenceRequest`` being answered, or a ``ResponseContext`` when the
request could not be read in full (a provider answering an unreadable request with
``EDM:ERR:0003`` knows little more than its id). The answer is written in the request's
version unless ``version=`` says otherwise.

Shapes, read from the conformance folder
----------------------------------------
- Top slots, in this order: ``SpecificationIdentifier``, ``EvidenceResponseIdentifier``
  (a UUID), then ``IssueDateTime`` + ``EvidenceProvider`` (a ``CollectionValueType`` Set of
  ``sdg:Agent`` classified ``EP``) for evidence, or ``ErrorProvider`` (``AnyValueType``, an
  ``sdg:Agent`` classified ``ERRP``) for errors; then ``EvidenceRequester`` (``AnyValueType``)
  (``oots-edm-1.2-two-step/EDM_Ferst_Response.xml``/``EDM_Second_Response.xml``,
  ``oots-edm-2.0/reference/messages/reponse.xml``/``erreur.xml``).
- Evidence at v1.2: each ``rim:ExtrinsicObjectType`` directly in ``rim:RegistryObjectList``;
  at v2.0 inside one ``rim:RegistryPackageType`` and classified
  (``urn:fdc:oots:classification:edm``: ``MainEvidence`` for the evidence, ``Annex`` by
  default for ``Evidence.associated`` documents without a classification of their own).
- ``sdg:Evidence`` follows ``SDG-GenericMetadataProfile-v1.0.0.xsd`` ``EvidenceType``:
  ``Identifier``, ``IsAbout`` (``NaturalPerson`` or ``LegalPerson``), ``IssuingAuthority``,
  ``IsConformantTo``, ``IssuingDate``, ``Distribution``: all required, so what the
  ``EvidenceMetadata`` leaves open is taken from the request (subject, evidence type) and the
  provider (issuing authority), the identifier is a new UUID and the date today's.
- The preview: ``PreviewDescription`` is an ``InternationalStringValueType``; ``PreviewMethod``
  is written at v1.2 only (v2.0 allows GET only and dropped the slot; a v2.0 preview with
  ``POST`` is refused).

Everything written validates against the RegRep 4 and SDG 1.0.0 schemas of
``oots-edm-1.0/xsd`` (``tests/unit/test_oots_responses.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final
from uuid import UUID, uuid4

from lxml import etree

from integrations.oots.edm import sdg
from integrations.oots.edm.errors import (
    EDM_ERROR_CODES,
    PREVIEW_REQUIRED_CODE,
    QUERY_NS,
    SEVERITY_ERROR,
    SEVERITY_PREVIEW_REQUIRED,
)
from integrations.oots.edm.model import (
    Address,
    Agent,
    EdmVersion,
    Evidence,
    EvidenceRequest,
    LegalPerson,
    LocalizedText,
    NaturalPerson,
    RequestedEvidenceType,
    Subject,
)
from integrations.oots.edm.response import MAIN_EVIDENCE, content_id
from integrations.oots.edm.wire import (
    NSMAP,
    RIM_NS,
    RS_NS,
    SDG_NS,
    SET_COLLECTION,
    STATUS_FAILURE,
    STATUS_SUCCESS,
    XLINK_NS,
    XML_LANG,
    XSI_TYPE,
    q,
)

#: ``rim:Classification/@classificationScheme`` of the v2.0 evidence package.
EDM_CLASSIFICATION_SCHEME: Final = "urn:fdc:oots:classification:edm"
#: Classification of an associated document that names none itself.
ANNEX: Final = "Annex"
PREVIEW_METHODS: Final = frozenset({"GET", "POST"})


@dataclass(frozen=True)
class ResponseContext:
    """What an answer needs to know about the request it answers.

    ``request_id`` is written as ``QueryResponse/@requestId`` exactly as given (the request's
    ``@id``, ``urn:uuid:...``). ``requester`` and ``provider`` become the ``EvidenceRequester``
    and ``EvidenceProvider``/``ErrorProvider`` agents (left out when None); ``subject`` and
    ``evidence_type`` fill the evidence metadata the provider leaves open.
    """

    request_id: str
    version: EdmVersion
    requester: Agent | None = None
    provider: Agent | None = None
    subject: Subject | None = None
    evidence_type: RequestedEvidenceType | None = None

    @classmethod
    def of(
        cls,
        request: EvidenceRequest,
        *,
        version: EdmVersion | None = None,
        provider: Agent | None = None,
    ) -> ResponseContext:
        """The context of ``request``; ``provider`` replaces the agent the request names
        (a provider knows its own address and country, the request does not carry them)."""
        requester = request.requester
        named = request.provider
        return cls(
            request_id=f"urn:uuid:{request.request_id}",
            version=version or request.version,
            requester=Agent(
                identifier=requester.identifier,
                scheme=requester.scheme,
                names=(LocalizedText(requester.name, requester.name_lang),),
            ),
            provider=provider
            or Agent(
                identifier=named.identifier,
                scheme=named.scheme,
                names=(LocalizedText(named.name, named.name_lang),),
            ),
            subject=request.subject,
            evidence_type=request.evidence_type,
        )


Answered = EvidenceRequest | ResponseContext


def _context(
    request: Answered, version: EdmVersion | None, provider: Agent | None
) -> ResponseContext:
    if isinstance(request, EvidenceRequest):
        return ResponseContext.of(request, version=version, provider=provider)
    if version is None and provider is None:
        return request
    return ResponseContext(
        request_id=request.request_id,
        version=version or request.version,
        requester=request.requester,
        provider=provider or request.provider,
        subject=request.subject,
        evidence_type=request.evidence_type,
    )


# --- the three answers -----------------------------------------------------------------------


def build_evidence_response(
    request: Answered,
    evidence: Evidence,
    *,
    version: EdmVersion | None = None,
    provider: Agent | None = None,
    response_id: UUID | None = None,
    issued: datetime | None = None,
) -> tuple[bytes, dict[str, bytes]]:
    """The successful answer carrying ``evidence`` (and its ``associated`` documents).

    Returns the ``query:QueryResponse`` and the attachments by content id (no ``cid:``), which
    the transport sends as AS4 payloads beside the body. ``evidence.metadata.format`` (else
    ``evidence.mime_type``) is the declared ``sdg:Distribution/sdg:Format``.
    """
    context = _context(request, version, provider)
    root = _root(STATUS_SUCCESS, context, response_id)
    _date_slot(root, "IssueDateTime", issued or datetime.now(UTC))
    if context.provider is not None:
        collection = _collection_slot(root, "EvidenceProvider")
        _write_agent(_element(collection), _with_classification(context.provider, "EP"))
    _requester_slot(root, context)
    objects = etree.SubElement(root, q(RIM_NS, "RegistryObjectList"))
    documents = [evidence, *evidence.associated]
    attachments: dict[str, bytes] = {}
    if context.version is EdmVersion.V2_0:
        package = etree.SubElement(objects, q(RIM_NS, "RegistryObject"))
        package.set(XSI_TYPE, "rim:RegistryPackageType")
        package.set("id", f"urn:uuid:{uuid4()}")
        objects = etree.SubElement(package, q(RIM_NS, "RegistryObjectList"))
    for index, document in enumerate(documents):
        cid = content_id(document.content_id)
        if not cid or cid in attachments:
            raise ValueError(f"every document needs its own content id, got {cid!r} twice")
        attachments[cid] = document.content
        classification = None
        if context.version is EdmVersion.V2_0:
            classification = document.classification or (MAIN_EVIDENCE if index == 0 else ANNEX)
        _write_document(objects, document, cid, classification, context)
    return _serialize(root), attachments


def build_preview_required(
    request: Answered,
    location: str,
    description: str | Sequence[LocalizedText] = (),
    method: str = "GET",
    *,
    version: EdmVersion | None = None,
    provider: Agent | None = None,
    response_id: UUID | None = None,
    timestamp: datetime | None = None,
    detail: str | None = "The server needs authorisation and preview on its side to process "
    "the request",
) -> bytes:
    """The answer asking for a preview at ``location`` (an ``https://`` URL).

    ``description`` is the ``PreviewDescription`` (one English string, or texts by language);
    ``method`` (``GET``/``POST``) is written at v1.2 only, v2.0 knowing GET alone.
    """
    context = _context(request, version, provider)
    if not location.startswith("https://"):
        raise ValueError("PreviewLocation must be an https:// URI (R-EDM-ERR-C005)")
    method = method.upper()
    if method not in PREVIEW_METHODS:
        raise ValueError(f"PreviewMethod must be GET or POST, not {method!r}")
    if context.version is EdmVersion.V2_0 and method != "GET":
        raise ValueError("EDM v2.0 has no PreviewMethod: the preview is reached with GET")
    texts = (LocalizedText(description),) if isinstance(description, str) else tuple(description)
    root = _root(STATUS_FAILURE, context, response_id)
    _error_provider_slot(root, context)
    _requester_slot(root, context)
    row = EDM_ERROR_CODES[PREVIEW_REQUIRED_CODE]
    exception = _exception(
        root,
        row.exception_type,
        code=row.code,
        message=row.name,
        severity=SEVERITY_PREVIEW_REQUIRED,
        detail=detail,
    )
    _date_slot(exception, "Timestamp", timestamp or datetime.now(UTC))
    _string_slot(exception, "PreviewLocation", location)
    if texts:
        _international_slot(exception, "PreviewDescription", texts)
    if context.version is EdmVersion.V1_2:
        _string_slot(exception, "PreviewMethod", method)
    return _serialize(root)


def build_error_response(
    request: Answered,
    code: str,
    message: str | None = None,
    exception_type: str | None = None,
    *,
    detail: str | None = None,
    severity: str = SEVERITY_ERROR,
    version: EdmVersion | None = None,
    provider: Agent | None = None,
    response_id: UUID | None = None,
    timestamp: datetime | None = None,
    slots: Iterable[tuple[str, str]] = (),
) -> bytes:
    """An error answer: ``rs:Exception`` with ``code`` (``EDM:ERR:000x``).

    ``exception_type`` (``rs:...Type`` / ``query:QueryExceptionType``) and ``message`` default
    to the code list's type and name for ``code``; an unknown code needs both. ``slots`` are
    further ``StringValueType`` slots of the exception (name, value).
    """
    context = _context(request, version, provider)
    row = EDM_ERROR_CODES.get(code)
    if exception_type is None or message is None:
        if row is None:
            raise ValueError(f"{code!r} is not in the EDM error code list: give its type")
        exception_type = exception_type or row.exception_type
        message = message or row.name
    root = _root(STATUS_FAILURE, context, response_id)
    _error_provider_slot(root, context)
    _requester_slot(root, context)
    exception = _exception(
        root, exception_type, code=code, message=message, severity=severity, detail=detail
    )
    _date_slot(exception, "Timestamp", timestamp or datetime.now(UTC))
    for name, value in slots:
        _string_slot(exception, name, value)
    return _serialize(root)


# --- writing ------------------------------------------------------------------------------------


def _root(status: str, context: ResponseContext, response_id: UUID | None) -> etree._Element:
    root = etree.Element(q(QUERY_NS, "QueryResponse"), nsmap=NSMAP)
    root.set("requestId", context.request_id)
    root.set("status", status)
    _string_slot(root, "SpecificationIdentifier", context.version.value)
    _string_slot(root, "EvidenceResponseIdentifier", str(response_id or uuid4()))
    return root


def _serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _format_datetime(moment: datetime) -> str:
    if moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    formatted = moment.isoformat()
    return formatted[:-6] + "Z" if formatted.endswith("+00:00") else formatted


def _slot(parent: etree._Element, name: str, value_type: str) -> etree._Element:
    slot = etree.SubElement(parent, q(RIM_NS, "Slot"), name=name)
    value = etree.SubElement(slot, q(RIM_NS, "SlotValue"))
    value.set(XSI_TYPE, f"rim:{value_type}")
    return value


def _value(parent: etree._Element, content: str) -> None:
    etree.SubElement(parent, q(RIM_NS, "Value")).text = content


def _string_slot(parent: etree._Element, name: str, content: str) -> None:
    _value(_slot(parent, name, "StringValueType"), content)


def _date_slot(parent: etree._Element, name: str, moment: datetime) -> None:
    _value(_slot(parent, name, "DateTimeValueType"), _format_datetime(moment))


def _international_slot(parent: etree._Element, name: str, texts: Sequence[LocalizedText]) -> None:
    value = etree.SubElement(
        _slot(parent, name, "InternationalStringValueType"), q(RIM_NS, "Value")
    )
    for text in texts:
        localized = etree.SubElement(value, q(RIM_NS, "LocalizedString"))
        localized.set(XML_LANG, text.lang)
        localized.set("value", text.value)


def _collection_slot(parent: etree._Element, name: str) -> etree._Element:
    value = _slot(parent, name, "CollectionValueType")
    value.set("collectionType", SET_COLLECTION)
    return value


def _element(collection: etree._Element) -> etree._Element:
    element = etree.SubElement(collection, q(RIM_NS, "Element"))
    element.set(XSI_TYPE, "rim:AnyValueType")
    return element


def _with_classification(agent: Agent, classification: str) -> Agent:
    return Agent(agent.identifier, agent.scheme, agent.names, agent.country, classification)


def _write_agent(parent: etree._Element, agent: Agent, local: str = "Agent") -> None:
    """An ``sdg:AgentType`` element: ``Identifier``, ``Name``+, ``Address``, ``Classification``."""
    element = sdg.sub(parent, local)
    sdg.write_identifier(element, agent.identifier, agent.scheme)
    names = agent.names or (LocalizedText(agent.identifier),)
    for name in names:
        sdg.sub(element, "Name", name.value, lang=name.lang)
    if agent.country is not None:
        sdg.write_address(element, "Address", Address(admin_unit_level1=agent.country))
    if agent.classification is not None:
        sdg.sub(element, "Classification", agent.classification)


def _error_provider_slot(root: etree._Element, context: ResponseContext) -> None:
    if context.provider is not None:
        _write_agent(
            _slot(root, "ErrorProvider", "AnyValueType"),
            _with_classification(context.provider, "ERRP"),
        )


def _requester_slot(root: etree._Element, context: ResponseContext) -> None:
    if context.requester is not None:
        requester = context.requester
        _write_agent(
            _slot(root, "EvidenceRequester", "AnyValueType"),
            Agent(requester.identifier, requester.scheme, requester.names),
        )


def _exception(
    root: etree._Element,
    exception_type: str,
    *,
    code: str,
    message: str,
    severity: str,
    detail: str | None,
) -> etree._Element:
    exception = etree.SubElement(root, q(RS_NS, "Exception"))
    # The code list writes the types with the usual prefixes; both are declared on the root.
    exception.set(XSI_TYPE, exception_type)
    exception.set("code", code)
    exception.set("message", message)
    exception.set("severity", severity)
    if detail:
        exception.set("detail", detail)
    return exception


def _write_subject(parent: etree._Element, subject: Subject) -> None:
    if isinstance(subject, NaturalPerson):
        sdg.write_person(parent, subject)
        # sdg:Evidence/sdg:IsAbout names a person sdg:NaturalPerson (PersonType).
        parent[-1].tag = q(SDG_NS, "NaturalPerson")
    elif isinstance(subject, LegalPerson):
        sdg.write_legal_person(parent, subject)


def _write_metadata(parent: etree._Element, document: Evidence, context: ResponseContext) -> None:
    metadata = document.metadata
    evidence = sdg.sub(parent, "Evidence")
    sdg.sub(evidence, "Identifier", metadata.identifier or str(uuid4()))
    subject = metadata.subject or context.subject
    if subject is None:
        raise ValueError("the evidence names no subject and the request gives none (IsAbout)")
    _write_subject(sdg.sub(evidence, "IsAbout"), subject)
    authority = metadata.issuing_authority or context.provider
    if authority is None:
        raise ValueError("the evidence needs an issuing authority (sdg:IssuingAuthority)")
    _write_agent(evidence, authority, "IssuingAuthority")
    requested = context.evidence_type
    classification = metadata.evidence_type_classification or (
        requested.classification if requested else None
    )
    titles = metadata.evidence_type_titles or (requested.titles if requested else ())
    if classification is None or not titles:
        raise ValueError("the evidence needs its evidence type classification and a title")
    conformant = sdg.sub(evidence, "IsConformantTo")
    sdg.sub(conformant, "EvidenceTypeClassification", classification)
    for title in titles:
        sdg.sub(conformant, "Title", title.value, lang=title.lang)
    sdg.sub(evidence, "IssuingDate", (metadata.issuing_date or date.today()).isoformat())
    distribution = sdg.sub(evidence, "Distribution")
    sdg.sub(distribution, "Format", metadata.format or document.mime_type)
    if metadata.conforms_to is not None:
        sdg.sub(distribution, "ConformsTo", metadata.conforms_to)


def _write_document(
    objects: etree._Element,
    document: Evidence,
    cid: str,
    classification: str | None,
    context: ResponseContext,
) -> None:
    element = etree.SubElement(objects, q(RIM_NS, "RegistryObject"))
    element.set(XSI_TYPE, "rim:ExtrinsicObjectType")
    element.set("id", f"urn:uuid:{uuid4()}")
    _write_metadata(_slot(element, "EvidenceMetadata", "AnyValueType"), document, context)
    if classification is not None:
        etree.SubElement(
            element,
            q(RIM_NS, "Classification"),
            id=f"urn:uuid:{uuid4()}",
            classificationScheme=EDM_CLASSIFICATION_SCHEME,
            classificationNode=classification,
        )
    reference = etree.SubElement(element, q(RIM_NS, "RepositoryItemRef"))
    reference.set(q(XLINK_NS, "href"), f"cid:{cid}")
    reference.set(q(XLINK_NS, "title"), document.filename or "Evidence")


def attachments_of(evidence: Evidence) -> Mapping[str, bytes]:
    """The attachments an evidence answer carries, by content id (as the builder returns)."""
    return {content_id(d.content_id): d.content for d in (evidence, *evidence.associated)}


__all__ = [
    "ANNEX",
    "EDM_CLASSIFICATION_SCHEME",
    "ResponseContext",
    "attachments_of",
    "build_error_response",
    "build_evidence_response",
    "build_preview_required",
]

"""The EDM evidence request (``query:QueryRequest``): building it, and reading it back.

``build_query_request`` writes an ``EvidenceRequest`` at the version it names;
``parse_query_request`` reads one (ours, or any v1.2/v2.0 request, for a simulated provider).

What is the same at v1.2 and v2.0
---------------------------------
Read from ``oots-edm-1.2-two-step/EDM_Ferst_Request.xml`` and ``EDM_Second_Request.xml``
(v1.2), ``oots-edm-2.0/reference/messages/requete.xml`` and the two real v2.0 requests base64
inside ``oots-edm-2.0/incoming/reel/requete*.xml``:

- namespaces: ``query``/``rim``/``rs`` are RegRep 4 (``urn:oasis:names:tc:ebxml-regrep:xsd:*:4.0``)
  and ``sdg`` is ``http://data.europa.eu/p4s`` in both versions;
- root ``query:QueryRequest/@id`` = ``urn:uuid:<uuid>``; ``query:ResponseOption
  returnType="LeafClassWithRepositoryItem"``; ``query:Query queryDefinition="DocumentQuery"``
  (``R-EDM-REQ-C024``/``C025``);
- the slot names, their order and types: ``SpecificationIdentifier`` (String),
  ``IssueDateTime`` (DateTime), ``Procedure``, ``PreviewLocation`` (String, second request
  only), ``PossibilityForPreview`` and ``ExplicitRequestGiven`` (Boolean), ``Requirements``
  (Set of ``sdg:Requirement``), ``EvidenceRequester`` (Set of ``sdg:Agent``),
  ``EvidenceProvider`` (Any: one ``sdg:Agent``), ``EvidenceProviderClassification`` (Set);
  inside ``query:Query``: ``NaturalPerson`` (``sdg:Person``) or ``LegalPerson``
  (``sdg:LegalPerson``), optionally ``AuthorizedRepresentative`` (``sdg:Person``), and
  ``EvidenceRequest`` (``sdg:DataServiceEvidenceType``);
- an intermediary platform as a second requester ``sdg:Agent`` with classification ``IP``
  (v2.0 ``requete.xml``; the v1.0 sample's comments allow it at v1.x as well).

What differs (v1.2 -> v2.0)
---------------------------
1. ``SpecificationIdentifier``: ``oots-edm:v1.2`` (``EDM_Ferst_Request.xml``) ->
   ``oots-edm:v2.0`` (``requete.xml``). The value must be one the provider's access service
   declares in the DSD (``sdg:ConformsTo``; ``common_services/dsd_data_services_fi.xml`` shows
   ``oots-edm:v2.0``), see ``model.choose_version``.
2. ``Procedure``: a ``rim:InternationalStringValueType`` holding
   ``rim:LocalizedString xml:lang="EN" value="T2"`` (``EDM_Ferst_Request.xml``; also the v1.0
   sample and ``R-EDM-REQ-S022`` in ``oots-edm-1.0/sch/EDM-REQ-S.sch``) -> a plain
   ``rim:StringValueType`` ``<rim:Value>T3</rim:Value>`` (``requete.xml`` and both real
   captures).
3. ``query:QueryRequest/@xml:lang`` (a preferred language): present at v1.x (the v1.0 sample
   writes ``xml:lang="EN"``; the v1.2 two-step files write ``xsi:lang="DE"``, which no schema
   defines) -> absent at v2.0 (``requete.xml``; v2.0 moves the language into
   ``sdg:DistributedAs/sdg:Language``). The builder writes neither: the attribute is optional
   at v1.2, and ``sdg:Language`` is not in the SDG schema of the conformance folder
   (``SDG-GenericMetadataProfile-v1.0.0.xsd``, ``EvidenceTypeDistributionType`` = ``Format``,
   ``ConformsTo``, ``Transformation``), so writing it would break schema validation.
4. ``sdg:DistributedAs/sdg:Transformation``: present at v1.2 (``EDM_Ferst_Request.xml``) ->
   gone at v2.0 (``requete.xml`` has ``Format`` and ``Language`` only). The builder refuses a
   transformation at v2.0.
5. The second request: ``PreviewLocation`` repeats the location of the preview answer in both
   versions (``EDM_Second_Request.xml``, the slot right after ``Procedure``). v2.0 adds a
   ``ReturnLocation`` slot (``https://``, where the provider sends the user back); no
   conformance file shows it. It is known from the v2.0.1 TDD as reported in
   ``numerique-gouv/oots-france`` ``docs/versions_tdd.md`` (rules ``R-EDM-REQ-S060``/``S061``/
   ``C120``, which pair it with ``PreviewLocation``). The builder writes it, right after
   ``PreviewLocation``, when the request carries one, and refuses it at v1.2.

Not written although the samples show them, because the SDG schema in the conformance folder
does not define them (the samples themselves fail that schema on exactly these elements):
``sdg:Requirement/sdg:Description`` (both versions; ``R-EDM-REQ-S038`` also limits a
requirement to ``Identifier`` and ``Name``) and the v1.2 person elements ``sdg:Nationality``,
``CountryOfBirth``, ``TownOfBirth``, ``CountryOfResidence``, ``PhoneNumber``, ``EmailAddress``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from uuid import UUID

from lxml import etree

from integrations.oots.edm import sdg
from integrations.oots.edm.errors import EdmParseError
from integrations.oots.edm.model import (
    EdmVersion,
    EvidenceProvider,
    EvidenceRequest,
    IntermediaryPlatform,
    LegalPerson,
    NaturalPerson,
    Requester,
    Subject,
)
from integrations.oots.edm.wire import (
    NSMAP,
    QUERY_NS,
    RIM_NS,
    SDG_NS,
    SET_COLLECTION,
    XML_LANG,
    XSI_TYPE,
    child,
    localized_strings,
    parse_document,
    q,
    required_text,
    slot_elements,
    slot_string,
    slot_value,
)

RESPONSE_OPTION: Final = "LeafClassWithRepositoryItem"
QUERY_DEFINITION: Final = "DocumentQuery"
#: Language of the v1.2 ``Procedure`` ``rim:LocalizedString`` (the code itself has none).
PROCEDURE_LANG: Final = "EN"


# --- building --------------------------------------------------------------------------------


def build_query_request(request: EvidenceRequest) -> bytes:
    """The ``query:QueryRequest`` for ``request``, UTF-8 with an XML declaration.

    Raises ``ValueError`` for a request the EDM forbids (see ``_check``).
    """
    _check(request)
    root = etree.Element(q(QUERY_NS, "QueryRequest"), nsmap=NSMAP)
    root.set("id", f"urn:uuid:{request.request_id}")
    _string_slot(root, "SpecificationIdentifier", request.version.value)
    _slot(root, "IssueDateTime", "DateTimeValueType").append(
        _value(_format_datetime(request.issue_datetime))
    )
    _procedure_slot(root, request)
    if request.preview_location is not None:
        _string_slot(root, "PreviewLocation", request.preview_location)
    if request.return_location is not None:
        _string_slot(root, "ReturnLocation", request.return_location)
    _boolean_slot(root, "PossibilityForPreview", request.possibility_for_preview)
    _boolean_slot(root, "ExplicitRequestGiven", request.explicit_request_given)
    requirements = _collection_slot(root, "Requirements")
    for requirement in request.requirements:
        sdg.write_requirement(_element(requirements), requirement)
    requesters = _collection_slot(root, "EvidenceRequester")
    _write_requester(_element(requesters), request.requester)
    if request.intermediary is not None:
        _write_intermediary(_element(requesters), request.intermediary)
    provider = request.provider
    sdg.write_agent(
        _slot(root, "EvidenceProvider", "AnyValueType"),
        identifier=provider.identifier,
        scheme=provider.scheme,
        name=provider.name,
        name_lang=provider.name_lang,
    )
    if request.provider_classifications:
        classifications = _collection_slot(root, "EvidenceProviderClassification")
        for concept in request.provider_classifications:
            sdg.write_provider_classification(_element(classifications), concept)
    etree.SubElement(root, q(QUERY_NS, "ResponseOption"), returnType=RESPONSE_OPTION)
    query = etree.SubElement(root, q(QUERY_NS, "Query"), queryDefinition=QUERY_DEFINITION)
    if isinstance(request.subject, NaturalPerson):
        sdg.write_person(_slot(query, "NaturalPerson", "AnyValueType"), request.subject)
    else:
        sdg.write_legal_person(_slot(query, "LegalPerson", "AnyValueType"), request.subject)
    if request.authorized_representative is not None:
        sdg.write_person(
            _slot(query, "AuthorizedRepresentative", "AnyValueType"),
            request.authorized_representative,
        )
    sdg.write_evidence_type(_slot(query, "EvidenceRequest", "AnyValueType"), request.evidence_type)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _check(request: EvidenceRequest) -> None:
    """Refuse what the EDM (schema, Schematron, version) does not allow."""
    if request.issue_datetime.utcoffset() is None:
        raise ValueError("issue_datetime must be timezone-aware (xsd:dateTime with offset)")
    if not request.requirements:
        raise ValueError("at least one requirement is needed (slot Requirements)")
    for requirement in request.requirements:
        if not requirement.names:
            raise ValueError(f"requirement {requirement.identifier} needs a name")
    if not request.evidence_type.titles:
        raise ValueError("the evidence type needs a title")
    for location, what in (
        (request.preview_location, "preview_location"),
        (request.return_location, "return_location"),
    ):
        if location is not None and not location.startswith("https://"):
            raise ValueError(f"{what} must be an https:// URI (R-EDM-REQ-C005)")
    if request.version is EdmVersion.V1_2 and request.return_location is not None:
        raise ValueError("ReturnLocation exists at EDM v2.0 only")
    if request.version is EdmVersion.V2_0 and request.evidence_type.transformation is not None:
        raise ValueError("EDM v2.0 removed sdg:Transformation from sdg:DistributedAs")
    subjects: list[Subject] = [request.subject]
    if request.authorized_representative is not None:
        subjects.append(request.authorized_representative)
    for subject in subjects:
        if subject.level_of_assurance is None:
            raise ValueError("the level of assurance is required (R-EDM-REQ-C036/C047/C058)")


def _format_datetime(moment: datetime) -> str:
    formatted = moment.isoformat()
    return formatted[:-6] + "Z" if formatted.endswith("+00:00") else formatted


def _slot(parent: etree._Element, name: str, value_type: str) -> etree._Element:
    """A new ``rim:Slot name=name`` with its ``rim:SlotValue xsi:type=rim:value_type``."""
    slot_element = etree.SubElement(parent, q(RIM_NS, "Slot"), name=name)
    value = etree.SubElement(slot_element, q(RIM_NS, "SlotValue"))
    value.set(XSI_TYPE, f"rim:{value_type}")
    return value


def _value(content: str) -> etree._Element:
    value = etree.Element(q(RIM_NS, "Value"))
    value.text = content
    return value


def _string_slot(parent: etree._Element, name: str, content: str) -> None:
    _slot(parent, name, "StringValueType").append(_value(content))


def _boolean_slot(parent: etree._Element, name: str, flag: bool) -> None:
    _slot(parent, name, "BooleanValueType").append(_value("true" if flag else "false"))


def _collection_slot(parent: etree._Element, name: str) -> etree._Element:
    value = _slot(parent, name, "CollectionValueType")
    value.set("collectionType", SET_COLLECTION)
    return value


def _element(collection: etree._Element) -> etree._Element:
    element = etree.SubElement(collection, q(RIM_NS, "Element"))
    element.set(XSI_TYPE, "rim:AnyValueType")
    return element


def _procedure_slot(root: etree._Element, request: EvidenceRequest) -> None:
    if request.version is EdmVersion.V1_2:
        value = etree.SubElement(
            _slot(root, "Procedure", "InternationalStringValueType"), q(RIM_NS, "Value")
        )
        localized = etree.SubElement(value, q(RIM_NS, "LocalizedString"))
        localized.set(XML_LANG, PROCEDURE_LANG)
        localized.set("value", request.procedure)
    else:
        _string_slot(root, "Procedure", request.procedure)


def _write_requester(parent: etree._Element, requester: Requester) -> None:
    sdg.write_agent(
        parent,
        identifier=requester.identifier,
        scheme=requester.scheme,
        name=requester.name,
        name_lang=requester.name_lang,
        country=requester.country,
        classification="ER",
    )


def _write_intermediary(parent: etree._Element, platform: IntermediaryPlatform) -> None:
    sdg.write_agent(
        parent,
        identifier=platform.identifier,
        scheme=platform.scheme,
        name=platform.name,
        name_lang=platform.name_lang,
        classification="IP",
    )


# --- reading ---------------------------------------------------------------------------------


def parse_query_request(body: bytes) -> EvidenceRequest:
    """The ``EvidenceRequest`` a v1.2 or v2.0 ``query:QueryRequest`` carries.

    Raises ``UnsupportedEdmVersion`` for another ``SpecificationIdentifier`` and
    ``EdmParseError`` for anything else that cannot be read. Elements the model does not carry
    are ignored, so ``parse_query_request(build_query_request(r)) == r`` holds for requests the
    platform builds, not for every sample.
    """
    root = parse_document(body, expected="QueryRequest")
    version = EdmVersion.from_identifier(slot_string(root, "SpecificationIdentifier"))
    query = child(root, QUERY_NS, "Query")
    if query is None:
        raise EdmParseError("query:Query is missing")
    requester, intermediary = _read_requesters(root)
    providers = slot_elements(root, "EvidenceProvider", SDG_NS, "Agent")
    if not providers:
        raise EdmParseError("slot EvidenceProvider has no sdg:Agent")
    evidence_types = slot_elements(query, "EvidenceRequest", SDG_NS, "DataServiceEvidenceType")
    if not evidence_types:
        raise EdmParseError("slot EvidenceRequest has no sdg:DataServiceEvidenceType")
    representatives = slot_elements(query, "AuthorizedRepresentative", SDG_NS, "Person")
    return EvidenceRequest(
        request_id=_read_request_id(root.get("id")),
        issue_datetime=_read_datetime(slot_string(root, "IssueDateTime")),
        procedure=_read_procedure(root),
        requirements=tuple(
            sdg.read_requirement(item)
            for item in slot_elements(root, "Requirements", SDG_NS, "Requirement")
        ),
        evidence_type=sdg.read_evidence_type(evidence_types[0]),
        provider=_read_provider(providers[0]),
        requester=requester,
        subject=_read_subject(query),
        explicit_request_given=_read_boolean(root, "ExplicitRequestGiven"),
        possibility_for_preview=_read_boolean(root, "PossibilityForPreview"),
        version=version,
        preview_location=slot_string(root, "PreviewLocation"),
        return_location=slot_string(root, "ReturnLocation"),
        intermediary=intermediary,
        authorized_representative=sdg.read_person(representatives[0]) if representatives else None,
        provider_classifications=tuple(
            sdg.read_provider_classification(item)
            for item in slot_elements(
                root, "EvidenceProviderClassification", SDG_NS, "EvidenceProviderClassification"
            )
        ),
    )


def _read_request_id(value: str | None) -> UUID:
    if value is None or not value.startswith("urn:uuid:"):
        raise EdmParseError(f"QueryRequest/@id must be urn:uuid:<uuid>, got {value!r}")
    try:
        return UUID(value.removeprefix("urn:uuid:"))
    except ValueError as exc:
        raise EdmParseError(f"QueryRequest/@id is not a UUID: {value!r}") from exc


def _read_datetime(value: str | None) -> datetime:
    if value is None:
        raise EdmParseError("slot IssueDateTime is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise EdmParseError(f"IssueDateTime is not an xsd:dateTime: {value!r}") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _read_procedure(root: etree._Element) -> str:
    """The procedure code, from either slot shape (see the module docstring, difference 2)."""
    value = slot_value(root, "Procedure")
    if value is None:
        raise EdmParseError("slot Procedure is missing")
    localized = localized_strings(value)
    if localized:
        return localized[0][0]
    return required_text(child(value, RIM_NS, "Value"), "slot Procedure")


def _read_boolean(root: etree._Element, name: str) -> bool:
    value = slot_string(root, name)
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise EdmParseError(f"slot {name} must hold an xs:boolean, got {value!r}")


def _read_requesters(root: etree._Element) -> tuple[Requester, IntermediaryPlatform | None]:
    agents = [
        sdg.read_agent(item) for item in slot_elements(root, "EvidenceRequester", SDG_NS, "Agent")
    ]
    if not agents:
        raise EdmParseError("slot EvidenceRequester has no sdg:Agent")
    requester = next((a for a in agents if a.classification == "ER"), agents[0])
    platform = next((a for a in agents if a.classification == "IP"), None)
    if requester.scheme is None or not requester.names:
        raise EdmParseError("the evidence requester needs an identifier scheme and a name")
    intermediary = None
    if platform is not None and platform.scheme is not None and platform.names:
        intermediary = IntermediaryPlatform(
            name=platform.names[0].value,
            identifier=platform.identifier,
            scheme=platform.scheme,
            name_lang=platform.names[0].lang,
        )
    return (
        Requester(
            name=requester.names[0].value,
            identifier=requester.identifier,
            scheme=requester.scheme,
            country=requester.country,
            name_lang=requester.names[0].lang,
        ),
        intermediary,
    )


def _read_provider(element: etree._Element) -> EvidenceProvider:
    agent = sdg.read_agent(element)
    if agent.scheme is None or not agent.names:
        raise EdmParseError("the evidence provider needs an identifier scheme and a name")
    return EvidenceProvider(
        identifier=agent.identifier,
        scheme=agent.scheme,
        name=agent.names[0].value,
        name_lang=agent.names[0].lang,
    )


def _read_subject(query: etree._Element) -> NaturalPerson | LegalPerson:
    persons = slot_elements(query, "NaturalPerson", SDG_NS, "Person")
    companies = slot_elements(query, "LegalPerson", SDG_NS, "LegalPerson")
    if len(persons) + len(companies) != 1:
        raise EdmParseError("query:Query needs exactly one NaturalPerson or LegalPerson slot")
    if persons:
        return sdg.read_person(persons[0])
    return sdg.read_legal_person(companies[0])

"""Reading the common services' ``query:QueryResponse`` answers into the model.

Every answer, success or not, is a RegRep ``query:QueryResponse`` (HTTP 200): ``@status``
``...:Success`` (or ``...:PartialSuccess``) carries a ``rim:RegistryObjectList`` whose
``rim:RegistryObject``\\ s hold one ``Requirement`` or ``DataServiceEvidenceType`` slot each;
``...:Failure`` carries an ``rs:Exception`` with its ``@code``. Names are bound to namespace
URIs (``integrations.oots.edm.wire``), never to prefixes; the live answers in
``oots-edm-2.0/common_services/`` declare nine prefixes, the TDD samples five, the simulated
services seven.

What a refusal means here (code lists ``EBErrorCodes``, ``DSDErrorCodes``):

- ``EB:ERR:0001`` (the result set is empty) and ``DSD:ERR:0001`` (no data services found):
  an empty result, not an error;
- ``DSD:ERR:0005``: ``AttributeNeeded``, read from its ``DataServiceEvidenceType``,
  ``JurisdictionDetermination`` and ``UserRequestedClassificationConcepts`` slots;
- ``DSD:ERR:0006`` (incorrect value for a requested parameter):
  ``CommonServicesAttributeValueUnknown``;
- any other code: ``CommonServicesRefused`` carrying it.

Anything that is not such a response (not XML, a DTD, another root, an unknown status, a
failure without ``rs:Exception``, a requirement without identifier, ...) raises
``CommonServicesBadAnswer``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, ParamSpec, TypeVar

from lxml import etree

from integrations.oots.common_services.model import (
    AttributeNeeded,
    ClassificationConcept,
    Distribution,
    EvidenceTypeInfo,
    ProviderInfo,
    ProvidersAnswer,
    ProvidersFound,
    ReferenceFramework,
    RequirementInfo,
)
from integrations.oots.edm import EdmParseError, LocalizedText
from integrations.oots.edm.sdg import read_localized, sdg_child, sdg_text
from integrations.oots.edm.wire import (
    RIM_NS,
    RS_NS,
    SDG_NS,
    STATUS_FAILURE,
    STATUS_SUCCESS,
    child,
    children,
    parse_document,
    required_text,
    slot_elements,
    text,
    xsi_type,
)
from integrations.oots.errors import (
    CommonServicesAttributeValueUnknown,
    CommonServicesBadAnswer,
    CommonServicesRefused,
)

STATUS_PARTIAL_SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:PartialSuccess"
EB_EMPTY: Final = "EB:ERR:0001"
DSD_NOT_FOUND: Final = "DSD:ERR:0001"
DSD_ADDITIONAL_INPUT: Final = "DSD:ERR:0005"
DSD_INCORRECT_VALUE: Final = "DSD:ERR:0006"
_DETAIL_LIMIT: Final = 300

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """The ``rs:Exception`` of a failure answer."""

    code: str | None
    message: str | None
    detail: str | None
    severity: str | None
    #: Local name of ``@xsi:type`` (``ObjectNotFoundExceptionType``), None when absent.
    exception_type: str | None
    element: etree._Element

    def describe(self) -> str:
        parts = [self.code or "no code", self.message or self.exception_type or "refused"]
        text_ = ": ".join(parts)
        if self.detail:
            text_ = f"{text_} ({self.detail})"
        return text_[:_DETAIL_LIMIT]


@dataclass(frozen=True)
class Success:
    """A success answer: its ``rim:RegistryObject``\\ s."""

    objects: tuple[etree._Element, ...]


def read_response(body: bytes) -> Success | Refusal:
    """The answer's outcome; ``CommonServicesBadAnswer`` when it is not a query response."""
    try:
        root = parse_document(body, expected="QueryResponse")
    except EdmParseError as exc:
        raise CommonServicesBadAnswer(str(exc)[:_DETAIL_LIMIT]) from exc
    status = (root.get("status") or "").strip()
    if status in (STATUS_SUCCESS, STATUS_PARTIAL_SUCCESS):
        listing = child(root, RIM_NS, "RegistryObjectList")
        objects = () if listing is None else tuple(children(listing, RIM_NS, "RegistryObject"))
        return Success(objects)
    if status == STATUS_FAILURE:
        exception = child(root, RS_NS, "Exception")
        if exception is None:
            raise CommonServicesBadAnswer("a failure answer without rs:Exception")
        kind = xsi_type(exception)
        return Refusal(
            code=_attribute(exception, "code"),
            message=_attribute(exception, "message"),
            detail=_attribute(exception, "detail"),
            severity=_attribute(exception, "severity"),
            exception_type=None if kind is None else kind[1],
            element=exception,
        )
    raise CommonServicesBadAnswer(f"unknown response status {status!r}"[:_DETAIL_LIMIT])


# --- Evidence Broker ----------------------------------------------------------------------


def parse_requirements(body: bytes) -> tuple[RequirementInfo, ...]:
    """``requirements-by-procedure-and-jurisdiction``; ``EB:ERR:0001`` reads as none."""
    answer = read_response(body)
    if isinstance(answer, Refusal):
        if answer.code == EB_EMPTY:
            return ()
        raise _refused(answer)
    return tuple(_guarded(_requirement, element) for element in _slot_values(answer, "Requirement"))


def parse_evidence_types(body: bytes) -> tuple[EvidenceTypeInfo, ...]:
    """``evidence-types-by-requirement-and-jurisdiction``; ``EB:ERR:0001`` reads as none."""
    answer = read_response(body)
    if isinstance(answer, Refusal):
        if answer.code == EB_EMPTY:
            return ()
        raise _refused(answer)
    found: list[EvidenceTypeInfo] = []
    for element in _slot_values(answer, "Requirement"):
        found.extend(_guarded(_evidence_types, element))
    return tuple(found)


def _requirement(element: etree._Element) -> RequirementInfo:
    return RequirementInfo(
        identifier=required_text(
            sdg_child(element, "Identifier"), "sdg:Requirement/sdg:Identifier"
        ),
        names=read_localized(element, "Name"),
        descriptions=read_localized(element, "Description"),
        frameworks=tuple(
            ReferenceFramework(
                identifier=sdg_text(framework, "Identifier") or "",
                titles=read_localized(framework, "Title"),
                procedures=tuple(
                    value
                    for related in children(framework, SDG_NS, "RelatedTo")
                    if (value := sdg_text(related, "Identifier")) is not None
                ),
                country=sdg_text(sdg_child(framework, "Jurisdiction"), "AdminUnitLevel1"),
                descriptions=read_localized(framework, "Description"),
            )
            for framework in children(element, SDG_NS, "ReferenceFramework")
        ),
    )


def _evidence_types(requirement: etree._Element) -> list[EvidenceTypeInfo]:
    requirement_id = required_text(
        sdg_child(requirement, "Identifier"), "sdg:Requirement/sdg:Identifier"
    )
    found: list[EvidenceTypeInfo] = []
    for listing in children(requirement, SDG_NS, "EvidenceTypeList"):
        list_country = sdg_text(sdg_child(listing, "Jurisdiction"), "AdminUnitLevel1")
        for evidence_type in children(listing, SDG_NS, "EvidenceType"):
            country = (
                sdg_text(sdg_child(evidence_type, "Jurisdiction"), "AdminUnitLevel1")
                or list_country
            )
            if country is None:
                raise EdmParseError("sdg:EvidenceType without a jurisdiction (country)")
            found.append(
                EvidenceTypeInfo(
                    classification=required_text(
                        sdg_child(evidence_type, "EvidenceTypeClassification"),
                        "sdg:EvidenceTypeClassification",
                    ),
                    country=country,
                    titles=read_localized(evidence_type, "Title"),
                    descriptions=read_localized(evidence_type, "Description"),
                    requirement_id=requirement_id,
                    list_id=sdg_text(listing, "Identifier"),
                    list_names=read_localized(listing, "Name"),
                )
            )
    return found


# --- Data Service Directory ------------------------------------------------------------------


def parse_providers(body: bytes, *, classification: str, country: str) -> ProvidersAnswer:
    """``dataservices-by-evidencetype-and-jurisdiction`` for ``classification`` in ``country``.

    ``DSD:ERR:0001`` reads as no provider; ``DSD:ERR:0005`` as ``AttributeNeeded``.
    """
    answer = read_response(body)
    if isinstance(answer, Refusal):
        if answer.code == DSD_NOT_FOUND:
            return ProvidersFound(())
        if answer.code == DSD_ADDITIONAL_INPUT:
            return _guarded(_attribute_needed, answer.element, classification, country)
        if answer.code == DSD_INCORRECT_VALUE:
            raise CommonServicesAttributeValueUnknown(
                answer.describe(), remote_code=answer.code, remote_message=answer.message
            )
        raise _refused(answer)
    providers: list[ProviderInfo] = []
    for element in _slot_values(answer, "DataServiceEvidenceType"):
        providers.extend(_guarded(_providers, element, country))
    return ProvidersFound(tuple(providers))


def _providers(element: etree._Element, query_country: str) -> list[ProviderInfo]:
    identifier = required_text(
        sdg_child(element, "Identifier"), "sdg:DataServiceEvidenceType/sdg:Identifier"
    )
    classification = required_text(
        sdg_child(element, "EvidenceTypeClassification"), "sdg:EvidenceTypeClassification"
    )
    distributed = tuple(_distribution(d) for d in children(element, SDG_NS, "DistributedAs"))
    titles = read_localized(element, "Title")
    descriptions = read_localized(element, "Description")
    assurance = sdg_text(element, "AuthenticationLevelOfAssurance")
    found: list[ProviderInfo] = []
    for service in children(element, SDG_NS, "AccessService"):
        service_id = sdg_child(service, "Identifier")
        publisher = sdg_child(service, "Publisher")
        if publisher is None:
            raise EdmParseError("sdg:AccessService without sdg:Publisher")
        publisher_id = sdg_child(publisher, "Identifier")
        names = read_localized(publisher, "Name")
        provider_id = required_text(publisher_id, "sdg:Publisher/sdg:Identifier")
        jurisdiction = sdg_child(publisher, "Jurisdiction")
        country = (
            sdg_text(jurisdiction, "AdminUnitLevel1")
            or sdg_text(sdg_child(publisher, "Address"), "AdminUnitLevel1")
            or query_country
        )
        found.append(
            ProviderInfo(
                provider_id=provider_id,
                provider_scheme=_scheme(publisher_id),
                provider_name=names[0].value if names else provider_id,
                country=country,
                access_service_id=required_text(service_id, "sdg:AccessService/sdg:Identifier"),
                access_service_scheme=_scheme(service_id),
                conforms_to=tuple(
                    value
                    for item in children(service, SDG_NS, "ConformsTo")
                    if (value := text(item)) is not None
                ),
                evidence_type_classification=classification,
                evidence_type_id=identifier,
                evidence_type_titles=titles,
                evidence_type_descriptions=descriptions,
                distributed_as=distributed,
                provider_name_lang=names[0].lang if names else "EN",
                provider_names=names,
                access_service_name=sdg_text(service, "Name"),
                level_of_assurance=assurance,
                jurisdiction_admin_l2=sdg_text(jurisdiction, "AdminUnitLevel2"),
                jurisdiction_admin_l3=sdg_text(jurisdiction, "AdminUnitLevel3"),
                classifications=tuple(
                    _concept(c) for c in children(publisher, SDG_NS, "ClassificationConcept")
                ),
            )
        )
    return found


def _attribute_needed(
    exception: etree._Element, classification: str, country: str
) -> AttributeNeeded:
    evidence_type = next(
        iter(
            slot_elements(exception, "DataServiceEvidenceType", SDG_NS, "DataServiceEvidenceType")
        ),
        None,
    )
    determination = next(
        iter(
            slot_elements(
                exception,
                "JurisdictionDetermination",
                SDG_NS,
                "EvidenceProviderJurisdictionDetermination",
            )
        ),
        None,
    )
    concepts = tuple(
        _concept(c)
        for c in slot_elements(
            exception,
            "UserRequestedClassificationConcepts",
            SDG_NS,
            "EvidenceProviderClassification",
        )
    )
    if determination is None and not concepts:
        raise EdmParseError(f"{DSD_ADDITIONAL_INPUT} names no attribute to ask the user for")
    context_id = jurisdiction_level = ""
    description: tuple[LocalizedText, ...] = ()
    if determination is not None:
        context_id = required_text(
            sdg_child(determination, "JurisdictionContextId"), "sdg:JurisdictionContextId"
        )
        jurisdiction_level = required_text(
            sdg_child(determination, "JurisdictionLevel"), "sdg:JurisdictionLevel"
        )
        description = read_localized(determination, "JurisdictionContext")
    return AttributeNeeded(
        evidence_type_classification=(
            sdg_text(evidence_type, "EvidenceTypeClassification") or classification
        ),
        country=country,
        context_id=context_id,
        description=description,
        jurisdiction_level=jurisdiction_level,
        evidence_type_id=sdg_text(evidence_type, "Identifier"),
        evidence_type_titles=()
        if evidence_type is None
        else read_localized(evidence_type, "Title"),
        classifications=concepts,
    )


def _distribution(element: etree._Element) -> Distribution:
    return Distribution(
        format=required_text(sdg_child(element, "Format"), "sdg:DistributedAs/sdg:Format"),
        conforms_to=sdg_text(element, "ConformsTo"),
        transformation=sdg_text(element, "Transformation"),
        languages=tuple(
            value
            for item in children(element, SDG_NS, "Language")
            if (value := text(item)) is not None
        ),
    )


def _concept(element: etree._Element) -> ClassificationConcept:
    supported = sdg_child(element, "SupportedValue")
    values: tuple[str, ...] = ()
    if supported is not None:
        values = tuple(
            value
            for item in supported.iterchildren()
            if isinstance(item.tag, str) and (value := text(item)) is not None
        )
    return ClassificationConcept(
        identifier=required_text(sdg_child(element, "Identifier"), "classification sdg:Identifier"),
        type=sdg_text(element, "Type"),
        value_expression=sdg_text(element, "ValueExpression"),
        descriptions=read_localized(element, "Description"),
        supported_values=values,
    )


# --- helpers ---------------------------------------------------------------------------------


def _slot_values(answer: Success, name: str) -> Iterator[etree._Element]:
    """The ``sdg:{name}`` of each registry object's ``{name}`` slot."""
    for registry_object in answer.objects:
        yield from slot_elements(registry_object, name, SDG_NS, name)


def _guarded(read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``read(...)``, its ``EdmParseError`` (a missing required element) as a bad answer."""
    try:
        return read(*args, **kwargs)
    except EdmParseError as exc:
        raise CommonServicesBadAnswer(str(exc)[:_DETAIL_LIMIT]) from exc


def _refused(answer: Refusal) -> CommonServicesRefused:
    return CommonServicesRefused(
        answer.describe(), remote_code=answer.code, remote_message=answer.message
    )


def _scheme(element: etree._Element | None) -> str:
    return "" if element is None else (element.get("schemeID") or "").strip()


def _attribute(element: etree._Element, name: str) -> str | None:
    value = element.get(name)
    if value is None:
        return None
    return " ".join(value.split()) or None


__all__ = [
    "Refusal",
    "Success",
    "parse_evidence_types",
    "parse_providers",
    "parse_requirements",
    "read_response",
]

"""Writing and reading the SDG elements (namespace ``http://data.europa.eu/p4s``).

Element order and cardinality follow ``oots-edm-1.0/xsd/sdg/SDG-GenericMetadataProfile-v1.0.0.xsd``
(``AgentType``, ``AddressType``, ``PersonType``, ``LegalPersonType``, ``RequirementType``,
``DataServiceEvidenceTypeType``, ``InformationConceptType``, ``EvidenceType``). Readers are
lenient: elements the model does not carry (the v1.2 ``sdg:Nationality``, a requirement's
``sdg:Description``, ...) are skipped, and every name is matched by namespace URI.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from integrations.oots.edm.errors import EdmParseError
from integrations.oots.edm.model import (
    Address,
    Agent,
    EvidenceMetadata,
    LegalIdentifier,
    LegalPerson,
    LocalizedText,
    NaturalPerson,
    ProviderClassification,
    RequestedEvidenceType,
    Requirement,
    Subject,
)
from integrations.oots.edm.wire import SDG_NS, child, children, q, required_text, text

# --- writing ---------------------------------------------------------------------------------


def sub(
    parent: etree._Element, local: str, value: str | None = None, **attrib: str
) -> etree._Element:
    """Append ``sdg:local`` to ``parent`` with text ``value`` and unqualified attributes."""
    element = etree.SubElement(parent, q(SDG_NS, local), attrib)
    if value is not None:
        element.text = value
    return element


def _sub_optional(parent: etree._Element, local: str, value: str | None) -> None:
    if value is not None:
        sub(parent, local, value)


def _localized(parent: etree._Element, local: str, texts: tuple[LocalizedText, ...]) -> None:
    for localized in texts:
        sub(parent, local, localized.value, lang=localized.lang)


def write_identifier(
    parent: etree._Element, value: str, scheme: str | None, local: str = "Identifier"
) -> None:
    if scheme is None:
        sub(parent, local, value)
    else:
        sub(parent, local, value, schemeID=scheme)


def write_address(parent: etree._Element, local: str, address: Address) -> None:
    element = sub(parent, local)
    _sub_optional(element, "FullAddress", address.full_address)
    _sub_optional(element, "LocatorDesignator", address.locator_designator)
    _sub_optional(element, "PostCode", address.post_code)
    _sub_optional(element, "PostCityName", address.post_city_name)
    _sub_optional(element, "Thoroughfare", address.thoroughfare)
    sub(element, "AdminUnitLevel1", address.admin_unit_level1)
    _sub_optional(element, "AdminUnitLevel2", address.admin_unit_level2)


def write_agent(
    parent: etree._Element,
    *,
    identifier: str,
    scheme: str,
    name: str,
    name_lang: str,
    country: str | None = None,
    classification: str | None = None,
) -> None:
    agent = sub(parent, "Agent")
    write_identifier(agent, identifier, scheme)
    sub(agent, "Name", name, lang=name_lang)
    if country is not None:
        write_address(agent, "Address", Address(admin_unit_level1=country))
    _sub_optional(agent, "Classification", classification)


def write_person(parent: etree._Element, person: NaturalPerson) -> None:
    element = sub(parent, "Person")
    _sub_optional(element, "LevelOfAssurance", person.level_of_assurance)
    if person.identifier is not None:
        write_identifier(element, person.identifier, person.identifier_scheme)
    sub(element, "FamilyName", person.family_name)
    sub(element, "GivenName", person.given_name)
    sub(element, "DateOfBirth", person.date_of_birth.isoformat())
    _sub_optional(element, "BirthName", person.birth_name)
    _sub_optional(element, "PlaceOfBirth", person.place_of_birth)
    if person.current_address is not None:
        write_address(element, "CurrentAddress", person.current_address)
    _sub_optional(element, "Gender", person.gender)


def write_legal_person(parent: etree._Element, person: LegalPerson) -> None:
    element = sub(parent, "LegalPerson")
    _sub_optional(element, "LevelOfAssurance", person.level_of_assurance)
    for identifier in person.identifiers:
        write_identifier(element, identifier.value, identifier.scheme)
    if person.legal_person_identifier is not None:
        write_identifier(element, person.legal_person_identifier, "eidas", "LegalPersonIdentifier")
    sub(element, "LegalName", person.legal_name)
    if person.registered_address is not None:
        write_address(element, "RegisteredAddress", person.registered_address)


def write_requirement(parent: etree._Element, requirement: Requirement) -> None:
    element = sub(parent, "Requirement")
    sub(element, "Identifier", requirement.identifier)
    _localized(element, "Name", requirement.names)


def write_evidence_type(parent: etree._Element, evidence_type: RequestedEvidenceType) -> None:
    element = sub(parent, "DataServiceEvidenceType")
    sub(element, "Identifier", evidence_type.identifier)
    sub(element, "EvidenceTypeClassification", evidence_type.classification)
    _localized(element, "Title", evidence_type.titles)
    _localized(element, "Description", evidence_type.descriptions)
    distribution = sub(element, "DistributedAs")
    sub(distribution, "Format", evidence_type.format)
    _sub_optional(distribution, "ConformsTo", evidence_type.conforms_to)
    _sub_optional(distribution, "Transformation", evidence_type.transformation)


def write_provider_classification(parent: etree._Element, concept: ProviderClassification) -> None:
    element = sub(parent, "EvidenceProviderClassification")
    write_identifier(element, concept.identifier, concept.scheme)
    sub(element, "Type", concept.type)
    _sub_optional(element, "ValueExpression", concept.value_expression)
    _localized(element, "Description", concept.descriptions)
    sub(sub(element, "SupportedValue"), "StringValue", concept.value)


# --- reading ---------------------------------------------------------------------------------


def sdg_child(element: etree._Element | None, local: str) -> etree._Element | None:
    return child(element, SDG_NS, local)


def sdg_text(element: etree._Element | None, local: str) -> str | None:
    return text(sdg_child(element, local))


def read_localized(element: etree._Element, local: str) -> tuple[LocalizedText, ...]:
    found: list[LocalizedText] = []
    for item in children(element, SDG_NS, local):
        value = text(item)
        if value is not None:
            found.append(LocalizedText(value, item.get("lang") or "EN"))
    return tuple(found)


def read_date(value: str | None, what: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise EdmParseError(f"{what} is not an xsd:date: {value!r}") from exc


def read_required_date(element: etree._Element | None, what: str) -> date:
    value = read_date(required_text(element, what), what)
    if value is None:  # pragma: no cover - required_text never returns None
        raise EdmParseError(f"{what} is missing")
    return value


def read_address(element: etree._Element | None) -> Address | None:
    if element is None:
        return None
    country = sdg_text(element, "AdminUnitLevel1")
    if country is None:
        return None
    return Address(
        admin_unit_level1=country,
        full_address=sdg_text(element, "FullAddress"),
        locator_designator=sdg_text(element, "LocatorDesignator"),
        post_code=sdg_text(element, "PostCode"),
        post_city_name=sdg_text(element, "PostCityName"),
        thoroughfare=sdg_text(element, "Thoroughfare"),
        admin_unit_level2=sdg_text(element, "AdminUnitLevel2"),
    )


def read_agent(element: etree._Element) -> Agent:
    identifier = sdg_child(element, "Identifier")
    address = read_address(sdg_child(element, "Address"))
    return Agent(
        identifier=required_text(identifier, "sdg:Agent/sdg:Identifier"),
        scheme=None if identifier is None else identifier.get("schemeID"),
        names=read_localized(element, "Name"),
        country=None if address is None else address.admin_unit_level1,
        classification=sdg_text(element, "Classification"),
    )


def read_person(element: etree._Element) -> NaturalPerson:
    identifier = sdg_child(element, "Identifier")
    return NaturalPerson(
        family_name=required_text(sdg_child(element, "FamilyName"), "sdg:FamilyName"),
        given_name=required_text(sdg_child(element, "GivenName"), "sdg:GivenName"),
        date_of_birth=read_required_date(sdg_child(element, "DateOfBirth"), "sdg:DateOfBirth"),
        identifier=text(identifier),
        identifier_scheme=(identifier.get("schemeID") if identifier is not None else None)
        or "eidas",
        level_of_assurance=sdg_text(element, "LevelOfAssurance"),
        birth_name=sdg_text(element, "BirthName"),
        place_of_birth=sdg_text(element, "PlaceOfBirth"),
        current_address=read_address(sdg_child(element, "CurrentAddress")),
        gender=sdg_text(element, "Gender"),
    )


def read_legal_person(element: etree._Element) -> LegalPerson:
    identifiers = tuple(
        LegalIdentifier(value, item.get("schemeID") or "")
        for item in children(element, SDG_NS, "Identifier")
        if (value := text(item)) is not None
    )
    return LegalPerson(
        legal_name=required_text(sdg_child(element, "LegalName"), "sdg:LegalName"),
        legal_person_identifier=sdg_text(element, "LegalPersonIdentifier"),
        identifiers=identifiers,
        level_of_assurance=sdg_text(element, "LevelOfAssurance"),
        registered_address=read_address(sdg_child(element, "RegisteredAddress")),
    )


def read_requirement(element: etree._Element) -> Requirement:
    return Requirement(
        identifier=required_text(
            sdg_child(element, "Identifier"), "sdg:Requirement/sdg:Identifier"
        ),
        names=read_localized(element, "Name"),
    )


def read_evidence_type(element: etree._Element) -> RequestedEvidenceType:
    distribution = sdg_child(element, "DistributedAs")
    return RequestedEvidenceType(
        identifier=required_text(
            sdg_child(element, "Identifier"), "sdg:DataServiceEvidenceType/sdg:Identifier"
        ),
        classification=required_text(
            sdg_child(element, "EvidenceTypeClassification"), "sdg:EvidenceTypeClassification"
        ),
        titles=read_localized(element, "Title"),
        format=required_text(sdg_child(distribution, "Format"), "sdg:DistributedAs/sdg:Format"),
        descriptions=read_localized(element, "Description"),
        conforms_to=sdg_text(distribution, "ConformsTo"),
        transformation=sdg_text(distribution, "Transformation"),
    )


def read_provider_classification(element: etree._Element) -> ProviderClassification:
    identifier = sdg_child(element, "Identifier")
    supported = sdg_child(element, "SupportedValue")
    value = None
    if supported is not None:
        value = next((text(item) for item in supported.iterchildren() if text(item)), None)
    return ProviderClassification(
        identifier=required_text(identifier, "sdg:EvidenceProviderClassification/sdg:Identifier"),
        type=sdg_text(element, "Type") or "",
        value=value or "",
        scheme=None if identifier is None else identifier.get("schemeID"),
        value_expression=sdg_text(element, "ValueExpression"),
        descriptions=read_localized(element, "Description"),
    )


def read_subject(is_about: etree._Element | None) -> Subject | None:
    """The person or company an ``sdg:Evidence/sdg:IsAbout`` names."""
    person = sdg_child(is_about, "NaturalPerson")
    if person is not None:
        return read_person(person)
    company = sdg_child(is_about, "LegalPerson")
    if company is not None:
        return read_legal_person(company)
    return None


def read_evidence_metadata(element: etree._Element) -> EvidenceMetadata:
    conformant = sdg_child(element, "IsConformantTo")
    distribution = sdg_child(element, "Distribution")
    authority = sdg_child(element, "IssuingAuthority")
    return EvidenceMetadata(
        identifier=sdg_text(element, "Identifier"),
        evidence_type_classification=sdg_text(conformant, "EvidenceTypeClassification"),
        evidence_type_titles=() if conformant is None else read_localized(conformant, "Title"),
        issuing_authority=None if authority is None else read_agent(authority),
        issuing_date=read_date(sdg_text(element, "IssuingDate"), "sdg:IssuingDate"),
        format=sdg_text(distribution, "Format"),
        conforms_to=sdg_text(distribution, "ConformsTo"),
        subject=read_subject(sdg_child(element, "IsAbout")),
    )

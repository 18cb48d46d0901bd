"""The simulated OOTS common services: Evidence Broker and Data Service Directory queries.

``GET <base>/rest/search?queryId=...`` (RegRep 4 REST binding), answered with a
``query:QueryResponse`` shaped like the acceptance-environment captures in
``oots-edm-2.0/common_services/`` (same root, same namespace declarations, ``rim:Slot`` names,
``sdg`` elements and order). As the real service does, every answer is HTTP 200 with
``Content-Type: application/x-ebrs+xml`` and a ``digest: SHA-256=...`` header: success or
failure is the body's ``@status``, a refusal is an ``rs:Exception`` with its code. The JWS
``oots-response-sig`` header of the real service is not produced. With ``Accept-Version:
oots-cs:v2.0`` the answer carries the ``SpecificationIdentifier`` slot ``oots-cs:v2.0``; without
it, the v1.0 form without that slot (as the real service answers).

Queries (ids and parameters as the TDD chapters 3.1.4/3.2.4 name them):

- ``urn:fdc:oots:eb:ebxml-regrep:queries:requirements-by-procedure-and-jurisdiction``,
  ``procedure-id`` and ``country-code`` (both optional; the procedure's country, ``DK`` here):
  one ``Requirement`` slot per requirement with its ``sdg:ReferenceFramework``\\ s;
  nothing found -> ``EB:ERR:0001``;
- ``urn:fdc:oots:eb:ebxml-regrep:queries:evidence-types-by-requirement-and-jurisdiction``,
  ``requirement-id`` (required) and ``country-code`` (the provider country): the requirement
  with one ``sdg:EvidenceTypeList`` per country; unknown requirement -> ``EB:ERR:0002``, none
  for the country -> ``EB:ERR:0001``;
- ``urn:fdc:oots:dsd:ebxml-regrep:queries:dataservices-by-evidencetype-and-jurisdiction``,
  ``evidence-type-classification`` and ``country-code`` (required), ``specification``
  (an EDM version: only access services conforming to it), ``jurisdiction-admin-l2`` (with
  ``jurisdiction-context-id``) for an evidence type whose provider depends on the user's
  region: one ``DataServiceEvidenceType`` slot, one ``sdg:AccessService`` per provider (two
  for the Swedish degree certificate: the user picks). A region needed but not given ->
  ``DSD:ERR:0005`` with the ``DataServiceEvidenceType`` and ``JurisdictionDetermination``
  slots (the additional attribute to ask the user for); an unknown region -> ``DSD:ERR:0006``.

Unknown or missing ``queryId``: ``EB:ERR:0007`` under ``/eb/rest/search``, else
``DSD:ERR:0004``; missing required parameters: ``EB:ERR:0003``/``DSD:ERR:0003``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from lxml import etree

from integrations.oots.edm import LocalizedText
from integrations.oots.edm.errors import SEVERITY_ERROR
from integrations.oots.edm.wire import (
    QUERY_NS,
    RIM_NS,
    RS_NS,
    SDG_NS,
    STATUS_FAILURE,
    STATUS_SUCCESS,
    XSI_TYPE,
    q,
)
from serviceplatform.sandbox.oots_network import (
    ACCESS_SERVICE_SCHEME,
    EvidenceTypeSpec,
    Network,
    Procedure,
    ProviderSpec,
    RequirementSpec,
)

QUERY_REQUIREMENTS: Final = (
    "urn:fdc:oots:eb:ebxml-regrep:queries:requirements-by-procedure-and-jurisdiction"
)
QUERY_EVIDENCE_TYPES: Final = (
    "urn:fdc:oots:eb:ebxml-regrep:queries:evidence-types-by-requirement-and-jurisdiction"
)
QUERY_DATA_SERVICES: Final = (
    "urn:fdc:oots:dsd:ebxml-regrep:queries:dataservices-by-evidencetype-and-jurisdiction"
)
CS_SPECIFICATION: Final = "oots-cs:v2.0"
EBRS_MEDIA_TYPE: Final = "application/x-ebrs+xml"
#: The DSD's "ask the user" severity, spelled with ``.ec.`` as the v1.2/v2.0 EDM severities are.
SEVERITY_ADDITIONAL_INPUT: Final = (
    "urn:sr.oots.tech.ec.europa.eu:codes:ErrorSeverity:DSDErrorResponse:AdditionalInput"
)
#: The namespace declarations of the real answers' root, in their order.
CAPTURE_NSMAP: Final[dict[str, str]] = {
    "lcm": "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:4.0",
    "sdg": SDG_NS,
    "xlink": "http://www.w3.org/1999/xlink",
    "rs": RS_NS,
    "query": QUERY_NS,
    "spi": "urn:oasis:names:tc:ebxml-regrep:xsd:spi:4.0",
    "rim": RIM_NS,
}
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_PROCEDURE: Final = re.compile(r"[A-Z]+[1-9][0-9]*")
_LEVEL_OF_ASSURANCE: Final = "Substantial"
PUBLISHER_DESCRIPTION: Final = "Simulated evidence provider of the serviceplatform sandbox."

Service = Literal["eb", "dsd"] | None


class _Refusal(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        detail: str,
        *,
        exception_type: str = "rs:ObjectNotFoundExceptionType",
        severity: str = SEVERITY_ERROR,
        slots: Sequence[etree._Element] = (),
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail
        self.exception_type, self.severity, self.slots = exception_type, severity, slots


def search(
    network: Network,
    params: Mapping[str, Sequence[str]],
    *,
    service: Service = None,
    accept_version: str | None = None,
) -> bytes:
    """The answer to one ``/rest/search`` query (always a ``query:QueryResponse``)."""
    versioned = (accept_version or "").strip() == CS_SPECIFICATION
    values = {name: items[0].strip() for name, items in params.items() if items}
    query_id = values.get("queryId", "")
    try:
        if query_id == QUERY_REQUIREMENTS and service != "dsd":
            objects = _requirements(network, values)
        elif query_id == QUERY_EVIDENCE_TYPES and service != "dsd":
            objects = _evidence_types(network, values)
        elif query_id == QUERY_DATA_SERVICES and service != "eb":
            objects = _data_services(network, values)
        elif service == "eb":
            raise _Refusal(
                "EB:ERR:0007",
                "The requested Query does not exist",
                f"unknown queryId {query_id!r}",
                exception_type="rs:InvalidRequestExceptionType",
            )
        else:
            raise _Refusal(
                "DSD:ERR:0004",
                "The requested Query does not exist",
                f"unknown queryId {query_id!r}",
                exception_type="rs:InvalidRequestExceptionType",
            )
    except _Refusal as refusal:
        return _failure(refusal, versioned)
    root = _root(STATUS_SUCCESS, versioned)
    listing = etree.SubElement(root, q(RIM_NS, "RegistryObjectList"))
    listing.extend(objects)
    return _serialize(root)


def digest_header(body: bytes) -> str:
    """The ``digest`` header of an answer (RFC 3230 ``SHA-256=<base64>``)."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


# --- Evidence Broker -------------------------------------------------------------------------


def _requirements(network: Network, values: Mapping[str, str]) -> list[etree._Element]:
    procedure = values.get("procedure-id")
    country = values.get("country-code")
    if procedure is not None and not _PROCEDURE.fullmatch(procedure):
        raise _Refusal(
            "EB:ERR:0005",
            "The value of the procedure-id query parameter is invalid or unknown",
            procedure,
            exception_type="rs:InvalidRequestExceptionType",
        )
    if country is not None and not _COUNTRY.fullmatch(country):
        raise _Refusal(
            "EB:ERR:0006",
            "The value of the procedure implementation country query parameter is invalid or "
            "unknown",
            country,
            exception_type="rs:InvalidRequestExceptionType",
        )
    found = []
    for requirement in network.requirements:
        frameworks = [
            p
            for p in requirement.procedures
            if (procedure is None or p.code == procedure)
            and (country is None or p.country == country)
        ]
        if frameworks:
            found.append(_requirement_object(requirement, frameworks, None))
    if not found:
        raise _Refusal("EB:ERR:0001", "The result set is empty", "EMPTY_RESULT")
    return found


def _evidence_types(network: Network, values: Mapping[str, str]) -> list[etree._Element]:
    identifier = values.get("requirement-id")
    country = values.get("country-code")
    if not identifier:
        raise _Refusal(
            "EB:ERR:0003",
            "The query parameters do not follow the query specification",
            "requirement-id",
            exception_type="rs:InvalidRequestExceptionType",
        )
    requirement = network.requirement(identifier)
    if requirement is None:
        raise _Refusal(
            "EB:ERR:0002",
            "The requirement requested, represented by the requirement id, does not exist",
            identifier,
        )
    countries = [c for c in requirement.evidence_types if country is None or c == country]
    if not countries:
        raise _Refusal("EB:ERR:0001", "The result set is empty", "EMPTY_RESULT")
    lists = [
        (c, [network.evidence_type(e) for e in requirement.evidence_types[c]]) for c in countries
    ]
    return [_requirement_object(requirement, requirement.procedures, lists)]


def _requirement_object(
    requirement: RequirementSpec,
    frameworks: Sequence[Procedure],
    lists: Sequence[tuple[str, Sequence[EvidenceTypeSpec | None]]] | None,
) -> etree._Element:
    registry_object = _registry_object(requirement.identifier)
    element = _sdg(_any_slot(registry_object, "Requirement"), "Requirement")
    _sdg(element, "Identifier", requirement.identifier)
    _localized(element, "Name", requirement.names)
    _sdg(element, "Description", requirement.description, lang="EN")
    for procedure in requirement.procedures:
        if procedure not in frameworks:
            continue
        framework = _sdg(element, "ReferenceFramework")
        _sdg(framework, "Identifier", procedure.framework_id)
        _sdg(framework, "Title", procedure.title, lang="EN")
        _sdg(_sdg(framework, "RelatedTo"), "Identifier", procedure.code)
        _sdg(_sdg(framework, "Jurisdiction"), "AdminUnitLevel1", procedure.country)
    for country, types in lists or ():
        listing = _sdg(element, "EvidenceTypeList")
        _sdg(listing, "Identifier", requirement.list_ids[country])
        _sdg(
            listing,
            "Name",
            f"Evidence types for {requirement.names[0].value} ({country})",
            lang="EN",
        )
        for spec in types:
            if spec is None:  # pragma: no cover - the network is consistent
                continue
            evidence_type = _sdg(listing, "EvidenceType")
            _sdg(evidence_type, "EvidenceTypeClassification", spec.classification)
            _localized(evidence_type, "Title", spec.titles)
            _sdg(evidence_type, "Description", spec.description, lang="EN")
        _sdg(_sdg(listing, "Jurisdiction"), "AdminUnitLevel1", country)
    return registry_object


# --- Data Service Directory --------------------------------------------------------------------


def _data_services(network: Network, values: Mapping[str, str]) -> list[etree._Element]:
    missing = [p for p in ("evidence-type-classification", "country-code") if not values.get(p)]
    if missing:
        raise _Refusal(
            "DSD:ERR:0003",
            "The query parameters do not follow the query specification",
            ", ".join(missing),
            exception_type="rs:InvalidRequestExceptionType",
        )
    classification = values["evidence-type-classification"]
    country = values["country-code"]
    spec = network.evidence_type(classification)
    if spec is None:
        raise _Refusal(
            "DSD:ERR:0002", "The Evidence Type requested cannot be found", classification
        )
    providers = [p for p in network.providers_of(classification) if p.country == country]
    wanted = values.get("specification")
    if wanted:
        providers = [p for p in providers if p.version.value == wanted]
    if spec.country != country or not providers:
        raise _Refusal(
            "DSD:ERR:0001",
            "No Data Services were found based on the given parameters",
            "DS_NOT_FOUND",
        )
    if spec.jurisdiction is not None:
        region = values.get("jurisdiction-admin-l2")
        if region is None:
            raise _Refusal(
                "DSD:ERR:0005",
                "The query requires the included extra attributes to be provided by the user",
                "JurisdictionDetermination",
                severity=SEVERITY_ADDITIONAL_INPUT,
                slots=_additional_input(spec),
            )
        context = values.get("jurisdiction-context-id")
        if region not in spec.jurisdiction.regions or (
            context is not None and context != spec.jurisdiction.context_id
        ):
            raise _Refusal(
                "DSD:ERR:0006",
                "Incorrect provided value for requested parameters",
                f"jurisdiction-admin-l2={region}",
                exception_type="rs:InvalidRequestExceptionType",
            )
        providers = [p for p in providers if p.region == region]
        if not providers:  # pragma: no cover - every region of the network has a provider
            raise _Refusal(
                "DSD:ERR:0001",
                "No Data Services were found based on the given parameters",
                "DS_NOT_FOUND",
            )
    registry_object = _registry_object(classification + country)
    _write_data_service_evidence_type(
        _any_slot(registry_object, "DataServiceEvidenceType"), spec, providers, determination=True
    )
    return [registry_object]


def _write_data_service_evidence_type(
    parent: etree._Element,
    spec: EvidenceTypeSpec,
    providers: Sequence[ProviderSpec],
    *,
    determination: bool,
) -> None:
    element = _sdg(parent, "DataServiceEvidenceType")
    _sdg(element, "Identifier", spec.identifier)
    _sdg(element, "EvidenceTypeClassification", spec.classification)
    _localized(element, "Title", spec.titles)
    _sdg(element, "Description", spec.description, lang="EN")
    distribution = _sdg(element, "DistributedAs")
    _sdg(distribution, "Format", spec.format)
    _sdg(distribution, "Language", "EN")
    for provider in providers:
        _write_access_service(element, provider)
    _sdg(element, "AuthenticationLevelOfAssurance", _LEVEL_OF_ASSURANCE)
    if determination and spec.jurisdiction is not None:
        _write_jurisdiction_determination(element, spec)


def _write_access_service(parent: etree._Element, provider: ProviderSpec) -> None:
    service = _sdg(parent, "AccessService")
    _sdg(
        service,
        "Identifier",
        provider.access_point,
        schemeID=f"{ACCESS_SERVICE_SCHEME}:{provider.country}",
    )
    _sdg(service, "Name", f"{provider.country} OOTS sandbox access point", lang="EN")
    _sdg(service, "ConformsTo", provider.version.value)
    publisher = _sdg(service, "Publisher")
    _sdg(publisher, "Identifier", provider.identifier, schemeID=provider.scheme)
    _sdg(publisher, "Name", provider.name, lang=provider.name_lang)
    _sdg(publisher, "Description", PUBLISHER_DESCRIPTION, lang="EN")
    for local in ("Address", "Jurisdiction"):
        place = _sdg(publisher, local)
        _sdg(place, "AdminUnitLevel1", provider.country)
        if provider.region is not None:
            _sdg(place, "AdminUnitLevel2", provider.region)


def _write_jurisdiction_determination(parent: etree._Element, spec: EvidenceTypeSpec) -> None:
    assert spec.jurisdiction is not None
    determination = _sdg(parent, "EvidenceProviderJurisdictionDetermination")
    _sdg(determination, "JurisdictionContextId", spec.jurisdiction.context_id)
    _localized(determination, "JurisdictionContext", spec.jurisdiction.contexts)
    _sdg(determination, "JurisdictionLevel", spec.jurisdiction.level)


def _additional_input(spec: EvidenceTypeSpec) -> list[etree._Element]:
    """The slots of ``DSD:ERR:0005``: the evidence type and what to ask the user."""
    holder = etree.Element(q(RIM_NS, "Holder"))
    _write_data_service_evidence_type(
        _any_slot(holder, "DataServiceEvidenceType"), spec, (), determination=False
    )
    _write_jurisdiction_determination(_any_slot(holder, "JurisdictionDetermination"), spec)
    return list(holder)


# --- XML -------------------------------------------------------------------------------------


def _root(status: str, versioned: bool) -> etree._Element:
    root = etree.Element(q(QUERY_NS, "QueryResponse"), nsmap=CAPTURE_NSMAP)
    root.set("status", status)
    if versioned:
        value = _slot_value(root, "SpecificationIdentifier", "rim:StringValueType")
        etree.SubElement(value, q(RIM_NS, "Value")).text = CS_SPECIFICATION
    return root


def _failure(refusal: _Refusal, versioned: bool) -> bytes:
    root = _root(STATUS_FAILURE, versioned)
    exception = etree.SubElement(root, q(RS_NS, "Exception"))
    exception.set(XSI_TYPE, refusal.exception_type)
    exception.set("code", refusal.code)
    exception.set("detail", refusal.detail)
    exception.set("message", refusal.message)
    exception.set("severity", refusal.severity)
    exception.extend(refusal.slots)
    return _serialize(root)


def _serialize(root: etree._Element) -> bytes:
    return bytes(
        etree.tostring(
            root, xml_declaration=True, encoding="UTF-8", standalone=True, pretty_print=True
        )
    )


def _registry_object(key: str) -> etree._Element:
    element = etree.Element(q(RIM_NS, "RegistryObject"))
    element.set("id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}")
    return element


def _slot_value(parent: etree._Element, name: str, value_type: str) -> etree._Element:
    slot = etree.SubElement(parent, q(RIM_NS, "Slot"), name=name)
    value = etree.SubElement(slot, q(RIM_NS, "SlotValue"))
    value.set(XSI_TYPE, value_type)
    return value


def _any_slot(parent: etree._Element, name: str) -> etree._Element:
    return _slot_value(parent, name, "rim:AnyValueType")


def _sdg(
    parent: etree._Element, local: str, text: str | None = None, **attrib: str
) -> etree._Element:
    element = etree.SubElement(parent, q(SDG_NS, local), attrib)
    if text is not None:
        element.text = text
    return element


def _localized(parent: etree._Element, local: str, texts: Sequence[LocalizedText]) -> None:
    for text in texts:
        _sdg(parent, local, text.value, lang=text.lang)


__all__ = [
    "CS_SPECIFICATION",
    "EBRS_MEDIA_TYPE",
    "QUERY_DATA_SERVICES",
    "QUERY_EVIDENCE_TYPES",
    "QUERY_REQUIREMENTS",
    "SEVERITY_ADDITIONAL_INPUT",
    "digest_header",
    "search",
]

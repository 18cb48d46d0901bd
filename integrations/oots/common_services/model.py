"""What the Evidence Broker and the Data Service Directory answer, as frozen dataclasses.

- ``RequirementInfo``: a requirement of a procedure (EB ``requirements-by-procedure-and-
  jurisdiction``), with the procedures (``sdg:ReferenceFramework``) it belongs to;
- ``EvidenceTypeInfo``: one evidence type a country accepts for a requirement (EB
  ``evidence-types-by-requirement-and-jurisdiction``);
- ``ProvidersFound`` / ``ProviderInfo``: the access services and publishers of an evidence type
  in a country (DSD ``dataservices-by-evidencetype-and-jurisdiction``); several providers mean
  the user picks one;
- ``AttributeNeeded``: the DSD's ``DSD:ERR:0005`` answer, the additional attribute to ask the
  user for (a region at a jurisdiction level, and/or provider classification concepts) before
  asking again with it.

Texts keep their languages (``LocalizedText`` of the EDM library); the EDM objects a
``query:QueryRequest`` needs are derived here (``ProviderInfo.evidence_provider``,
``ProviderInfo.requested_evidence_type``, ``RequirementInfo.requirement``) so the evidence
request carries exactly what the DSD and the EB published.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from integrations.oots.common_services.queries import attribute_parameter
from integrations.oots.edm import (
    EvidenceProvider,
    LocalizedText,
    ProviderClassification,
    RequestedEvidenceType,
    Requirement,
)


@dataclass(frozen=True)
class ReferenceFramework:
    """One procedure a requirement belongs to, where it is implemented."""

    identifier: str
    titles: tuple[LocalizedText, ...]
    #: ``sdg:RelatedTo/sdg:Identifier``: codes of the ``Procedures`` code list (``T3``, ``R1``).
    procedures: tuple[str, ...]
    #: ``sdg:Jurisdiction/sdg:AdminUnitLevel1`` (None when the EB omits it).
    country: str | None
    descriptions: tuple[LocalizedText, ...] = ()


@dataclass(frozen=True)
class RequirementInfo:
    """An Evidence Broker requirement (``sdg:Requirement``)."""

    identifier: str
    names: tuple[LocalizedText, ...]
    descriptions: tuple[LocalizedText, ...] = ()
    frameworks: tuple[ReferenceFramework, ...] = ()

    def requirement(self) -> Requirement:
        """The ``sdg:Requirement`` of an EDM evidence request."""
        return Requirement(identifier=self.identifier, names=self.names)


@dataclass(frozen=True)
class EvidenceTypeInfo:
    """One evidence type a country accepts for a requirement (``sdg:EvidenceType``)."""

    #: ``sdg:EvidenceTypeClassification``: what the DSD is asked with.
    classification: str
    #: ISO 3166-1 alpha-2 of the providing country (the list's or the type's jurisdiction).
    country: str
    titles: tuple[LocalizedText, ...]
    descriptions: tuple[LocalizedText, ...]
    requirement_id: str = ""
    #: ``sdg:EvidenceTypeList/sdg:Identifier`` the type was listed in.
    list_id: str | None = None
    list_names: tuple[LocalizedText, ...] = ()


@dataclass(frozen=True)
class Distribution:
    """One ``sdg:DistributedAs`` of an evidence type: a format it is offered in."""

    format: str
    conforms_to: str | None = None
    transformation: str | None = None
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClassificationConcept:
    """An evidence provider classification (CCCEV information concept) of the DSD.

    In ``AttributeNeeded.classifications`` it is a question for the user (send the answer as a
    query parameter named ``identifier``); in ``ProviderInfo.classifications`` it is what the
    publisher supports (``supported_values``).
    """

    identifier: str
    type: str | None
    value_expression: str | None
    descriptions: tuple[LocalizedText, ...] = ()
    supported_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttributeNeeded:
    """``DSD:ERR:0005``: ask the user for an additional attribute, then query again with it.

    With a jurisdiction determination, the answer goes back as
    ``attributes={needed.level: <code>, "jurisdiction-context-id": needed.context_id}``:
    ``level`` is the query parameter (``jurisdiction-admin-l2`` for a NUTS level,
    ``jurisdiction-admin-l3`` for LAU), ``jurisdiction_level`` the DSD's own value (``NUTS2``).
    Without one (classification concepts only), ``context_id`` and ``level`` are empty and
    ``description`` is empty. The allowed values are the code list the level names (NUTS,
    LAU): neither the TDD samples nor the live DSD list them in the answer.
    """

    evidence_type_classification: str
    country: str
    #: ``sdg:JurisdictionContextId``: send back as ``jurisdiction-context-id``.
    context_id: str
    #: What to ask (``sdg:JurisdictionContext``, e.g. "Place of birth").
    description: tuple[LocalizedText, ...]
    #: ``sdg:JurisdictionLevel`` as the DSD gives it (``NUTS2``, ``LAU``, ...).
    jurisdiction_level: str = ""
    #: ``sdg:DataServiceEvidenceType/sdg:Identifier`` (the TDD's ``evidence-type-id``).
    evidence_type_id: str | None = None
    evidence_type_titles: tuple[LocalizedText, ...] = ()
    #: ``UserRequestedClassificationConcepts``: more questions for the user.
    classifications: tuple[ClassificationConcept, ...] = ()

    @property
    def level(self) -> str:
        """The query parameter that carries the user's answer, e.g. ``jurisdiction-admin-l2``;
        empty without a jurisdiction determination."""
        return attribute_parameter(self.jurisdiction_level) if self.jurisdiction_level else ""


@dataclass(frozen=True)
class ProviderInfo:
    """One ``sdg:AccessService`` (and its ``sdg:Publisher``) of a DSD answer."""

    #: ``sdg:Publisher/sdg:Identifier`` as the DSD gives it (the EDM ``EvidenceProvider``).
    provider_id: str
    #: Its ``@schemeID`` (an EAS code, e.g. ``urn:cef.eu:names:identifier:EAS:0212``).
    provider_scheme: str
    provider_name: str
    #: The publisher's country (its jurisdiction, else its address, else the query's).
    country: str
    #: ``sdg:AccessService/sdg:Identifier``: the eDelivery party (finalRecipient's access point).
    access_service_id: str
    access_service_scheme: str
    #: ``sdg:AccessService/sdg:ConformsTo``: EDM versions (``oots-edm:v2.0``); see
    #: ``integrations.oots.edm.choose_version``.
    conforms_to: tuple[str, ...]
    evidence_type_classification: str
    #: ``sdg:DataServiceEvidenceType/sdg:Identifier``: the evidence type id of the request.
    evidence_type_id: str = ""
    evidence_type_titles: tuple[LocalizedText, ...] = ()
    evidence_type_descriptions: tuple[LocalizedText, ...] = ()
    #: Every ``sdg:DistributedAs`` with its conformance and transformation.
    distributed_as: tuple[Distribution, ...] = ()
    provider_name_lang: str = "EN"
    provider_names: tuple[LocalizedText, ...] = ()
    access_service_name: str | None = None
    #: ``sdg:AuthenticationLevelOfAssurance`` the evidence type needs.
    level_of_assurance: str | None = None
    #: The publisher's ``sdg:Jurisdiction`` below the country (NUTS, LAU).
    jurisdiction_admin_l2: str | None = None
    jurisdiction_admin_l3: str | None = None
    #: ``sdg:Publisher/sdg:ClassificationConcept``: what the publisher supports.
    classifications: tuple[ClassificationConcept, ...] = ()

    @property
    def distributions(self) -> tuple[str, ...]:
        """The formats offered (``sdg:DistributedAs/sdg:Format``), each once, in the DSD's
        order."""
        return tuple(dict.fromkeys(d.format for d in self.distributed_as))

    def evidence_provider(self) -> EvidenceProvider:
        """The ``EvidenceProvider`` of an EDM evidence request to this provider."""
        return EvidenceProvider(
            identifier=self.provider_id,
            scheme=self.provider_scheme,
            name=self.provider_name,
            name_lang=self.provider_name_lang,
        )

    def requested_evidence_type(self, format: str | None = None) -> RequestedEvidenceType | None:
        """The ``RequestedEvidenceType`` for ``format`` (None: the first distribution).

        None when the provider does not offer that format.
        """
        distribution = next(
            (d for d in self.distributed_as if format is None or d.format == format), None
        )
        if distribution is None:
            return None
        return RequestedEvidenceType(
            identifier=self.evidence_type_id,
            classification=self.evidence_type_classification,
            titles=self.evidence_type_titles,
            format=distribution.format,
            descriptions=self.evidence_type_descriptions,
            conforms_to=distribution.conforms_to,
            transformation=distribution.transformation,
        )

    def provider_classifications(
        self, answers: Iterable[tuple[str, str]] = ()
    ) -> tuple[ProviderClassification, ...]:
        """The user's ``answers`` (concept identifier, value), in their order, as the EDM
        request's ``EvidenceProviderClassification``\\ s.

        Only answers to concepts this provider publishes with a type go into the request; the
        others served the DSD query alone.
        """
        published = {concept.identifier: concept for concept in self.classifications}
        found = []
        for identifier, value in answers:
            concept = published.get(identifier)
            if concept is not None and concept.type:
                found.append(
                    ProviderClassification(
                        identifier=identifier,
                        type=concept.type,
                        value=value,
                        value_expression=concept.value_expression,
                        descriptions=concept.descriptions,
                    )
                )
        return tuple(found)


@dataclass(frozen=True)
class ProvidersFound:
    """The DSD's providers for an evidence type in a country; several: the user picks.

    Empty when the DSD has none (``DSD:ERR:0001``).
    """

    providers: tuple[ProviderInfo, ...]


ProvidersAnswer = ProvidersFound | AttributeNeeded

"""The EDM (OOTS Exchange Data Model) evidence request and its three possible outcomes.

Frozen dataclasses only; the XML lives in ``request.py`` and ``response.py``.

- ``EvidenceRequest`` is everything one ``query:QueryRequest`` carries: who asks
  (``Requester``, an authority with the OOTS identifier the routing table gives it), about whom
  (``NaturalPerson`` or ``LegalPerson``), for which requirement and evidence type, to which
  provider, whether the user gave the explicit request and whether a preview is possible, and
  for the second request after a preview, the preview location.
- The outcome of a request is one of ``Evidence`` (the document and its metadata),
  ``PreviewRequired`` (redirect the user to the provider's preview, then ask again) or
  ``EdmError`` (the provider's ``EDM:ERR:000x`` answer).

Only what the official SDG schema in the conformance folder
(``oots-edm-1.0/xsd/sdg/SDG-GenericMetadataProfile-v1.0.0.xsd``) defines is modelled for
requests, so every request the platform builds validates against it in both EDM versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from uuid import UUID

from integrations.oots.edm.errors import UnsupportedEdmVersion


class EdmVersion(Enum):
    """The EDM versions the platform speaks (``SpecificationIdentifier`` values).

    They are not backward compatible (see ``request.py`` for the differences); the version of a
    request follows the ``sdg:ConformsTo`` values the Data Service Directory publishes for the
    provider's access service (``choose_version``).
    """

    V1_2 = "oots-edm:v1.2"
    V2_0 = "oots-edm:v2.0"

    @classmethod
    def from_identifier(cls, identifier: str | None) -> EdmVersion:
        for version in cls:
            if version.value == identifier:
                return version
        raise UnsupportedEdmVersion(f"EDM version {identifier!r} is not supported")


#: Preference when a provider announces several versions: the newest first.
_PREFERENCE = (EdmVersion.V2_0, EdmVersion.V1_2)


def choose_version(conforms_to: Iterable[str]) -> EdmVersion:
    """The version to send to a provider whose access service declares ``conforms_to``.

    ``conforms_to`` are the access service's ``sdg:ConformsTo`` values from the DSD (one access
    service may declare several, e.g. ``oots-edm:v1.2`` and ``oots-edm:v2.0``). The newest
    version both sides speak wins; none in common (or nothing declared) is refused rather than
    guessed.
    """
    declared = {value.strip() for value in conforms_to}
    for version in _PREFERENCE:
        if version.value in declared:
            return version
    raise UnsupportedEdmVersion(
        f"the provider declares {sorted(declared) or 'no EDM version'}; "
        f"the platform speaks {[v.value for v in _PREFERENCE]}"
    )


@dataclass(frozen=True)
class LocalizedText:
    """A text with its language (``lang`` / ``xml:lang``, code list ``LanguageCode``)."""

    value: str
    lang: str = "EN"


@dataclass(frozen=True)
class Address:
    """``sdg:AddressType``; ``admin_unit_level1`` is the ISO 3166-1 alpha-2 country."""

    admin_unit_level1: str
    full_address: str | None = None
    locator_designator: str | None = None
    post_code: str | None = None
    post_city_name: str | None = None
    thoroughfare: str | None = None
    admin_unit_level2: str | None = None


@dataclass(frozen=True)
class Agent:
    """An ``sdg:Agent`` as read from a response (provider, issuing authority, requester)."""

    identifier: str
    scheme: str | None
    names: tuple[LocalizedText, ...] = ()
    country: str | None = None
    classification: str | None = None


@dataclass(frozen=True)
class Requester:
    """The Evidence Requester: the Danish authority the caller's token names.

    ``identifier``/``scheme`` are its OOTS identifier from the routing table, e.g. its CVR
    number under ``urn:cef.eu:names:identifier:EAS:0184``; written as an ``sdg:Agent`` with
    classification ``ER`` and ``Address/AdminUnitLevel1`` = ``country``.
    """

    name: str
    identifier: str
    scheme: str
    country: str | None = "DK"
    name_lang: str = "DA"


@dataclass(frozen=True)
class IntermediaryPlatform:
    """An intermediary platform acting for the requester (``sdg:Agent`` classification ``IP``)."""

    name: str
    identifier: str
    scheme: str
    name_lang: str = "EN"


@dataclass(frozen=True)
class EvidenceProvider:
    """The Evidence Provider as the DSD publishes it (``sdg:Publisher``)."""

    identifier: str
    scheme: str
    name: str
    name_lang: str = "EN"


@dataclass(frozen=True)
class NaturalPerson:
    """The evidence subject when it is a person (``sdg:Person``, eIDAS minimum data set).

    ``identifier`` is the eIDAS person identifier (``DK/DE/...``, scheme ``eidas``);
    ``level_of_assurance`` is ``Low``, ``Substantial`` or ``High``. A request needs the level
    (``R-EDM-REQ-C036``); persons read from a response may lack it.
    """

    family_name: str
    given_name: str
    date_of_birth: date
    identifier: str | None = None
    identifier_scheme: str = "eidas"
    level_of_assurance: str | None = "High"
    birth_name: str | None = None
    place_of_birth: str | None = None
    current_address: Address | None = None
    #: ``Male``, ``Female`` or ``Unspecified`` (the SDG schema's enumeration).
    gender: str | None = None


@dataclass(frozen=True)
class LegalIdentifier:
    """One more identifier of a legal person (scheme from ``IdentifierSchemes``: VAT, TAX, ...)."""

    value: str
    scheme: str


@dataclass(frozen=True)
class LegalPerson:
    """The evidence subject when it is a company (``sdg:LegalPerson``).

    ``legal_person_identifier`` is the eIDAS legal person identifier (scheme ``eidas``).
    """

    legal_name: str
    legal_person_identifier: str | None = None
    identifiers: tuple[LegalIdentifier, ...] = ()
    level_of_assurance: str | None = "High"
    registered_address: Address | None = None


Subject = NaturalPerson | LegalPerson


@dataclass(frozen=True)
class Requirement:
    """A requirement of the procedure, from the Evidence Broker (``sdg:Requirement``)."""

    identifier: str
    names: tuple[LocalizedText, ...]


@dataclass(frozen=True)
class RequestedEvidenceType:
    """The ``sdg:DataServiceEvidenceType`` asked for, as the DSD returned it.

    ``format`` is the one distribution requested (``sdg:DistributedAs/sdg:Format``, code list
    ``OOTSMediaTypes``). ``transformation`` exists at v1.2 only (EDM v2.0 removed it).
    """

    identifier: str
    classification: str
    titles: tuple[LocalizedText, ...]
    format: str
    descriptions: tuple[LocalizedText, ...] = ()
    conforms_to: str | None = None
    transformation: str | None = None


@dataclass(frozen=True)
class ProviderClassification:
    """A value the user chose to find the provider (``sdg:EvidenceProviderClassification``)."""

    identifier: str
    type: str
    value: str
    scheme: str | None = None
    value_expression: str | None = None
    descriptions: tuple[LocalizedText, ...] = ()


@dataclass(frozen=True)
class EvidenceRequest:
    """Everything one EDM ``query:QueryRequest`` says.

    ``preview_location`` is None for the first request and, for the second request after a
    preview, the location the provider gave in its ``PreviewRequired`` answer.
    ``return_location`` (v2.0 only) is where the provider sends the user back after the
    preview; see ``request.py`` for why it is optional here.
    """

    request_id: UUID
    issue_datetime: datetime
    procedure: str
    requirements: tuple[Requirement, ...]
    evidence_type: RequestedEvidenceType
    provider: EvidenceProvider
    requester: Requester
    subject: Subject
    explicit_request_given: bool
    possibility_for_preview: bool
    version: EdmVersion
    preview_location: str | None = None
    return_location: str | None = None
    intermediary: IntermediaryPlatform | None = None
    authorized_representative: NaturalPerson | None = None
    provider_classifications: tuple[ProviderClassification, ...] = ()


@dataclass(frozen=True)
class EvidenceMetadata:
    """``sdg:Evidence``: what the provider says about the document it returns."""

    identifier: str | None = None
    evidence_type_classification: str | None = None
    evidence_type_titles: tuple[LocalizedText, ...] = ()
    issuing_authority: Agent | None = None
    issuing_date: date | None = None
    #: ``sdg:Distribution/sdg:Format``: the document's media type as the provider declares it.
    format: str | None = None
    conforms_to: str | None = None
    subject: Subject | None = None


@dataclass(frozen=True)
class Evidence:
    """A document returned as evidence, with its metadata.

    ``content`` is the attachment the ``rim:RepositoryItemRef xlink:href="cid:..."`` points at;
    ``content_id`` is that id without ``cid:``; ``filename`` is the ``xlink:title``.
    ``classification`` is the v2.0 package role (``MainEvidence``, ``Annex``, ...; None at
    v1.2). ``associated`` holds the other documents of the same response (v2.0 annexes and
    translations, or further v1.2 evidences).
    """

    content: bytes
    mime_type: str
    content_id: str
    filename: str | None
    metadata: EvidenceMetadata
    version: EdmVersion | None = None
    request_id: str | None = None
    response_id: str | None = None
    issue_datetime: datetime | None = None
    providers: tuple[Agent, ...] = ()
    classification: str | None = None
    associated: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class PreviewRequired:
    """The provider needs the user to preview and approve (``EDM:ERR:0002`` with a location).

    The portal redirects the user to ``location`` with ``method`` (``GET`` or ``POST``; v2.0
    dropped the ``PreviewMethod`` slot and allows ``GET`` only, so a v2.0 answer reads as
    ``GET``), then sends the second request carrying ``location`` as its ``PreviewLocation``.
    """

    location: str
    method: str
    description: tuple[LocalizedText, ...] = ()
    version: EdmVersion | None = None
    request_id: str | None = None
    response_id: str | None = None

    def description_in(self, *langs: str) -> str | None:
        """The description in the first of ``langs`` available, else the first one given."""
        wanted = [lang.upper() for lang in langs]
        for lang in wanted:
            for text in self.description:
                if text.lang.upper() == lang:
                    return text.value
        return self.description[0].value if self.description else None


@dataclass(frozen=True)
class EdmError:
    """The provider's error answer (``rs:Exception``).

    ``code`` is ``EDM:ERR:000x``; when the provider omitted ``@code`` (which
    ``R-EDM-ERR-C026`` forbids) it is taken from the exception type, and None if that is
    unknown too.
    """

    code: str | None
    severity: str | None
    message: str | None
    detail: str | None
    exception_type: str | None = None
    timestamp: datetime | None = None
    version: EdmVersion | None = None
    request_id: str | None = None
    response_id: str | None = None
    #: The exception's other slots (name, value), e.g. a ``PreviewLocation`` that is no URL.
    slots: tuple[tuple[str, str], ...] = ()


QueryOutcome = Evidence | PreviewRequired | EdmError

"""The OOTS Dokumentation service's requests and answers as plain values (no SOAP, no XML).

``service.py`` turns validated SOAP bodies into these values and these values back into SOAP
answers; ``handler.py`` works on them only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from integrations.oots.edm import Evidence, PreviewRequired


@dataclass(frozen=True)
class Text:
    """A text in one language (``EN``, ``DA``, ...)."""

    lang: str
    value: str


# --- finding evidence ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FindBevistyper:
    procedure: str
    requirement_id: str | None = None
    #: Only evidence types of this provider country.
    country: str | None = None


@dataclass(frozen=True)
class EvidenceTypeFound:
    classification: str
    country: str
    titles: tuple[Text, ...] = ()
    descriptions: tuple[Text, ...] = ()


@dataclass(frozen=True)
class RequirementFound:
    identifier: str
    names: tuple[Text, ...] = ()
    evidence_types: tuple[EvidenceTypeFound, ...] = ()


@dataclass(frozen=True)
class Attribute:
    """An additional attribute the user gave (a region for the DSD's jurisdiction question)."""

    context_id: str
    #: The jurisdiction level ``AttributKraevet`` named (``NUTS2``, ``LAU``).
    level: str
    value: str


@dataclass(frozen=True)
class ClassificationAnswer:
    """The user's answer to one of the DSD's classification questions."""

    identifier: str
    value: str


@dataclass(frozen=True)
class ClassificationQuestion:
    """A classification question of the DSD (``UserRequestedClassificationConcepts``)."""

    identifier: str
    type: str | None = None
    value_expression: str | None = None
    descriptions: tuple[Text, ...] = ()
    supported_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class FindUdbydere:
    classification: str
    country: str
    attribute: Attribute | None = None
    classifications: tuple[ClassificationAnswer, ...] = ()


@dataclass(frozen=True)
class ProviderFound:
    identifier: str
    scheme: str
    name: str
    country: str
    #: The EDM version the platform would send, None when it speaks none the provider does.
    edm_version: str | None
    formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttributeNeeded:
    #: The jurisdiction question; both empty when the DSD asks classifications only.
    context_id: str
    level: str
    descriptions: tuple[Text, ...] = ()
    questions: tuple[ClassificationQuestion, ...] = ()


@dataclass(frozen=True)
class ProvidersAnswer:
    """Either the providers to choose from, or the attribute to ask the user for first."""

    providers: tuple[ProviderFound, ...] = ()
    attribute_needed: AttributeNeeded | None = None


# --- requesting evidence ------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonSubject:
    given_name: str
    family_name: str
    date_of_birth: date
    eidas_identifier: str | None = None
    level_of_assurance: str = "High"


@dataclass(frozen=True)
class CompanySubject:
    name: str
    eidas_identifier: str | None = None
    level_of_assurance: str = "High"


@dataclass(frozen=True)
class AnmodBevis:
    subject: PersonSubject | CompanySubject
    procedure: str
    requirement_id: str
    classification: str
    country: str
    provider_id: str
    explicit_request: bool
    preview_possible: bool
    attribute: Attribute | None = None
    classifications: tuple[ClassificationAnswer, ...] = ()
    format: str | None = None


@dataclass(frozen=True)
class AnmodBevisEfterForhaandsvisning:
    request_id: str
    return_location: str | None = None


@dataclass(frozen=True)
class HentStatus:
    request_id: str


class Status(StrEnum):
    """``StatusType`` of the contract."""

    PENDING = "Afventer"
    PREVIEW_REQUIRED = "ForhaandsvisningKraevet"
    EVIDENCE = "BevisModtaget"
    FAILED = "Fejl"


@dataclass(frozen=True)
class Failure:
    """Why a request failed: the platform fault code, the provider's EDM code, a text."""

    code: str
    text: str
    edm_code: str | None = None


@dataclass(frozen=True)
class RequestView:
    """Where one evidence request stands, as the caller sees it."""

    request_id: str
    status: Status
    provider_id: str
    edm_version: str
    preview: PreviewRequired | None = None
    evidence: Evidence | None = None
    failure: Failure | None = None

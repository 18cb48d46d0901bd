"""The simulated OOTS network: who is on it, what they issue, in which EDM version.

Pure data, shared by the simulated gateway (routing by ``finalRecipient`` and ``To`` party),
the providers (who answers what, how) and the common services (what the Evidence Broker and
the Data Service Directory publish). ``docs/oots-gateway.md`` describes the same network for
people; keep both in step.

- The requester side is Denmark: the platform's access point is ``AP_DK_01``; the procedures
  of the Evidence Broker are implemented in ``DK``.
- Two provider countries, each behind one access point: Finland (``AP_FI_01``) and Sweden
  (``AP_SE_01``).
- Five providers (``PROVIDERS``): a Finnish university that asks for a preview first, two
  Finnish population registry offices that answer directly (the DSD needs the user's region to
  name one: the *additional attribute*), a Swedish council that answers directly (EDM v1.2),
  and a Swedish registry that always answers ``EDM:ERR:0004`` (the two Swedish providers issue
  the same evidence type: the user picks one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Final

from integrations.oots.edm import Agent, EdmVersion, LocalizedText

#: ebMS ``PartyId/@type`` of every OOTS access point.
OOTS_PARTY_TYPE: Final = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"
#: ebMS ``Role`` of both parties.
GATEWAY_ROLE: Final = "http://sdg.europa.eu/edelivery/gateway"
#: The Semantic Repository host the v1.2/v2.0 messages use.
SR: Final = "https://sr.oots.tech.ec.europa.eu"
#: ``sdg:AccessService/sdg:Identifier/@schemeID`` prefix (``...:unregistered:FI``), as the live
#: DSD capture writes it.
ACCESS_SERVICE_SCHEME: Final = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"

EAS_FI: Final = "urn:cef.eu:names:identifier:EAS:0212"  # Finnish Organization Identifier
EAS_SE: Final = "urn:cef.eu:names:identifier:EAS:0007"  # Organisationsnummer


class Behaviour(Enum):
    """How a simulated provider answers a request."""

    #: First request: ``PreviewRequired``; after the user's decision on the preview page, the
    #: second request (carrying the preview location) gets the evidence or an error.
    PREVIEW = "preview"
    #: The evidence at once.
    DIRECT = "direct"
    #: Always an error answer (the provider's ``error_code``).
    ERROR = "error"


@dataclass(frozen=True)
class Procedure:
    """A procedure of the Evidence Broker (code list ``Procedures``) where it is implemented."""

    code: str
    country: str
    title: str
    framework_id: str


@dataclass(frozen=True)
class RequirementSpec:
    identifier: str
    names: tuple[LocalizedText, ...]
    description: str
    procedures: tuple[Procedure, ...]
    #: Evidence type classifications that prove it, per provider country.
    evidence_types: Mapping[str, tuple[str, ...]]
    #: ``sdg:EvidenceTypeList/sdg:Identifier`` per provider country.
    list_ids: Mapping[str, str]


@dataclass(frozen=True)
class JurisdictionSpec:
    """The additional attribute the DSD asks for (``EvidenceProviderJurisdictionDetermination``).

    The user gives a region at ``level`` (``NUTS2``): the follow-up DSD query carries it as
    ``jurisdiction-admin-l2`` (with ``jurisdiction-context-id``).
    """

    context_id: str
    contexts: tuple[LocalizedText, ...]
    level: str
    #: NUTS 2 code -> region name.
    regions: Mapping[str, str]


@dataclass(frozen=True)
class EvidenceTypeSpec:
    """An evidence type as the Evidence Broker and the DSD publish it for one country."""

    identifier: str
    classification: str
    country: str
    titles: tuple[LocalizedText, ...]
    description: str
    format: str
    jurisdiction: JurisdictionSpec | None = None


@dataclass(frozen=True)
class ProviderSpec:
    """One simulated Evidence Provider (the DSD's ``sdg:Publisher``)."""

    identifier: str
    scheme: str
    name: str
    country: str
    #: ebMS party of its access point (the DSD's ``sdg:AccessService/sdg:Identifier``).
    access_point: str
    behaviour: Behaviour
    evidence_type: str
    version: EdmVersion
    #: NUTS 2 region it serves when the evidence type asks for one.
    region: str | None = None
    #: For ``Behaviour.ERROR``: the code it answers.
    error_code: str = "EDM:ERR:0004"
    name_lang: str = "EN"

    def agent(self, classification: str | None = None) -> Agent:
        return Agent(
            identifier=self.identifier,
            scheme=self.scheme,
            names=(LocalizedText(self.name, self.name_lang),),
            country=self.country,
            classification=classification,
        )


# --- the network -------------------------------------------------------------------------------

REQUESTER_COUNTRY: Final = "DK"
REQUESTER_ACCESS_POINT: Final = "AP_DK_01"
ACCESS_POINTS: Final[Mapping[str, str]] = {"FI": "AP_FI_01", "SE": "AP_SE_01"}

REQ_DEGREE: Final = f"{SR}/requirements/4c7e2b1a-9d3f-4e58-a1b6-2f0c8d5e7a31"
REQ_BIRTH: Final = f"{SR}/requirements/8e1d5c3b-2a4f-4b69-9c70-3d1e6f2a8b42"

ET_FI_DEGREE: Final = f"{SR}/evidencetypeclassifications/FI/5b2e8c41-7d3a-4f19-b6e0-1a9c4d2f7e53"
ET_SE_DEGREE: Final = f"{SR}/evidencetypeclassifications/SE/9a3f1d62-4c8b-4e27-8d15-6b0e2c7a4f64"
ET_FI_BIRTH: Final = f"{SR}/evidencetypeclassifications/FI/2d6c9e73-1b5a-4f38-9e26-7c1f3a8b5d75"

REGIONS_FI: Final[Mapping[str, str]] = {"FI1B": "Helsinki-Uusimaa", "FI19": "Länsi-Suomi"}

EVIDENCE_TYPES: Final[tuple[EvidenceTypeSpec, ...]] = (
    EvidenceTypeSpec(
        identifier="0c4f7a2e-6b1d-4c93-8e52-9d3a1f6b2c86",
        classification=ET_FI_DEGREE,
        country="FI",
        titles=(
            LocalizedText("Higher education degree certificate"),
            LocalizedText("Korkeakoulututkintotodistus", "FI"),
        ),
        description="Certificate of a higher education degree awarded by a Finnish university.",
        format="application/pdf",
    ),
    EvidenceTypeSpec(
        identifier="7e2b5d9c-3a6f-4d18-b7c4-2e8f1a5d9c97",
        classification=ET_SE_DEGREE,
        country="SE",
        titles=(LocalizedText("Degree certificate"), LocalizedText("Examensbevis", "SV")),
        description="Degree certificate of a Swedish higher education institution.",
        format="application/json",
    ),
    EvidenceTypeSpec(
        identifier="3f8a1c6e-9d2b-4e57-a3c1-8f4b2d6e1a08",
        classification=ET_FI_BIRTH,
        country="FI",
        titles=(LocalizedText("Birth certificate"), LocalizedText("Syntymätodistus", "FI")),
        description="Extract of the birth record from the Finnish population information system.",
        format="application/xml",
        jurisdiction=JurisdictionSpec(
            context_id="6b1e4d8a-2c7f-4a93-b5d6-9e3c1f8a2b19",
            contexts=(LocalizedText("Place of birth"), LocalizedText("Syntymäpaikka", "FI")),
            level="NUTS2",
            regions=REGIONS_FI,
        ),
    ),
)

REQUIREMENTS: Final[tuple[RequirementSpec, ...]] = (
    RequirementSpec(
        identifier=REQ_DEGREE,
        names=(
            LocalizedText("Proof of tertiary education diploma/certificate/degree"),
            LocalizedText("Bevis for videregående uddannelse", "DA"),
        ),
        description="Proof that the person holds a diploma awarded by a tertiary education "
        "institution.",
        procedures=(
            Procedure(
                "T2",
                "DK",
                "Submitting an initial application for admission to public tertiary education "
                "institution",
                "a1c5e9d3-4b7f-4e26-8a1d-5c3f9b2e7d41",
            ),
            Procedure(
                "T3",
                "DK",
                "Requesting academic recognition of diplomas, certificates or other proof of "
                "studies or courses",
                "b2d6f1e4-5c8a-4f37-9b2e-6d4a1c3f8e52",
            ),
        ),
        evidence_types={"FI": (ET_FI_DEGREE,), "SE": (ET_SE_DEGREE,)},
        list_ids={
            "FI": "c3e7a2f5-6d9b-4a48-8c3f-7e5b2d4a9f63",
            "SE": "d4f8b3a6-7e1c-4b59-9d4a-8f6c3e5b1a74",
        },
    ),
    RequirementSpec(
        identifier=REQ_BIRTH,
        names=(LocalizedText("Proof of birth"), LocalizedText("Bevis for fødsel", "DA")),
        description="Proof of the birth of a person: names, date and place of birth.",
        procedures=(
            Procedure(
                "R1", "DK", "Requesting a birth certificate", "e5a9c4b7-8f2d-4c6a-ae5b-9a7d4f6c2b85"
            ),
        ),
        evidence_types={"FI": (ET_FI_BIRTH,)},
        list_ids={"FI": "f6b1d5c8-9a3e-4d7b-bf6c-1b8e5a7d3c96"},
    ),
)

PROVIDERS: Final[tuple[ProviderSpec, ...]] = (
    ProviderSpec(
        identifier="FI-UNIV-PREVIEW",
        scheme=EAS_FI,
        name="Sandbox University of Helsinki",
        country="FI",
        access_point=ACCESS_POINTS["FI"],
        behaviour=Behaviour.PREVIEW,
        evidence_type=ET_FI_DEGREE,
        version=EdmVersion.V2_0,
    ),
    ProviderSpec(
        identifier="FI-DVV-HELSINKI",
        scheme=EAS_FI,
        name="Sandbox Digital and Population Data Services Agency, Helsinki",
        country="FI",
        access_point=ACCESS_POINTS["FI"],
        behaviour=Behaviour.DIRECT,
        evidence_type=ET_FI_BIRTH,
        version=EdmVersion.V2_0,
        region="FI1B",
    ),
    ProviderSpec(
        identifier="FI-DVV-TURKU",
        scheme=EAS_FI,
        name="Sandbox Digital and Population Data Services Agency, Turku",
        country="FI",
        access_point=ACCESS_POINTS["FI"],
        behaviour=Behaviour.DIRECT,
        evidence_type=ET_FI_BIRTH,
        version=EdmVersion.V2_0,
        region="FI19",
    ),
    ProviderSpec(
        identifier="SE-UHR-DIRECT",
        scheme=EAS_SE,
        name="Sandbox Swedish Council for Higher Education",
        country="SE",
        access_point=ACCESS_POINTS["SE"],
        behaviour=Behaviour.DIRECT,
        evidence_type=ET_SE_DEGREE,
        version=EdmVersion.V1_2,
    ),
    ProviderSpec(
        identifier="SE-LADOK-ERROR",
        scheme=EAS_SE,
        name="Sandbox Ladok",
        country="SE",
        access_point=ACCESS_POINTS["SE"],
        behaviour=Behaviour.ERROR,
        evidence_type=ET_SE_DEGREE,
        version=EdmVersion.V2_0,
        error_code="EDM:ERR:0004",
    ),
)


@dataclass(frozen=True)
class Network:
    """The whole simulated network; ``DEFAULT_NETWORK`` is the one documented."""

    requirements: tuple[RequirementSpec, ...] = REQUIREMENTS
    evidence_types: tuple[EvidenceTypeSpec, ...] = EVIDENCE_TYPES
    providers: tuple[ProviderSpec, ...] = PROVIDERS
    requester_access_point: str = REQUESTER_ACCESS_POINT

    def provider(self, identifier: str) -> ProviderSpec | None:
        return next((p for p in self.providers if p.identifier == identifier), None)

    def evidence_type(self, classification: str) -> EvidenceTypeSpec | None:
        return next((e for e in self.evidence_types if e.classification == classification), None)

    def requirement(self, identifier: str) -> RequirementSpec | None:
        return next((r for r in self.requirements if r.identifier == identifier), None)

    def providers_of(self, classification: str) -> list[ProviderSpec]:
        return [p for p in self.providers if p.evidence_type == classification]

    def access_points(self) -> set[str]:
        return {p.access_point for p in self.providers}

    def with_versions(
        self,
        by_country: Mapping[str, EdmVersion | str] | None = None,
        by_provider: Mapping[str, EdmVersion | str] | None = None,
    ) -> Network:
        """The same network with other EDM versions (a provider's own entry wins)."""
        countries = {k.upper(): _version(v) for k, v in (by_country or {}).items()}
        own = {k: _version(v) for k, v in (by_provider or {}).items()}
        unknown = set(own) - {p.identifier for p in self.providers}
        if unknown:
            raise ValueError(f"no such provider: {sorted(unknown)}")
        providers = tuple(
            replace(
                p,
                version=own.get(p.identifier, countries.get(p.country, p.version)),
            )
            for p in self.providers
        )
        return replace(self, providers=providers)


def _version(value: EdmVersion | str) -> EdmVersion:
    return value if isinstance(value, EdmVersion) else EdmVersion.from_identifier(value)


DEFAULT_NETWORK: Final = Network()

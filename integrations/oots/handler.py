"""OOTS Dokumentation 1: what the platform does with each validated SOAP call.

Every operation is routed first: the token's authority needs an approved agreement for
service ``oots`` (SP-301/302 otherwise). Evidence requests also need the authority's OOTS
identifier, the SysID of role ``oots_requester`` in the routing table (SP-710 without).
Nothing leaves the platform before both checks and the input checks passed.

- ``FindBevistyper`` / ``FindUdbydere`` ask the common services (Evidence Broker, Data Service
  Directory; cached by the client);
- ``AnmodBevis`` looks the chosen provider up in the DSD (access point, scheme, EDM versions,
  evidence type and format), builds the EDM request in the version the provider conforms to,
  submits it (``exchange``), and waits up to ``answer_wait_seconds`` for the answer;
- ``AnmodBevisEfterForhaandsvisning`` sends the second request of a request waiting for the
  user's preview; ``HentStatus`` tells where a request stands.

An error answer of the provider, when it arrives while the call waits, is the call's fault
(one SP-70x code per ``EDM:ERR`` code); ``HentStatus`` answers it as data (status ``Fejl``).
A request id of another authority is refused (SP-712) without saying anything about it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, Final

from integrations.oots import REQUESTER_ROLE
from integrations.oots.access_points import COMMON_SERVICES_PEER, common_services_peer
from integrations.oots.common_services import (
    AttributeNeeded,
    ClassificationConcept,
    CommonServicesClient,
    ProviderInfo,
    ProvidersAnswer,
)
from integrations.oots.common_services.client import open_transport as open_common_services
from integrations.oots.common_services.queries import attribute_parameter
from integrations.oots.edm import (
    EvidenceRequest,
    LegalPerson,
    LocalizedText,
    NaturalPerson,
    Requester,
    Requirement,
    UnsupportedEdmVersion,
    choose_version,
)
from integrations.oots.errors import (
    OotsAttributeRequired,
    OotsInvalidCountry,
    OotsInvalidInput,
    OotsProviderUnknown,
    OotsRequesterNotConfigured,
    OotsRequestOfOtherAuthority,
    OotsRequestUnknown,
    OotsUnknownMediaType,
    OotsVersionUnsupported,
)
from integrations.oots.exchange import MEDIA_TYPES, Destination, OotsExchange, Outcome
from integrations.oots.messages import (
    AnmodBevis,
    AnmodBevisEfterForhaandsvisning,
    ClassificationQuestion,
    CompanySubject,
    EvidenceTypeFound,
    Failure,
    FindBevistyper,
    FindUdbydere,
    HentStatus,
    ProviderFound,
    RequestView,
    RequirementFound,
    Status,
    Text,
)
from integrations.oots.messages import (
    AttributeNeeded as AttributeAnswer,
)
from integrations.oots.messages import ProvidersAnswer as ProvidersView
from integrations.oots.request_store import ANSWERED, FAILED, PREVIEW_REQUIRED, RequestRecord
from integrations.oots.settings import OOTS_SETTINGS, OotsSettings
from serviceplatform.call import PlatformCall, current_call
from serviceplatform.errors import ConfigurationError
from serviceplatform.platform import Platform
from serviceplatform.routing.model import Route

#: ISO 3166-1 alpha-2 codes of the EU and EEA states taking part in OOTS (Greece also as EL).
OOTS_COUNTRIES: Final = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "EL",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IS",
        "IT",
        "LI",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "NO",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)

DiscoveryFactory = Callable[[], CommonServicesClient]


class OotsHandler:
    def __init__(
        self,
        platform: Platform,
        exchange: OotsExchange,
        *,
        discovery: DiscoveryFactory | None = None,
    ) -> None:
        self.platform = platform
        self.exchange = exchange
        self.settings: OotsSettings = platform.settings.section(OOTS_SETTINGS)
        self._discovery_factory = discovery or self._new_discovery
        self._discovery: CommonServicesClient | None = None
        self._lock = threading.Lock()

    # --- FindBevistyper / FindUdbydere ---------------------------------------------------------

    def find_bevistyper(
        self, environ: dict[str, Any], request: FindBevistyper
    ) -> tuple[RequirementFound, ...]:
        call = current_call(environ)
        self._route(call)
        country = _country(call, request.country) if request.country else None
        client = self._client(call)
        requirements = client.requirements(request.procedure, self.settings.procedure_country)
        if request.requirement_id is not None:
            requirements = tuple(r for r in requirements if r.identifier == request.requirement_id)
        found = tuple(
            RequirementFound(
                identifier=r.identifier,
                names=_texts(r.names),
                evidence_types=tuple(
                    EvidenceTypeFound(
                        classification=et.classification,
                        country=et.country,
                        titles=_texts(et.titles),
                        descriptions=_texts(et.descriptions),
                    )
                    for et in client.evidence_types(r.identifier, country)
                ),
            )
            for r in requirements
        )
        call.detail = f"procedure {request.procedure}: {len(found)} requirement(s)"
        return found

    def find_udbydere(self, environ: dict[str, Any], request: FindUdbydere) -> ProvidersView:
        call = current_call(environ)
        self._route(call)
        country = _country(call, request.country)
        answer = self._providers(call, request.classification, country, request)
        if isinstance(answer, AttributeNeeded):
            call.detail = f"{country}: attribute(s) needed: {_asked(answer)}"
            return ProvidersView(
                attribute_needed=AttributeAnswer(
                    context_id=answer.context_id,
                    level=answer.jurisdiction_level,
                    descriptions=_texts(answer.description),
                    questions=tuple(_question(q) for q in answer.classifications),
                )
            )
        providers = tuple(_provider_found(p) for p in answer.providers)
        call.detail = f"{country}: {len(providers)} provider(s)"
        return ProvidersView(providers=providers)

    # --- AnmodBevis ---------------------------------------------------------------------------

    def anmod_bevis(self, environ: dict[str, Any], request: AnmodBevis) -> RequestView:
        call = current_call(environ)
        route = self._route(call)
        requester = self._requester(call, route)
        country = _country(call, request.country)
        if request.format is not None and request.format not in MEDIA_TYPES:
            raise OotsUnknownMediaType(request.format[:64])
        self._require_exchange(call)
        answer = self._providers(call, request.classification, country, request)
        if isinstance(answer, AttributeNeeded):
            raise OotsAttributeRequired(_asked(answer))
        provider = next((p for p in answer.providers if p.provider_id == request.provider_id), None)
        if provider is None:
            known = ", ".join(p.provider_id for p in answer.providers) or "none"
            raise OotsProviderUnknown(f"{request.provider_id} (known: {known})")
        try:
            version = choose_version(provider.conforms_to)
        except UnsupportedEdmVersion as exc:
            raise OotsVersionUnsupported(str(exc)) from None
        evidence_type = provider.requested_evidence_type(request.format)
        if evidence_type is None:
            offered = ", ".join(provider.distributions)
            raise OotsUnknownMediaType(f"{request.format} (offered: {offered})")
        requirement = self._requirement(call, request)
        edm = EvidenceRequest(
            request_id=uuid.uuid4(),
            issue_datetime=self.platform.clock(),
            procedure=request.procedure,
            requirements=(requirement,),
            evidence_type=evidence_type,
            provider=provider.evidence_provider(),
            requester=requester,
            subject=_subject(request),
            explicit_request_given=request.explicit_request,
            possibility_for_preview=request.preview_possible,
            version=version,
            provider_classifications=provider.provider_classifications(
                (answer.identifier, answer.value) for answer in request.classifications
            ),
        )
        destination = Destination(
            provider.access_service_id, provider.provider_id, provider.provider_scheme
        )
        record = self.exchange.submit_first(
            edm,
            destination,
            authority_cvr=call.authority_cvr or "",
            consumer_system=call.consumer_system,
        )
        return self._answer(call, self.exchange.wait(record, self.settings.answer_wait_seconds))

    def anmod_efter_forhaandsvisning(
        self, environ: dict[str, Any], request: AnmodBevisEfterForhaandsvisning
    ) -> RequestView:
        call = current_call(environ)
        self._route(call)
        self._require_exchange(call)
        record = self._own(call, request.request_id)
        record = self.exchange.refresh(record)
        record = self.exchange.submit_second(record, return_location=request.return_location)
        return self._answer(call, self.exchange.wait(record, self.settings.answer_wait_seconds))

    def hent_status(self, environ: dict[str, Any], request: HentStatus) -> RequestView:
        call = current_call(environ)
        self._route(call)
        record = self._own(call, request.request_id)
        record = self.exchange.wait(record, 0)
        outcome = self.exchange.outcome(record)
        call.detail = _describe(record)
        return _view(outcome)

    # --- shared -------------------------------------------------------------------------------

    def _route(self, call: PlatformCall) -> Route:
        route = self.platform.route(call, required_roles=(), subject=None)
        call.sysid = route.sysids.get(REQUESTER_ROLE)
        return route

    def _requester(self, call: PlatformCall, route: Route) -> Requester:
        identifier = route.sysids.get(REQUESTER_ROLE)
        cvr = call.authority_cvr or ""
        if not identifier:
            raise OotsRequesterNotConfigured(f"authority {cvr}, agreement {route.agreement.uuid}")
        configured = self.settings.requesters.get(cvr)
        name = configured.name if configured is not None and configured.name else f"CVR {cvr}"
        return Requester(
            name=name,
            identifier=identifier,
            scheme=self.settings.requester_scheme,
            country=self.settings.requester_country,
        )

    def _require_exchange(self, call: PlatformCall) -> None:
        if not self.exchange.configured_for(call.authority_cvr or ""):
            raise ConfigurationError("[oots] domibus_url and party_id are not set")

    def _own(self, call: PlatformCall, request_id: str) -> RequestRecord:
        record = self.exchange.store.get(request_id)
        if record is None:
            raise OotsRequestUnknown(request_id)
        if record.authority_cvr != call.authority_cvr:
            # Says nothing about the request: only that it is not the caller's.
            raise OotsRequestOfOtherAuthority(request_id)
        return record

    def _client(self, call: PlatformCall) -> CommonServicesClient:
        with self._lock:
            if self._discovery is None:
                self._discovery = self._discovery_factory()
            return self._discovery

    def _new_discovery(self) -> CommonServicesClient:
        peer = common_services_peer(self.settings)
        return CommonServicesClient(
            open_common_services(COMMON_SERVICES_PEER, peer, None),
            ttl_seconds=self.settings.cache_ttl_seconds,
            peer=COMMON_SERVICES_PEER,
        )

    def _providers(
        self,
        call: PlatformCall,
        classification: str,
        country: str,
        given: FindUdbydere | AnmodBevis,
    ) -> ProvidersAnswer:
        # The DSD takes each classification answer as a parameter named by its concept.
        attributes = {answer.identifier: answer.value for answer in given.classifications}
        attribute = given.attribute
        if attribute is not None:
            attributes |= {
                attribute_parameter(attribute.level): attribute.value,
                "jurisdiction-context-id": attribute.context_id,
            }
        client = self._client(call)
        return client.providers(classification, country, attributes=attributes or None)

    def _requirement(self, call: PlatformCall, request: AnmodBevis) -> Requirement:
        client = self._client(call)
        known = client.requirements(request.procedure, self.settings.procedure_country)
        found = next((r for r in known if r.identifier == request.requirement_id), None)
        if found is None:
            raise OotsInvalidInput(
                f"requirement {request.requirement_id} is no requirement of procedure "
                f"{request.procedure} in {self.settings.procedure_country}"
            )
        return found.requirement()

    def _answer(self, call: PlatformCall, record: RequestRecord) -> RequestView:
        outcome = self.exchange.outcome(record)
        call.detail = _describe(record)
        if outcome.error is not None:
            # The provider's error (or ours) is the call's fault; the id is in the text.
            error = outcome.error
            error.detail = f"request {record.request_id}: {error.detail or ''}".rstrip(": ")
            raise error
        return _view(outcome)


def _country(call: PlatformCall, value: str) -> str:
    country = value.strip().upper()
    if country not in OOTS_COUNTRIES:
        raise OotsInvalidCountry(value[:8])
    return country


def _texts(texts: tuple[LocalizedText, ...]) -> tuple[Text, ...]:
    return tuple(Text(lang=t.lang.upper(), value=t.value) for t in texts)


def _asked(answer: AttributeNeeded) -> str:
    """What the DSD asks for: the jurisdiction level (with its context) and the concepts."""
    asked = [f"{answer.jurisdiction_level} ({answer.context_id})"]
    asked = asked if answer.context_id else []
    return ", ".join(asked + [q.identifier for q in answer.classifications])


def _question(concept: ClassificationConcept) -> ClassificationQuestion:
    return ClassificationQuestion(
        identifier=concept.identifier,
        type=concept.type,
        value_expression=concept.value_expression,
        descriptions=_texts(concept.descriptions),
        supported_values=concept.supported_values,
    )


def _provider_found(provider: ProviderInfo) -> ProviderFound:
    try:
        version: str | None = choose_version(provider.conforms_to).value
    except UnsupportedEdmVersion:
        version = None
    return ProviderFound(
        identifier=provider.provider_id,
        scheme=provider.provider_scheme,
        name=provider.provider_name,
        country=provider.country,
        edm_version=version,
        formats=tuple(f for f in provider.distributions if f in MEDIA_TYPES),
    )


def _subject(request: AnmodBevis) -> NaturalPerson | LegalPerson:
    subject = request.subject
    if isinstance(subject, CompanySubject):
        return LegalPerson(
            legal_name=subject.name,
            legal_person_identifier=subject.eidas_identifier,
            level_of_assurance=subject.level_of_assurance,
        )
    return NaturalPerson(
        family_name=subject.family_name,
        given_name=subject.given_name,
        date_of_birth=subject.date_of_birth,
        identifier=subject.eidas_identifier,
        level_of_assurance=subject.level_of_assurance,
    )


_STATUS: Final = {
    PREVIEW_REQUIRED: Status.PREVIEW_REQUIRED,
    ANSWERED: Status.EVIDENCE,
    FAILED: Status.FAILED,
}


def _view(outcome: Outcome) -> RequestView:
    record = outcome.record
    error = outcome.error
    status = _STATUS.get(record.state, Status.PENDING)
    if error is not None:
        status = Status.FAILED
    return RequestView(
        request_id=record.request_id,
        status=status,
        provider_id=record.provider_id,
        edm_version=record.edm_version,
        preview=outcome.preview,
        evidence=outcome.evidence,
        failure=None
        if error is None
        else Failure(code=error.code, text=error.error_text, edm_code=record.edm_error_code),
    )


def _describe(record: RequestRecord) -> str:
    text = f"request {record.request_id} to {record.provider_id} ({record.edm_version}): "
    return text + record.state

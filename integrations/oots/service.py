"""OOTS Dokumentation 1 as a spyne service behind the hand-written contract (``wsdl/oots``).

The spyne models mirror ``DokumentationMsg.xsd`` type for type (names, order, cardinalities):
the contract validates every request and every answer (see
:mod:`serviceplatform.soap.spyne_glue`), spyne only reads values and writes the answer. Each
method turns the request into a value of :mod:`integrations.oots.messages`, calls the handler
with the WSGI environ and writes what it returns. A ``ServicePlatformError`` from the handler
becomes its platform fault; anything else SP-900 without its text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Protocol

from spyne import Boolean, ByteArray, ComplexModel, Date, ServiceBase, Unicode, rpc

from integrations.oots.edm import Evidence, LocalizedText, PreviewRequired
from integrations.oots.messages import (
    AnmodBevis,
    AnmodBevisEfterForhaandsvisning,
    Attribute,
    ClassificationAnswer,
    CompanySubject,
    FindBevistyper,
    FindUdbydere,
    HentStatus,
    PersonSubject,
    ProvidersAnswer,
    RequestView,
    RequirementFound,
    Text,
)
from serviceplatform.resources import contract
from serviceplatform.soap.spyne_glue import ContractService

TNS: Final = "http://serviceplatformen.dk/xml/wsdl/soap12/OOTS/Dokumentation/1/"
SERVICE_NAME: Final = "Dokumentation"

#: The hand-written contract served at ``?wsdl``.
WSDL_PATH: Final = contract("oots", "Dokumentation.wsdl")

#: Body element local name -> operation name.
OPERATIONS: Final[dict[str, str]] = {
    f"{name}Request": name
    for name in (
        "FindBevistyper",
        "FindUdbydere",
        "AnmodBevis",
        "AnmodBevisEfterForhaandsvisning",
        "HentStatus",
    )
}


class OotsServiceHandler(Protocol):
    """What the platform does with a validated request; raises ``ServicePlatformError``."""

    def find_bevistyper(
        self, environ: dict[str, Any], request: FindBevistyper
    ) -> tuple[RequirementFound, ...]: ...

    def find_udbydere(self, environ: dict[str, Any], request: FindUdbydere) -> ProvidersAnswer: ...

    def anmod_bevis(self, environ: dict[str, Any], request: AnmodBevis) -> RequestView: ...

    def anmod_efter_forhaandsvisning(
        self, environ: dict[str, Any], request: AnmodBevisEfterForhaandsvisning
    ) -> RequestView: ...

    def hent_status(self, environ: dict[str, Any], request: HentStatus) -> RequestView: ...


# --- models: one per contract type ----------------------------------------------------------

_REQUIRED: Final[dict[str, Any]] = {"min_occurs": 1, "nillable": False}
_OPTIONAL: Final[dict[str, Any]] = {"min_occurs": 0}
_MANY: Final[dict[str, Any]] = {"min_occurs": 0, "max_occurs": "unbounded"}


class _Model(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS


class TekstType(_Model):
    _type_info = [("Sprog", Unicode(**_REQUIRED)), ("Tekst", Unicode(**_REQUIRED))]


class FindBevistyperRequestType(_Model):
    _type_info = [
        ("ProcedureKode", Unicode(**_REQUIRED)),
        ("KravIdentifikator", Unicode(**_OPTIONAL)),
        ("LandeKode", Unicode(**_OPTIONAL)),
    ]


class BevistypeType(_Model):
    _type_info = [
        ("Klassifikation", Unicode(**_REQUIRED)),
        ("LandeKode", Unicode(**_REQUIRED)),
        ("Titel", TekstType.customize(**_MANY)),
        ("Beskrivelse", TekstType.customize(**_MANY)),
    ]


class KravType(_Model):
    _type_info = [
        ("Identifikator", Unicode(**_REQUIRED)),
        ("Navn", TekstType.customize(**_MANY)),
        ("Bevistype", BevistypeType.customize(**_MANY)),
    ]


class FindBevistyperResponseType(_Model):
    _type_info = [("Krav", KravType.customize(**_MANY))]


class YderligereAttributType(_Model):
    _type_info = [
        ("KontekstIdentifikator", Unicode(**_REQUIRED)),
        ("Niveau", Unicode(**_REQUIRED)),
        ("Vaerdi", Unicode(**_REQUIRED)),
    ]


class KlassifikationSvarType(_Model):
    _type_info = [
        ("Identifikator", Unicode(**_REQUIRED)),
        ("Vaerdi", Unicode(**_REQUIRED)),
    ]


class FindUdbydereRequestType(_Model):
    _type_info = [
        ("BevistypeKlassifikation", Unicode(**_REQUIRED)),
        ("LandeKode", Unicode(**_REQUIRED)),
        ("YderligereAttribut", YderligereAttributType.customize(**_OPTIONAL)),
        ("KlassifikationSvar", KlassifikationSvarType.customize(**_MANY)),
    ]


class UdbyderType(_Model):
    _type_info = [
        ("Identifikator", Unicode(**_REQUIRED)),
        ("IdentifikatorSkema", Unicode(**_REQUIRED)),
        ("Navn", Unicode(**_REQUIRED)),
        ("LandeKode", Unicode(**_REQUIRED)),
        ("EDMVersion", Unicode(**_OPTIONAL)),
        ("Format", Unicode(**_MANY)),
    ]


class KlassifikationSpoergsmaalType(_Model):
    _type_info = [
        ("Identifikator", Unicode(**_REQUIRED)),
        ("Type", Unicode(**_OPTIONAL)),
        ("Udtryk", Unicode(**_OPTIONAL)),
        ("Beskrivelse", TekstType.customize(**_MANY)),
        ("MuligVaerdi", Unicode(**_MANY)),
    ]


class AttributKraevetType(_Model):
    _type_info = [
        ("KontekstIdentifikator", Unicode(**_OPTIONAL)),
        ("Niveau", Unicode(**_OPTIONAL)),
        ("Beskrivelse", TekstType.customize(**_MANY)),
        ("Klassifikation", KlassifikationSpoergsmaalType.customize(**_MANY)),
    ]


class FindUdbydereResponseType(_Model):
    _type_info = [
        ("Udbyder", UdbyderType.customize(**_MANY)),
        ("AttributKraevet", AttributKraevetType.customize(**_OPTIONAL)),
    ]


class PersonType(_Model):
    _type_info = [
        ("Fornavn", Unicode(**_REQUIRED)),
        ("Efternavn", Unicode(**_REQUIRED)),
        ("Foedselsdato", Date(**_REQUIRED)),
        ("EidasIdentifikator", Unicode(**_OPTIONAL)),
        ("Sikringsniveau", Unicode(**_OPTIONAL)),
    ]


class VirksomhedType(_Model):
    _type_info = [
        ("Navn", Unicode(**_REQUIRED)),
        ("EidasIdentifikator", Unicode(**_OPTIONAL)),
        ("Sikringsniveau", Unicode(**_OPTIONAL)),
    ]


class AnmodBevisRequestType(_Model):
    # Person and Virksomhed are an xsd:choice in the contract, which validates it first.
    _type_info = [
        ("Person", PersonType.customize(**_OPTIONAL)),
        ("Virksomhed", VirksomhedType.customize(**_OPTIONAL)),
        ("ProcedureKode", Unicode(**_REQUIRED)),
        ("KravIdentifikator", Unicode(**_REQUIRED)),
        ("BevistypeKlassifikation", Unicode(**_REQUIRED)),
        ("LandeKode", Unicode(**_REQUIRED)),
        ("UdbyderIdentifikator", Unicode(**_REQUIRED)),
        ("YderligereAttribut", YderligereAttributType.customize(**_OPTIONAL)),
        ("KlassifikationSvar", KlassifikationSvarType.customize(**_MANY)),
        ("Format", Unicode(**_OPTIONAL)),
        ("EksplicitAnmodning", Boolean(**_REQUIRED)),
        ("ForhaandsvisningMulig", Boolean(**_REQUIRED)),
    ]


class AnmodBevisEfterForhaandsvisningRequestType(_Model):
    _type_info = [
        ("AnmodningId", Unicode(**_REQUIRED)),
        ("ReturAdresse", Unicode(**_OPTIONAL)),
    ]


class HentStatusRequestType(_Model):
    _type_info = [("AnmodningId", Unicode(**_REQUIRED))]


class ForhaandsvisningType(_Model):
    _type_info = [
        ("Placering", Unicode(**_REQUIRED)),
        ("Metode", Unicode(**_REQUIRED)),
        ("Beskrivelse", TekstType.customize(**_MANY)),
    ]


class MyndighedType(_Model):
    _type_info = [
        ("Identifikator", Unicode(**_REQUIRED)),
        ("IdentifikatorSkema", Unicode(**_OPTIONAL)),
        ("Navn", Unicode(**_OPTIONAL)),
    ]


class BevisType(_Model):
    _type_info = [
        ("Dokument", ByteArray(**_REQUIRED)),
        ("MedieType", Unicode(**_REQUIRED)),
        ("Filnavn", Unicode(**_OPTIONAL)),
        ("BevisIdentifikator", Unicode(**_OPTIONAL)),
        ("BevistypeKlassifikation", Unicode(**_OPTIONAL)),
        ("BevistypeTitel", TekstType.customize(**_MANY)),
        ("UdstedendeMyndighed", MyndighedType.customize(**_OPTIONAL)),
        ("Udstedelsesdato", Date(**_OPTIONAL)),
    ]


class FejlType(_Model):
    _type_info = [
        ("Fejlkode", Unicode(**_REQUIRED)),
        ("EDMFejlkode", Unicode(**_OPTIONAL)),
        ("Tekst", Unicode(**_REQUIRED)),
    ]


class AnmodningSvarType(_Model):
    _type_info = [
        ("AnmodningId", Unicode(**_REQUIRED)),
        ("Status", Unicode(**_REQUIRED)),
        ("UdbyderIdentifikator", Unicode(**_REQUIRED)),
        ("EDMVersion", Unicode(**_REQUIRED)),
        ("Forhaandsvisning", ForhaandsvisningType.customize(**_OPTIONAL)),
        ("Bevis", BevisType.customize(**_OPTIONAL)),
        ("Fejl", FejlType.customize(**_OPTIONAL)),
    ]


# --- conversion in ----------------------------------------------------------------------------


def _attribute(value: Any) -> Attribute | None:
    if value is None:
        return None
    return Attribute(context_id=value.KontekstIdentifikator, level=value.Niveau, value=value.Vaerdi)


def _answers(values: Any) -> tuple[ClassificationAnswer, ...]:
    return tuple(ClassificationAnswer(v.Identifikator, v.Vaerdi) for v in values or ())


def to_find_bevistyper(request: Any) -> FindBevistyper:
    return FindBevistyper(
        procedure=request.ProcedureKode,
        requirement_id=request.KravIdentifikator,
        country=request.LandeKode,
    )


def to_find_udbydere(request: Any) -> FindUdbydere:
    return FindUdbydere(
        classification=request.BevistypeKlassifikation,
        country=request.LandeKode,
        attribute=_attribute(request.YderligereAttribut),
        classifications=_answers(request.KlassifikationSvar),
    )


def to_anmod_bevis(request: Any) -> AnmodBevis:
    subject: PersonSubject | CompanySubject
    if request.Person is not None:
        person = request.Person
        subject = PersonSubject(
            given_name=person.Fornavn,
            family_name=person.Efternavn,
            date_of_birth=person.Foedselsdato,
            eidas_identifier=person.EidasIdentifikator,
            level_of_assurance=person.Sikringsniveau or "High",
        )
    else:
        company = request.Virksomhed
        subject = CompanySubject(
            name=company.Navn,
            eidas_identifier=company.EidasIdentifikator,
            level_of_assurance=company.Sikringsniveau or "High",
        )
    return AnmodBevis(
        subject=subject,
        procedure=request.ProcedureKode,
        requirement_id=request.KravIdentifikator,
        classification=request.BevistypeKlassifikation,
        country=request.LandeKode,
        provider_id=request.UdbyderIdentifikator,
        explicit_request=bool(request.EksplicitAnmodning),
        preview_possible=bool(request.ForhaandsvisningMulig),
        attribute=_attribute(request.YderligereAttribut),
        classifications=_answers(request.KlassifikationSvar),
        format=request.Format,
    )


# --- conversion out ---------------------------------------------------------------------------


def _texts(texts: Iterable[Text | LocalizedText]) -> list[TekstType]:
    return [TekstType(Sprog=text.lang.upper(), Tekst=text.value) for text in texts]


def requirements_answer(found: Iterable[RequirementFound]) -> FindBevistyperResponseType:
    return FindBevistyperResponseType(
        Krav=[
            KravType(
                Identifikator=requirement.identifier,
                Navn=_texts(requirement.names),
                Bevistype=[
                    BevistypeType(
                        Klassifikation=et.classification,
                        LandeKode=et.country,
                        Titel=_texts(et.titles),
                        Beskrivelse=_texts(et.descriptions),
                    )
                    for et in requirement.evidence_types
                ],
            )
            for requirement in found
        ]
    )


def providers_answer(answer: ProvidersAnswer) -> FindUdbydereResponseType:
    needed = answer.attribute_needed
    return FindUdbydereResponseType(
        Udbyder=[
            UdbyderType(
                Identifikator=p.identifier,
                IdentifikatorSkema=p.scheme,
                Navn=p.name,
                LandeKode=p.country,
                EDMVersion=p.edm_version,
                Format=list(p.formats),
            )
            for p in answer.providers
        ],
        AttributKraevet=None
        if needed is None
        else AttributKraevetType(
            KontekstIdentifikator=needed.context_id or None,
            Niveau=needed.level or None,
            Beskrivelse=_texts(needed.descriptions),
            Klassifikation=[
                KlassifikationSpoergsmaalType(
                    Identifikator=q.identifier,
                    Type=q.type,
                    Udtryk=q.value_expression,
                    Beskrivelse=_texts(q.descriptions),
                    MuligVaerdi=list(q.supported_values),
                )
                for q in needed.questions
            ],
        ),
    )


def _preview(preview: PreviewRequired) -> ForhaandsvisningType:
    return ForhaandsvisningType(
        Placering=preview.location,
        Metode=preview.method,
        Beskrivelse=_texts(preview.description),
    )


def _evidence(evidence: Evidence) -> BevisType:
    metadata = evidence.metadata
    authority = metadata.issuing_authority
    return BevisType(
        Dokument=[evidence.content],
        MedieType=evidence.mime_type,
        Filnavn=evidence.filename,
        BevisIdentifikator=metadata.identifier,
        BevistypeKlassifikation=metadata.evidence_type_classification,
        BevistypeTitel=_texts(metadata.evidence_type_titles),
        UdstedendeMyndighed=None
        if authority is None
        else MyndighedType(
            Identifikator=authority.identifier,
            IdentifikatorSkema=authority.scheme,
            Navn=authority.names[0].value if authority.names else None,
        ),
        Udstedelsesdato=metadata.issuing_date,
    )


def request_answer(view: RequestView) -> AnmodningSvarType:
    failure = view.failure
    return AnmodningSvarType(
        AnmodningId=view.request_id,
        Status=view.status.value,
        UdbyderIdentifikator=view.provider_id,
        EDMVersion=view.edm_version,
        Forhaandsvisning=_preview(view.preview) if view.preview is not None else None,
        Bevis=_evidence(view.evidence) if view.evidence is not None else None,
        Fejl=None
        if failure is None
        else FejlType(Fejlkode=failure.code, EDMFejlkode=failure.edm_code, Tekst=failure.text),
    )


def service_class(handler: OotsServiceHandler) -> type[ServiceBase]:
    """A spyne service class bound to ``handler`` (spyne services are classes)."""

    def operation(name: str, request_type: Any, returns: Any) -> Any:
        return rpc(
            request_type,
            _returns=returns,
            _body_style="bare",
            _operation_name=name,
            _in_message_name=f"{name}Request",
            _out_message_name=f"{name}Response",
        )

    class DokumentationService(ServiceBase):  # type: ignore[misc]
        @operation("FindBevistyper", FindBevistyperRequestType, FindBevistyperResponseType)  # type: ignore[untyped-decorator]
        def FindBevistyper(ctx: Any, request: Any) -> FindBevistyperResponseType:  # noqa: N802, N805
            found = handler.find_bevistyper(ctx.transport.req_env, to_find_bevistyper(request))
            return requirements_answer(found)

        @operation("FindUdbydere", FindUdbydereRequestType, FindUdbydereResponseType)  # type: ignore[untyped-decorator]
        def FindUdbydere(ctx: Any, request: Any) -> FindUdbydereResponseType:  # noqa: N802, N805
            answer = handler.find_udbydere(ctx.transport.req_env, to_find_udbydere(request))
            return providers_answer(answer)

        @operation("AnmodBevis", AnmodBevisRequestType, AnmodningSvarType)  # type: ignore[untyped-decorator]
        def AnmodBevis(ctx: Any, request: Any) -> AnmodningSvarType:  # noqa: N802, N805
            view = handler.anmod_bevis(ctx.transport.req_env, to_anmod_bevis(request))
            return request_answer(view)

        @operation(  # type: ignore[untyped-decorator]
            "AnmodBevisEfterForhaandsvisning",
            AnmodBevisEfterForhaandsvisningRequestType,
            AnmodningSvarType,
        )
        def AnmodBevisEfterForhaandsvisning(ctx: Any, request: Any) -> AnmodningSvarType:  # noqa: N802, N805
            second = AnmodBevisEfterForhaandsvisning(
                request_id=request.AnmodningId, return_location=request.ReturAdresse
            )
            return request_answer(
                handler.anmod_efter_forhaandsvisning(ctx.transport.req_env, second)
            )

        @operation("HentStatus", HentStatusRequestType, AnmodningSvarType)  # type: ignore[untyped-decorator]
        def HentStatus(ctx: Any, request: Any) -> AnmodningSvarType:  # noqa: N802, N805
            status = HentStatus(request_id=request.AnmodningId)
            return request_answer(handler.hent_status(ctx.transport.req_env, status))

    return DokumentationService


#: The service behind its contract: OOTS Dokumentation 1, SOAP 1.2.
SERVICE: Final = ContractService(
    tns=TNS,
    name=SERVICE_NAME,
    wsdl_path=WSDL_PATH,
    service_class=service_class,
    soap_version=12,
)
#: ``build_wsgi_app(handler, *, max_body_bytes, public_url)``: the WSGI application around
#: ``handler``.
build_wsgi_app: Final = SERVICE.build_wsgi_app

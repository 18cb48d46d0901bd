"""SF2250 VedligeholdTilmelding 2 as a spyne service behind the hand-written contract.

The spyne models below mirror ``wsdl/sf2250`` element for element (names, namespaces,
cardinalities): the contract validates every request first (see
:mod:`serviceplatform.soap.spyne_glue`), and spyne then only reads the values and writes the
response. Each method turns the request into a value of :mod:`integrations.sf2250.messages`,
calls the platform's handler with the WSGI environ and answers ``StatusKode`` 20 (KOMBIT's
"OK"). A ``ServicePlatformError`` from the handler becomes its platform fault; anything
else becomes SP-900 without any of its text (the glue logs it).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from spyne import Boolean, ComplexModel, Integer, ServiceBase, Unicode, rpc

from integrations.sf2250.messages import (
    OpdaterBorgerNemSMS,
    SlutbrugerStamdata,
    Subject,
    TilmeldNemSMS,
)
from serviceplatform.resources import contract
from serviceplatform.soap.spyne_glue import ContractService

TNS: Final = "http://serviceplatformen.dk/xml/wsdl/soap12/NemSMS/VedligeholdTilmelding/2/"
DKAL_NS: Final = "urn:oio:dkal:1.0.0"
SAGDOK_NS: Final = "urn:oio:sagdok:3.0.0"
SERVICE_NAME: Final = "VedligeholdTilmelding"

#: The hand-written contract served at ``?wsdl``.
WSDL_PATH: Final = contract("sf2250", "NemSMS.wsdl")

#: Body element local name -> operation name.
OPERATIONS: Final[dict[str, str]] = {
    "OpdaterBorgerNemSMSRequest": "OpdaterBorgerNemSMS",
    "TilmeldNemSMSRequest": "TilmeldNemSMS",
}

#: KOMBIT's StandardRetur status code for success.
STATUS_OK: Final = 20


class Sf2250Handler(Protocol):
    """What the platform does with a validated request; raises ``ServicePlatformError``."""

    def opdater_borger(self, environ: dict[str, Any], request: OpdaterBorgerNemSMS) -> None: ...

    def tilmeld_nemsms(self, environ: dict[str, Any], request: TilmeldNemSMS) -> None: ...


# --- models: one per contract type ----------------------------------------------------------
# Mandatory children are min_occurs=1, nillable=False, as the contract declares them.

_REQUIRED: Final[dict[str, Any]] = {"min_occurs": 1, "nillable": False}


class CPRCVRType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("cpr", Unicode(sub_name="CPR-nr", min_occurs=0, pattern="[0-9]{10}")),
        ("cvr", Unicode(sub_name="CVR-nr", min_occurs=0, pattern="[0-9]{8}")),
    ]


class SlutbrugerStamdataType(ComplexModel):  # type: ignore[misc]
    __namespace__ = DKAL_NS
    _type_info = [
        ("Navn", Unicode(min_occurs=0, min_len=1, max_len=100)),
        ("MobiltelefonNummer", Unicode(pattern=r"(\+45)?[0-9]{8}", **_REQUIRED)),
        ("EmailAdresse", Unicode(min_occurs=0, max_len=254)),
    ]


class MyndighedstilmeldingType(ComplexModel):  # type: ignore[misc]
    __namespace__ = DKAL_NS
    _type_info = [("TilmeldingIndikator", Boolean(**_REQUIRED))]


class StandardReturType(ComplexModel):  # type: ignore[misc]
    __namespace__ = SAGDOK_NS
    _type_info = [
        ("StatusKode", Integer(**_REQUIRED)),
        ("FejlbeskedTekst", Unicode(min_occurs=0)),
    ]


class OpdaterBorgerNemSMSRequestType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("CPRCVR", CPRCVRType.customize(**_REQUIRED)),
        ("SlutbrugerStamdata", SlutbrugerStamdataType.customize(sub_ns=DKAL_NS, **_REQUIRED)),
    ]


class TilmeldNemSMSRequestType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("CPRCVR", CPRCVRType.customize(**_REQUIRED)),
        (
            "Myndighedstilmelding",
            MyndighedstilmeldingType.customize(sub_ns=DKAL_NS, **_REQUIRED),
        ),
    ]


class OpdaterBorgerNemSMSResponseType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("StandardRetur", StandardReturType.customize(sub_ns=SAGDOK_NS, **_REQUIRED))]


class TilmeldNemSMSResponseType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("StandardRetur", StandardReturType.customize(sub_ns=SAGDOK_NS, **_REQUIRED))]


# --- conversion -----------------------------------------------------------------------------


def _subject(cprcvr: Any) -> Subject:
    return Subject.from_choice(getattr(cprcvr, "cpr", None), getattr(cprcvr, "cvr", None))


def to_opdater_borger(request: Any) -> OpdaterBorgerNemSMS:
    """The message value of a deserialized ``OpdaterBorgerNemSMSRequest``."""
    stamdata = request.SlutbrugerStamdata
    return OpdaterBorgerNemSMS(
        subject=_subject(request.CPRCVR),
        stamdata=SlutbrugerStamdata(
            mobiltelefon_nummer=stamdata.MobiltelefonNummer,
            navn=stamdata.Navn,
            email_adresse=stamdata.EmailAdresse,
        ),
    )


def to_tilmeld_nemsms(request: Any) -> TilmeldNemSMS:
    """The message value of a deserialized ``TilmeldNemSMSRequest``."""
    return TilmeldNemSMS(
        subject=_subject(request.CPRCVR),
        tilmeld=bool(request.Myndighedstilmelding.TilmeldingIndikator),
    )


def _ok() -> StandardReturType:
    return StandardReturType(StatusKode=STATUS_OK)


def service_class(handler: Sf2250Handler) -> type[ServiceBase]:
    """A spyne service class bound to ``handler`` (spyne services are classes)."""

    class VedligeholdTilmeldingService(ServiceBase):  # type: ignore[misc]
        @rpc(  # type: ignore[untyped-decorator]
            OpdaterBorgerNemSMSRequestType,
            _returns=OpdaterBorgerNemSMSResponseType,
            _body_style="bare",
            _operation_name="OpdaterBorgerNemSMS",
            _in_message_name="OpdaterBorgerNemSMSRequest",
            _out_message_name="OpdaterBorgerNemSMSResponse",
        )
        def OpdaterBorgerNemSMS(ctx: Any, request: Any) -> OpdaterBorgerNemSMSResponseType:  # noqa: N802, N805
            handler.opdater_borger(ctx.transport.req_env, to_opdater_borger(request))
            return OpdaterBorgerNemSMSResponseType(StandardRetur=_ok())

        @rpc(  # type: ignore[untyped-decorator]
            TilmeldNemSMSRequestType,
            _returns=TilmeldNemSMSResponseType,
            _body_style="bare",
            _operation_name="TilmeldNemSMS",
            _in_message_name="TilmeldNemSMSRequest",
            _out_message_name="TilmeldNemSMSResponse",
        )
        def TilmeldNemSMS(ctx: Any, request: Any) -> TilmeldNemSMSResponseType:  # noqa: N802, N805
            handler.tilmeld_nemsms(ctx.transport.req_env, to_tilmeld_nemsms(request))
            return TilmeldNemSMSResponseType(StandardRetur=_ok())

    return VedligeholdTilmeldingService


#: The service behind its contract: VedligeholdTilmelding 2, SOAP 1.2.
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

"""SF2250 VedligeholdTilmelding 2 as a spyne service behind the hand-written contract.

spyne dispatches each request to its method by the body element's name; there are no spyne
models. The contract validates every request first (see
:mod:`serviceplatform.soap.spyne_glue`), so each method takes the body element as it is
(``AnyXml``), reads its few values by direct child access into a value of
:mod:`integrations.sf2250.messages`, calls the platform's handler with the WSGI environ and
answers ``StatusKode`` 20 (KOMBIT's "OK") as a ``CannedAnswer``: bytes rendered once, checked
against the contract the first time. A ``ServicePlatformError`` from the handler becomes its
platform fault; anything else becomes SP-900 without any of its text (the glue logs it).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from lxml import etree
from spyne import AnyXml, ServiceBase, rpc

from integrations.sf2250.messages import (
    OpdaterBorgerNemSMS,
    SlutbrugerStamdata,
    Subject,
    TilmeldNemSMS,
)
from serviceplatform.resources import contract
from serviceplatform.soap.spyne_glue import CannedAnswer, ContractService

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


# --- reading a request ----------------------------------------------------------------------
# The request element reaches the methods validated against the contract: its children are
# there, in the contract's order and namespaces. Only the few values are read out of it.

_CPRCVR: Final = f"{{{TNS}}}CPRCVR"
_CPR: Final = f"{{{TNS}}}CPR-nr"
_CVR: Final = f"{{{TNS}}}CVR-nr"
_STAMDATA: Final = f"{{{DKAL_NS}}}SlutbrugerStamdata"
_NAVN: Final = f"{{{DKAL_NS}}}Navn"
_MOBIL: Final = f"{{{DKAL_NS}}}MobiltelefonNummer"
_EMAIL: Final = f"{{{DKAL_NS}}}EmailAdresse"
_TILMELDING: Final = f"{{{DKAL_NS}}}Myndighedstilmelding"
_INDIKATOR: Final = f"{{{DKAL_NS}}}TilmeldingIndikator"
_EMPTY: Final[dict[str, Any]] = {}


def _texts(parent: etree._Element | None) -> dict[str, Any]:
    """Each child element's text by its qualified tag (an empty element reads as "")."""
    if parent is None:
        return _EMPTY
    # Comments are dropped by the parser; the isinstance also passes over any that are not.
    return {child.tag: child.text or "" for child in parent if isinstance(child.tag, str)}


def _subject(request: etree._Element) -> Subject:
    cprcvr = _texts(request.find(_CPRCVR))
    return Subject.from_choice(cprcvr.get(_CPR), cprcvr.get(_CVR))


def to_opdater_borger(request: etree._Element) -> OpdaterBorgerNemSMS:
    """The message value of a validated ``OpdaterBorgerNemSMSRequest`` element."""
    stamdata = _texts(request.find(_STAMDATA))
    return OpdaterBorgerNemSMS(
        subject=_subject(request),
        stamdata=SlutbrugerStamdata(
            mobiltelefon_nummer=stamdata.get(_MOBIL, ""),
            navn=stamdata.get(_NAVN),
            email_adresse=stamdata.get(_EMAIL),
        ),
    )


def to_tilmeld_nemsms(request: etree._Element) -> TilmeldNemSMS:
    """The message value of a validated ``TilmeldNemSMSRequest`` element."""
    flag = _texts(request.find(_TILMELDING)).get(_INDIKATOR, "")
    # xsd:boolean: "true"/"1" or "false"/"0", surrounding whitespace collapsed.
    return TilmeldNemSMS(subject=_subject(request), tilmeld=flag.strip() in ("true", "1"))


# --- the answers ----------------------------------------------------------------------------


def _ok_answer(response_element: str) -> CannedAnswer:
    """``StatusKode`` 20 in the named response element, as spyne's models used to write it."""
    return CannedAnswer(
        f'<tns:{response_element} xmlns:tns="{TNS}">'
        f'<ns2:StandardRetur xmlns:ns2="{SAGDOK_NS}"><ns2:StatusKode>{STATUS_OK}</ns2:StatusKode>'
        f"</ns2:StandardRetur></tns:{response_element}>".encode()
    )


#: The answers of the two operations: the same bytes for every successful call.
OPDATER_OK: Final = _ok_answer("OpdaterBorgerNemSMSResponse")
TILMELD_OK: Final = _ok_answer("TilmeldNemSMSResponse")


def service_class(handler: Sf2250Handler) -> type[ServiceBase]:
    """A spyne service class bound to ``handler`` (spyne services are classes)."""

    class VedligeholdTilmeldingService(ServiceBase):  # type: ignore[misc]
        @rpc(  # type: ignore[untyped-decorator]
            AnyXml,
            _returns=AnyXml,
            _body_style="bare",
            _operation_name="OpdaterBorgerNemSMS",
            _in_message_name="OpdaterBorgerNemSMSRequest",
            _out_message_name="OpdaterBorgerNemSMSResponse",
        )
        def OpdaterBorgerNemSMS(ctx: Any, request: etree._Element) -> CannedAnswer:  # noqa: N802, N805
            handler.opdater_borger(ctx.transport.req_env, to_opdater_borger(request))
            return OPDATER_OK

        @rpc(  # type: ignore[untyped-decorator]
            AnyXml,
            _returns=AnyXml,
            _body_style="bare",
            _operation_name="TilmeldNemSMS",
            _in_message_name="TilmeldNemSMSRequest",
            _out_message_name="TilmeldNemSMSResponse",
        )
        def TilmeldNemSMS(ctx: Any, request: etree._Element) -> CannedAnswer:  # noqa: N802, N805
            handler.tilmeld_nemsms(ctx.transport.req_env, to_tilmeld_nemsms(request))
            return TILMELD_OK

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

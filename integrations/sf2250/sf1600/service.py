"""SF1600 Print 2 (``spoergTilmelding``, ``afsendBrev``) as a spyne service, SOAP 1.1 and 1.2.

The contract is ``wsdl/sf1600`` (written after Serviceplatformen's SF1600 ``PrintService.wsdl``)
and validates every request first (see :mod:`serviceplatform.soap.spyne_glue`). The models
below only name what the platform reads; spyne skips the other children the contract allows.
Each method turns the request into a value of :mod:`integrations.sf2250.sf1600.messages` and
calls the handler with the WSGI environ. The envelope's namespace picks SOAP 1.1 or 1.2.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final, Protocol

from spyne import Boolean, ComplexModel, Integer, ServiceBase, Unicode, rpc

from integrations.sf2250.errors import SmsContentInvalid
from integrations.sf2250.messages import Subject
from integrations.sf2250.sf1600.messages import AfsendBrev, SpoergTilmelding
from serviceplatform.resources import contract
from serviceplatform.soap.spyne_glue import ContractService

TNS: Final = "http://serviceplatformen.dk/xml/wsdl/soap11/Print/Print/2/"
FJERNPRINT_NS: Final = "urn:oio:fjernprint:1.0.0"
DKAL_NS: Final = "urn:oio:dkal:1.0.0"
ADIR_NS: Final = "urn:oio:adir:dagpenge:2009.07.01"
SAGDOK_NS: Final = "urn:oio:sagdok:3.0.0"
AUTHCTX_NS: Final = "http://serviceplatformen.dk/xml/schemas/AuthorityContext/1/"
SERVICE_NAME: Final = "Print"

WSDL_PATH: Final = contract("sf1600", "PrintService.wsdl")

#: Body element local name -> operation name.
OPERATIONS: Final[dict[str, str]] = {
    "PrintSpoergTilmeldingRequest": "spoergTilmelding",
    "PrintAfsendBrevRequest": "afsendBrev",
}


class PrintHandlerProtocol(Protocol):
    """What the platform does with a validated request; raises ``ServicePlatformError``."""

    def spoerg_tilmelding(self, environ: dict[str, Any], request: SpoergTilmelding) -> bool: ...

    def afsend_brev(self, environ: dict[str, Any], request: AfsendBrev) -> bool: ...


# --- models: the parts of the contract the platform reads ----------------------------------


class AuthorityContextType(ComplexModel):  # type: ignore[misc]
    __namespace__ = AUTHCTX_NS
    _type_info = [("MunicipalityCVR", Unicode)]


class SlutbrugerIdentitetType(ComplexModel):  # type: ignore[misc]
    __namespace__ = DKAL_NS
    _type_info = [
        ("CPRnummerIdentifikator", Unicode.customize(sub_ns=ADIR_NS)),
        ("CVRnummerIdentifikator", Unicode.customize(sub_ns=ADIR_NS)),
    ]


class TilmeldingRequestType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("MeddelelseIndholdstypeIdentifikator", Integer.customize(sub_ns=DKAL_NS)),
        ("SlutbrugerIdentitet", SlutbrugerIdentitetType.customize(sub_ns=DKAL_NS)),
    ]


class ForsendelseModtagerType(ComplexModel):  # type: ignore[misc]
    __namespace__ = FJERNPRINT_NS
    _type_info = [("AfsendelseModtager", SlutbrugerIdentitetType.customize(sub_ns=DKAL_NS))]


class DokumentParametreType(ComplexModel):  # type: ignore[misc]
    __namespace__ = FJERNPRINT_NS
    _type_info = [("TitelTekst", Unicode.customize(sub_ns=SAGDOK_NS))]


class DigitalPostParametreType(ComplexModel):  # type: ignore[misc]
    __namespace__ = FJERNPRINT_NS
    _type_info = [("MeddelelseIndholdstypeIdentifikator", Integer.customize(sub_ns=DKAL_NS))]


class ForsendelseIType(ComplexModel):  # type: ignore[misc]
    __namespace__ = FJERNPRINT_NS
    _type_info = [
        ("AfsendelseIdentifikator", Unicode),
        ("ForsendelseModtager", ForsendelseModtagerType),
        ("FilformatNavn", Unicode.customize(sub_ns=DKAL_NS)),
        # Read as text and decoded here, so bad base64 becomes a clear platform fault.
        ("MeddelelseIndholdData", Unicode.customize(sub_ns=DKAL_NS)),
        ("DokumentParametre", DokumentParametreType),
        ("DigitalPostParametre", DigitalPostParametreType),
    ]


class BrevSPBodyType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("Kanalvalg", Unicode),
        ("Prioritet", Unicode),
        ("ForsendelseI", ForsendelseIType.customize(sub_ns=TNS)),
    ]


class PrintSpoergTilmeldingRequestType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("AuthorityContext", AuthorityContextType.customize(sub_ns=AUTHCTX_NS)),
        ("TilmeldingRequest", TilmeldingRequestType),
    ]


class PrintAfsendBrevRequestType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("AuthorityContext", AuthorityContextType.customize(sub_ns=AUTHCTX_NS)),
        ("BrevSPBody", BrevSPBodyType),
    ]


class PrintSpoergTilmeldingResponseType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("tilmeldt", Boolean(min_occurs=1, nillable=False))]


class PrintAfsendBrevResponseType(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("resultat", Boolean(min_occurs=1, nillable=False))]


# --- conversion -----------------------------------------------------------------------------


def _subject(identity: Any) -> Subject | None:
    if identity is None:
        return None
    return Subject.from_choice(
        getattr(identity, "CPRnummerIdentifikator", None),
        getattr(identity, "CVRnummerIdentifikator", None),
    )


def _municipality(request: Any) -> str | None:
    context = getattr(request, "AuthorityContext", None)
    value = getattr(context, "MunicipalityCVR", None)
    return value.strip() if value else None


def _content(encoded: str | None) -> bytes:
    try:
        return base64.b64decode("".join((encoded or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise SmsContentInvalid("MeddelelseIndholdData is not valid base64") from None


def to_spoerg_tilmelding(request: Any) -> SpoergTilmelding:
    """The message value of a deserialized ``PrintSpoergTilmeldingRequest``."""
    tilmelding = request.TilmeldingRequest
    subject = _subject(tilmelding.SlutbrugerIdentitet)
    assert subject is not None  # the contract makes SlutbrugerIdentitet mandatory
    return SpoergTilmelding(
        subject=subject,
        municipality_cvr=_municipality(request),
        indholdstype=tilmelding.MeddelelseIndholdstypeIdentifikator,
    )


def to_afsend_brev(request: Any) -> AfsendBrev:
    """The message value of a deserialized ``PrintAfsendBrevRequest``."""
    body = request.BrevSPBody
    forsendelse = body.ForsendelseI
    modtager = forsendelse.ForsendelseModtager
    dokument = forsendelse.DokumentParametre
    digital_post = forsendelse.DigitalPostParametre
    return AfsendBrev(
        kanalvalg=(body.Kanalvalg or "").strip(),
        prioritet=(body.Prioritet or "").strip(),
        afsendelse_id=(forsendelse.AfsendelseIdentifikator or "").strip(),
        recipient=_subject(modtager.AfsendelseModtager) if modtager is not None else None,
        filformat=(forsendelse.FilformatNavn or "").strip(),
        content=_content(forsendelse.MeddelelseIndholdData),
        titel=dokument.TitelTekst if dokument is not None else None,
        indholdstype=(
            digital_post.MeddelelseIndholdstypeIdentifikator if digital_post is not None else None
        ),
        municipality_cvr=_municipality(request),
    )


def service_class(handler: PrintHandlerProtocol) -> type[ServiceBase]:
    """A spyne service class bound to ``handler`` (spyne services are classes)."""

    class PrintService(ServiceBase):  # type: ignore[misc]
        @rpc(  # type: ignore[untyped-decorator]
            PrintSpoergTilmeldingRequestType,
            _returns=PrintSpoergTilmeldingResponseType,
            _body_style="bare",
            _operation_name="spoergTilmelding",
            _in_message_name="PrintSpoergTilmeldingRequest",
            _out_message_name="PrintSpoergTilmeldingResponse",
        )
        def spoergTilmelding(ctx: Any, request: Any) -> PrintSpoergTilmeldingResponseType:  # noqa: N802, N805
            tilmeldt = handler.spoerg_tilmelding(
                ctx.transport.req_env, to_spoerg_tilmelding(request)
            )
            return PrintSpoergTilmeldingResponseType(tilmeldt=tilmeldt)

        @rpc(  # type: ignore[untyped-decorator]
            PrintAfsendBrevRequestType,
            _returns=PrintAfsendBrevResponseType,
            _body_style="bare",
            _operation_name="afsendBrev",
            _in_message_name="PrintAfsendBrevRequest",
            _out_message_name="PrintAfsendBrevResponse",
        )
        def afsendBrev(ctx: Any, request: Any) -> PrintAfsendBrevResponseType:  # noqa: N802, N805
            resultat = handler.afsend_brev(ctx.transport.req_env, to_afsend_brev(request))
            return PrintAfsendBrevResponseType(resultat=resultat)

    return PrintService


#: The service behind its contract: Print 2, SOAP 1.1 and 1.2.
SERVICE: Final = ContractService(
    tns=TNS,
    name=SERVICE_NAME,
    wsdl_path=WSDL_PATH,
    service_class=service_class,
    soap_version=frozenset({11, 12}),
)
#: ``build_wsgi_app(handler, *, max_body_bytes, public_url)``: the WSGI application around
#: ``handler``.
build_wsgi_app: Final = SERVICE.build_wsgi_app

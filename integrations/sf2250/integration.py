"""SF2250 NemSMS as the core sees it: its SOAP services and the SysID roles it routes by."""

from __future__ import annotations

from integrations.sf2250.handler import SERVICE_KEY, VedligeholdTilmeldingHandler
from integrations.sf2250.service import OPERATIONS, WSDL_PATH, build_wsgi_app
from serviceplatform.integration import Integration, SoapService, WsgiApp
from serviceplatform.platform import Platform

#: The audience of VedligeholdTilmelding tokens unless configured otherwise.
PATH = "/service/NemSMS/VedligeholdTilmelding/2"
DEFAULT_ENTITY_ID = "http://entityid.serviceplatformen.dk/service/nemsms/vedligeholdtilmelding/2"


def _build(platform: Platform) -> WsgiApp:
    soap = platform.settings.soap
    app: WsgiApp = build_wsgi_app(
        VedligeholdTilmeldingHandler(platform),
        max_body_bytes=soap.max_body_bytes,
        public_url=soap.public_base_url.rstrip("/") + PATH if soap.public_base_url else None,
    )
    return app


INTEGRATION = Integration(
    name="sf2250",
    roles={SERVICE_KEY: frozenset({"register", "nemsms", "digital_post", "afsender"})},
    services=(
        SoapService(
            key=SERVICE_KEY,
            path=PATH,
            wsdl_path=WSDL_PATH,
            operations=OPERATIONS,
            build_app=_build,
            default_entity_id=DEFAULT_ENTITY_ID,
        ),
    ),
)

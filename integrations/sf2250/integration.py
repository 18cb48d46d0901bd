"""SF2250 NemSMS as the core sees it: its SOAP services and the SysID roles it routes by."""

from __future__ import annotations

from pathlib import Path

from integrations.sf2250.handler import SERVICE_KEY, VedligeholdTilmeldingHandler
from integrations.sf2250.service import OPERATIONS, WSDL_PATH, build_wsgi_app
from integrations.sf2250.settings import SUBSCRIPTIONS
from integrations.sf2250.sf1600 import service as print_service
from integrations.sf2250.sf1600.handler import SERVICE_KEY as PRINT_SERVICE_KEY
from integrations.sf2250.sf1600.handler import PrintHandler
from serviceplatform.config import Settings
from serviceplatform.integration import (
    ErrorCodes,
    Integration,
    MetricSource,
    ScheduledJob,
    SoapService,
    WsgiApp,
)
from serviceplatform.platform import Platform

#: The audience of VedligeholdTilmelding tokens unless configured otherwise.
PATH = "/service/NemSMS/VedligeholdTilmelding/2"
DEFAULT_ENTITY_ID = "http://entityid.serviceplatformen.dk/service/nemsms/vedligeholdtilmelding/2"
PRINT_PATH = "/service/Print/Print/2"
#: The Print service's entity id as Serviceplatformen publishes it (``service.properties``).
PRINT_ENTITY_ID = "http://print.serviceplatformen.dk/service/forsendelse/2"


def _build(platform: Platform) -> WsgiApp:
    app: WsgiApp = build_wsgi_app(
        VedligeholdTilmeldingHandler(platform),
        max_body_bytes=platform.settings.soap.max_body_bytes,
        public_url=platform.settings.soap.public_url(PATH),
    )
    return app


def _build_print(platform: Platform) -> WsgiApp:
    app: WsgiApp = print_service.build_wsgi_app(
        PrintHandler(platform),
        max_body_bytes=platform.settings.soap.max_body_bytes,
        public_url=platform.settings.soap.public_url(PRINT_PATH),
    )
    return app


def _nightly_time(settings: Settings) -> tuple[str, str]:
    section = settings.section(SUBSCRIPTIONS)
    return section.run_at, section.timezone


INTEGRATION = Integration(
    name="sf2250",
    roles={
        SERVICE_KEY: frozenset({"register", "nemsms", "digital_post", "afsender"}),
        PRINT_SERVICE_KEY: frozenset({"nemsms", "afsender", "digital_post"}),
    },
    # What each operation routes by: the Register for EP_SP2/3; NemSMS and Afsendersystem
    # SysIDs for EP_SP1/4.
    required_roles={
        SERVICE_KEY: frozenset({"register"}),
        PRINT_SERVICE_KEY: frozenset({"nemsms", "afsender"}),
    },
    # Both call the NemSMS register over mutual TLS with the agreement's certificate.
    outward_certificate=frozenset({SERVICE_KEY, PRINT_SERVICE_KEY}),
    services=(
        SoapService(
            key=SERVICE_KEY,
            path=PATH,
            wsdl_path=WSDL_PATH,
            operations=OPERATIONS,
            build_app=_build,
            default_entity_id=DEFAULT_ENTITY_ID,
        ),
        SoapService(
            key=PRINT_SERVICE_KEY,
            path=PRINT_PATH,
            wsdl_path=print_service.WSDL_PATH,
            operations=print_service.OPERATIONS,
            build_app=_build_print,
            default_entity_id=PRINT_ENTITY_ID,
            soap_versions=frozenset({11, 12}),
        ),
    ),
    commands=(
        "integrations.sf2250.commands:subscriptions",
        "integrations.sf2250.print_route_commands:print_route",
    ),
    errors=ErrorCodes("integrations.sf2250.errors", range(501, 600)),
    settings=SUBSCRIPTIONS,
    tables="integrations.sf2250.tables",
    migrations=Path(__file__).resolve().parent / "migrations",
    metrics=(MetricSource("nightly", "integrations.sf2250.metrics:nightly"),),
    parts={
        "list_snapshots": "integrations.sf2250.snapshot_store:SnapshotStore",
        # The admin API's agreement print route (EP_SP1/EP_SP4: sf1600 or sf1601).
        "agreement_print_route": "integrations.sf2250.print_routes:PrintRoutes",
    },
    message_sources=("integrations.sf2250.message_log:message_source",),
    jobs=(
        ScheduledJob(
            id="sf2250-subscriptions-nightly",
            func="integrations.sf2250.jobs:nightly_subscriptions",
            when=_nightly_time,
        ),
    ),
)

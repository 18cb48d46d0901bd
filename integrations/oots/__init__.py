"""OOTS evidence requests over eDelivery AS4: the service ``/service/OOTS/Dokumentation/1``.

What the core sees (``INTEGRATION``): the SOAP service ``oots`` with its hand-written
contract, the SysID role ``oots_requester`` (the authority's OOTS identifier, required before
an agreement is configured), when ``[oots] push_path`` is set the endpoint Domibus pushes
answers to, and when ``[oots.as4] receive_path`` is set the native AS4 access point's
receiving endpoint partners push answers to. The parts: ``edm`` (EDM messages), ``as4``
(the AS4 message, its ebMS header and the native access point), ``gateway`` (the Protocol
the exchange talks to) and ``domibus`` (its WS plugin implementation), ``access_points``
(which access point and gateway an authority uses), ``common_services`` (Evidence Broker and
DSD), ``exchange`` and ``request_store`` (requests and their answers), ``handler`` and
``service`` (the SOAP operations); ``app`` builds them. ``docs/oots-service.md`` is the
overview.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from serviceplatform.integration import ErrorCodes, Integration, SoapService, WsgiApp, WsgiMount

if TYPE_CHECKING:
    from serviceplatform.config import Settings
    from serviceplatform.platform import Platform

SERVICE_KEY: Final = "oots"
PATH: Final = "/service/OOTS/Dokumentation/1"
DEFAULT_ENTITY_ID: Final = "http://entityid.serviceplatformen.dk/service/oots/dokumentation/1"
REQUESTER_ROLE: Final = "oots_requester"


def _build(platform: Platform) -> WsgiApp:
    from integrations.oots.app import build_service_app

    return build_service_app(platform, PATH)


def _peers(settings: Settings) -> dict[str, str]:
    """Readiness: each Domibus access point in use, and the common services when configured."""
    from integrations.oots.access_points import access_points, platform_access_point
    from integrations.oots.settings import GATEWAY_DOMIBUS_WS, OOTS_SETTINGS

    oots = settings.section(OOTS_SETTINGS)
    platform_url = platform_access_point(oots).url
    found: dict[str, str] = {}
    for point in access_points(oots):
        if point.gateway != GATEWAY_DOMIBUS_WS:
            continue  # the platform itself: its partners vary per message
        # The platform's access point is "domibus"; an authority's own is named by its URL.
        name = "domibus" if point.url == platform_url else f"domibus:{point.party_id}"
        found.setdefault(name, point.url)
    if oots.common_services_url:
        found["oots-common-services"] = oots.common_services_url
    return found


def _push_prefix(settings: Settings) -> str:
    from integrations.oots.settings import OOTS_SETTINGS

    return settings.section(OOTS_SETTINGS).push_path


def _build_push(platform: Platform) -> WsgiApp:
    from integrations.oots.app import build_push_app

    return build_push_app(platform)


def _as4_prefix(settings: Settings) -> str:
    from integrations.oots.settings import OOTS_SETTINGS

    return settings.section(OOTS_SETTINGS).as4.receive_path


def _build_as4(platform: Platform) -> WsgiApp:
    from integrations.oots.as4.app import build_receiver_app

    return build_receiver_app(platform)


def _integration() -> Integration:
    # service.py is imported here (not at the top) only to keep its names out of this module.
    from integrations.oots.service import OPERATIONS, WSDL_PATH
    from integrations.oots.settings import OOTS_SETTINGS

    return Integration(
        name="oots",
        roles={SERVICE_KEY: frozenset({REQUESTER_ROLE})},
        required_roles={SERVICE_KEY: frozenset({REQUESTER_ROLE})},
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
        mounts=(
            WsgiMount(prefix=_push_prefix, build=_build_push),
            # The native AS4 access point's receiving endpoint (docs/oots-as4.md).
            WsgiMount(prefix=_as4_prefix, build=_build_as4),
        ),
        errors=ErrorCodes("integrations.oots.errors", range(700, 800)),
        settings=OOTS_SETTINGS,
        tables="integrations.oots.tables",
        migrations=Path(__file__).resolve().parent / "migrations",
        # The outward peers' kinds: ``[peers.<name>] kind = "domibus-ws"`` works as well.
        peer_kinds={
            "domibus-ws": "integrations.oots.domibus.client:open_transport",
            "common-services": "integrations.oots.common_services.client:open_transport",
            "as4": "integrations.oots.as4.transport:open_transport",
        },
        message_sources=("integrations.oots.message_log:message_source",),
        # The AS4 access point's own records (integrations.oots.as4.sender.AUDIT_SERVICE).
        audit_services=frozenset({"oots-as4"}),
        peers=_peers,
        commands=("integrations.oots.as4.commands:as4",),
    )


INTEGRATION: Final = _integration()

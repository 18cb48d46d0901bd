"""Which access point an authority's evidence requests go through, and its gateway.

By default every authority uses the platform's access point (``[oots] domibus_url``,
``party_id``, plugin user). An authority that runs its own ("direct integration" in the Danish
OOTS guide) names it under ``[oots.requesters.<CVR>]``; each field it leaves empty falls back
to the platform's. Answers are collected from every access point in use.

``open_gateway`` is the one place a ``Gateway`` (``gateway.py``) is constructed for an access
point: today always its Domibus WS plugin (``DomibusWsClient``); a second kind (a native AS4
access point) is chosen here, per access point, and nothing else changes. The outward peers
are built here from the ``[oots]`` settings (``ws_plugin_peer``, ``common_services_peer``):
``PeerSettings`` of the integration's peer kinds ``domibus-ws`` and ``common-services``,
opened through the outbound seam like any ``[peers.<name>]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from integrations.oots.common_services import client as common_services
from integrations.oots.domibus import client as ws_plugin
from integrations.oots.domibus.client import DomibusWsClient
from integrations.oots.gateway import Gateway
from integrations.oots.settings import OotsRequesterSettings, OotsSettings
from serviceplatform.config import PeerSettings
from serviceplatform.errors import ConfigurationError
from serviceplatform.outbound.credentials import NO_CREDENTIAL, BasicAuth, Credential

#: The peer names the OOTS integration's transports carry (in logs and error details).
GATEWAY_PEER = "oots_gateway"
COMMON_SERVICES_PEER = "oots-common-services"


@dataclass(frozen=True)
class AccessPoint:
    """One Domibus WS plugin and the ebMS party id the platform sends from through it."""

    url: str
    party_id: str
    username: str = ""
    password: str = ""
    password_file: str = ""
    ca_cert: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.url and self.party_id)


def platform_access_point(settings: OotsSettings) -> AccessPoint:
    return AccessPoint(
        url=settings.domibus_url,
        party_id=settings.party_id,
        username=settings.domibus_username,
        password=settings.domibus_password,
        password_file=settings.domibus_password_file,
        ca_cert=settings.domibus_ca_cert,
    )


def _own(base: AccessPoint, own: OotsRequesterSettings) -> AccessPoint:
    # Credentials and trust come as a whole: from the authority when it names its own access
    # point or plugin user, else from the platform; never mixed.
    own_url = bool(own.domibus_url)
    own_user = own_url or bool(own.domibus_username)
    return AccessPoint(
        url=own.domibus_url or base.url,
        party_id=own.party_id or base.party_id,
        username=own.domibus_username if own_user else base.username,
        password=own.domibus_password if own_user else base.password,
        password_file=own.domibus_password_file if own_user else base.password_file,
        ca_cert=own.domibus_ca_cert if own_url else base.ca_cert,
    )


def access_point_for(settings: OotsSettings, authority_cvr: str) -> AccessPoint:
    """The access point ``authority_cvr``'s requests are submitted through."""
    base = platform_access_point(settings)
    own = settings.requesters.get(authority_cvr)
    return base if own is None else _own(base, own)


def access_points(settings: OotsSettings) -> list[AccessPoint]:
    """Every configured access point in use, the platform's first, each once."""
    found = [platform_access_point(settings)]
    for cvr in sorted(settings.requesters):
        point = access_point_for(settings, cvr)
        if point not in found:
            found.append(point)
    return [point for point in found if point.configured]


def ws_plugin_peer(
    point: AccessPoint, settings: OotsSettings, *, path: Callable[[str], Path] = Path
) -> PeerSettings:
    """The ``domibus-ws`` peer of ``point``: its URL and CA, the ``[oots]`` timeout."""
    return ws_plugin.peer_settings(
        point.url,
        ca_cert=str(path(point.ca_cert)) if point.ca_cert else None,
        timeout=settings.domibus_timeout_seconds,
    )


def common_services_peer(settings: OotsSettings) -> PeerSettings:
    """The ``common-services`` peer: ``[oots] common_services_url`` and its timeout."""
    if not settings.common_services_url:
        raise ConfigurationError("[oots] common_services_url is not set")
    return common_services.peer_settings(
        settings.common_services_url, timeout=settings.common_services_timeout_seconds
    )


def _plugin_user(point: AccessPoint, path: Callable[[str], Path]) -> Credential:
    password = point.password or None
    if point.password_file:
        secret = path(point.password_file)
        try:
            password = secret.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(f"[oots] domibus_password_file {secret}: {exc}") from exc
    if not point.username:
        return NO_CREDENTIAL
    if password is None:
        raise ConfigurationError(
            f"peer {GATEWAY_PEER}: give both username and password, or neither"
        )
    return BasicAuth(point.username, password)


def open_gateway(
    point: AccessPoint, settings: OotsSettings, *, path: Callable[[str], Path] = Path
) -> Gateway:
    """A gateway of its own (a Domibus client with its own transport) for ``point``.

    ``path`` resolves a configured file name (``Settings.path``: against the settings'
    directory).
    """
    if not point.configured:
        raise ConfigurationError("[oots] domibus_url and party_id are not configured")
    credential = _plugin_user(point, path)
    peer = ws_plugin_peer(point, settings, path=path)
    transport = ws_plugin.open_transport(GATEWAY_PEER, peer, None)
    return DomibusWsClient(transport, credential, peer=GATEWAY_PEER)

"""Which access point an authority's evidence requests go through, and its gateway.

By default every authority uses the platform's access point (``[oots] domibus_url``,
``party_id``, plugin user). An authority that runs its own ("direct integration" in the Danish
OOTS guide) names it under ``[oots.requesters.<CVR>]``; each field it leaves empty falls back
to the platform's. Answers are collected from every access point in use.

An authority's ``gateway`` says which kind of access point it uses: ``domibus-ws`` (the
default: a Domibus WS plugin, as above) or ``as4`` (the platform itself is its AS4 access point:
``[oots.as4]`` with the authority's own ``[oots.requesters.<CVR>.as4]`` values over it,
``as4.settings.for_authority``). Anything else is a ``ConfigurationError`` (and a problem
``config check`` lists, ``settings._problems``).

``open_gateway`` is the one place a ``Gateway`` (``gateway.py``) is constructed for an access
point: its Domibus WS plugin (``DomibusWsClient``) or the native AS4 access point
(``as4.access_point.As4Gateway`` over an ``As4Sender``), per access point; nothing else
changes. Answers are collected from every access point in use (an AS4 one has nothing to
collect: its partners push to the receiving endpoint, which stores them). The outward peers
are built here from the ``[oots]`` settings (``ws_plugin_peer``, ``common_services_peer``):
``PeerSettings`` of the integration's peer kinds ``domibus-ws`` and ``common-services``,
opened through the outbound seam like any ``[peers.<name>]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from integrations.oots.as4.access_point import As4Gateway
from integrations.oots.as4.sender import As4Sender, AuditWriter, RetrySchedule
from integrations.oots.as4.settings import As4Settings, for_authority, local_access_point, partners
from integrations.oots.common_services import client as common_services
from integrations.oots.domibus import client as ws_plugin
from integrations.oots.domibus.client import DomibusWsClient
from integrations.oots.gateway import Gateway
from integrations.oots.settings import (
    GATEWAY_AS4,
    GATEWAY_DOMIBUS_WS,
    GATEWAYS,
    OotsRequesterSettings,
    OotsSettings,
    read_password_file,
)
from serviceplatform.config import PeerSettings
from serviceplatform.errors import ConfigurationError
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import NO_CREDENTIAL, BasicAuth, Credential

#: The peer names the OOTS integration's transports carry (in logs and error details).
GATEWAY_PEER = "oots_gateway"
COMMON_SERVICES_PEER = "oots-common-services"


#: One attempt per exchange call through an AS4 gateway: the exchange's queue resends the same
#: MessageId (``as4.access_point``); a call must not block for the PMode's 12 minutes.
AS4_GATEWAY_SCHEDULE = RetrySchedule.parse("0;0;SEND_ONCE")


@dataclass(frozen=True)
class AccessPoint:
    """One access point and the ebMS party id the platform sends from through it: a Domibus WS
    plugin (``url`` and its user), or the platform's own AS4 access point (``as4``)."""

    url: str
    party_id: str
    username: str = ""
    password: str = ""
    password_file: str = ""
    ca_cert: str = ""
    gateway: str = GATEWAY_DOMIBUS_WS
    #: The AS4 access point's settings (``gateway`` ``as4``); compared, not hashed (a dict).
    as4: As4Settings | None = field(default=None, hash=False, repr=False)

    @property
    def configured(self) -> bool:
        if self.gateway == GATEWAY_AS4:
            return self.as4 is not None and self.as4.configured
        return bool(self.url and self.party_id)

    @property
    def name(self) -> str:
        """How logs name it: the WS plugin's URL, or ``as4:<party id>``."""
        return f"as4:{self.party_id}" if self.gateway == GATEWAY_AS4 else self.url


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


def _as4(settings: OotsSettings, own: OotsRequesterSettings) -> AccessPoint:
    as4 = for_authority(settings.as4, own.as4)
    return AccessPoint(url="", party_id=as4.party_id, gateway=GATEWAY_AS4, as4=as4)


def access_point_for(settings: OotsSettings, authority_cvr: str) -> AccessPoint:
    """The access point ``authority_cvr``'s requests are submitted through."""
    base = platform_access_point(settings)
    own = settings.requesters.get(authority_cvr)
    if own is None:
        return base
    if own.gateway == GATEWAY_AS4:
        return _as4(settings, own)
    if own.gateway != GATEWAY_DOMIBUS_WS:
        raise ConfigurationError(
            f"[oots.requesters.{authority_cvr}] gateway {own.gateway!r} is not one of "
            f"{', '.join(GATEWAYS)}"
        )
    return _own(base, own)


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
            password = read_password_file(secret)
        except ConfigurationError as exc:
            raise ConfigurationError(f"[oots] domibus_password_file {secret} {exc.detail}") from exc
    if not point.username:
        return NO_CREDENTIAL
    if password is None:
        raise ConfigurationError(
            f"peer {GATEWAY_PEER}: give both username and password, or neither"
        )
    return BasicAuth(point.username, password)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def open_as4_sender(
    as4: As4Settings,
    certificates: CertificateStore,
    *,
    path: Callable[[str], Path] = Path,
    audit: AuditWriter | None = None,
    clock: Callable[[], datetime] = _utc_now,
    schedule: RetrySchedule = AS4_GATEWAY_SCHEDULE,
) -> As4Sender:
    """The AS4 sender of an access point: its keys from the store, its partners."""
    return As4Sender(
        local_access_point(as4, certificates),
        partners(as4, path=path),
        schedule=schedule,
        audit=audit,
        clock=clock,
    )


def open_gateway(
    point: AccessPoint,
    settings: OotsSettings,
    *,
    path: Callable[[str], Path] = Path,
    certificates: CertificateStore | None = None,
    audit: AuditWriter | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> Gateway:
    """A gateway of its own for ``point``: a Domibus client with its own transport, or the
    AS4 gateway over a sender with the access point's keys (``certificates``, the platform's
    certificate store) auditing into ``audit``.

    ``path`` resolves a configured file name (``Settings.path``: against the settings'
    directory).
    """
    if point.gateway == GATEWAY_AS4:
        if point.as4 is None or not point.as4.configured:
            raise ConfigurationError("[oots.as4] party_id and signing_alias are not configured")
        if certificates is None:
            raise ConfigurationError("the AS4 gateway needs the certificate store")
        sender = open_as4_sender(point.as4, certificates, path=path, audit=audit, clock=clock)
        return As4Gateway(sender)
    if not point.configured:
        raise ConfigurationError("[oots] domibus_url and party_id are not configured")
    credential = _plugin_user(point, path)
    peer = ws_plugin_peer(point, settings, path=path)
    transport = ws_plugin.open_transport(GATEWAY_PEER, peer, None)
    return DomibusWsClient(transport, credential, peer=GATEWAY_PEER)

"""The native AS4 access point built from the platform: its receiving endpoint and its sender.

- ``build_receiver_app``: ``As4ReceiverApp`` with the keys of every AS4 access point in use
  (``[oots.as4]``'s, and those of authorities with AS4 party ids of their own) from the
  certificate store, their partners, and the OOTS answer store (``DomibusInbox``: the
  ``oots_messages`` table the exchange reads, whichever gateway delivered the answer).
  The OOTS integration mounts it at ``[oots.as4] receive_path`` (``integrations.oots``);
- ``build_sender``: ``As4Sender`` auditing into the platform's audit log (``serviceplatform
  as4 ping``). The exchange's ``Gateway`` over a sender is built in one place only,
  ``access_points.open_gateway``; ``build_gateway`` asks it for an ``as4`` access point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.oots.access_points import (
    AS4_GATEWAY_SCHEDULE,
    AccessPoint,
    access_points,
    open_as4_sender,
    open_gateway,
)
from integrations.oots.as4.receiver import As4ReceiverApp
from integrations.oots.as4.sender import (
    OOTS_RETRY,
    As4Partner,
    As4Sender,
    LocalAccessPoint,
    RetrySchedule,
)
from integrations.oots.as4.settings import As4Settings, local_access_point, partners
from integrations.oots.domibus.inbox import DomibusInbox
from integrations.oots.gateway import Gateway
from integrations.oots.settings import GATEWAY_AS4, OOTS_SETTINGS

if TYPE_CHECKING:
    from serviceplatform.platform import Platform

#: One attempt per exchange call (see ``access_point``).
GATEWAY_SCHEDULE = AS4_GATEWAY_SCHEDULE


def build_receiver_app(platform: Platform, settings: As4Settings | None = None) -> As4ReceiverApp:
    """The receiving endpoint of ``settings`` (default ``[oots.as4]``) and of every other AS4
    access point the OOTS settings use."""
    oots = platform.settings.section(OOTS_SETTINGS)
    settings = settings or oots.as4
    others: list[tuple[LocalAccessPoint, dict[str, As4Partner]]] = []
    seen = {settings.party_id}
    for point in access_points(oots):
        own = point.as4
        if point.gateway != GATEWAY_AS4 or own is None or own.party_id in seen:
            continue
        seen.add(own.party_id)
        local = local_access_point(own, platform.certificates)
        others.append((local, partners(own, path=platform.settings.path)))
    return As4ReceiverApp(
        local_access_point(settings, platform.certificates),
        partners(settings, path=platform.settings.path),
        DomibusInbox(platform.db, clock=platform.clock),
        max_body_bytes=settings.max_body_bytes,
        max_payload_bytes=settings.max_payload_bytes,
        others=others,
    )


def build_sender(
    platform: Platform, settings: As4Settings, *, schedule: RetrySchedule = OOTS_RETRY
) -> As4Sender:
    return open_as4_sender(
        settings,
        platform.certificates,
        path=platform.settings.path,
        schedule=schedule,
        audit=platform.audit,
        clock=platform.clock,
    )


def build_gateway(platform: Platform, settings: As4Settings) -> Gateway:
    point = AccessPoint(url="", party_id=settings.party_id, gateway=GATEWAY_AS4, as4=settings)
    return open_gateway(
        point,
        platform.settings.section(OOTS_SETTINGS),
        path=platform.settings.path,
        certificates=platform.certificates,
        audit=platform.audit,
        clock=platform.clock,
    )

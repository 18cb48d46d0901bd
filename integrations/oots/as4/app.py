"""The native AS4 access point built from the platform: its receiving endpoint and its gateway.

What the OOTS integration mounts and opens once ``[oots.as4]`` (``settings.As4Settings``) is part
of the OOTS settings (the lead wires it: a ``WsgiMount`` at ``receive_path`` for
``build_receiver_app``, and ``access_points.open_gateway`` returning ``build_gateway`` for an
authority whose ``gateway`` is ``as4``):

- ``build_receiver_app``: ``As4ReceiverApp`` with the access point's keys from the certificate
  store, the configured partners, and the OOTS answer store (``DomibusInbox``: the
  ``oots_messages`` table the exchange reads, whichever gateway delivered the answer);
- ``build_sender`` / ``build_gateway``: ``As4Sender`` auditing into the platform's audit log,
  and the exchange's ``Gateway`` over it (one attempt per call; the exchange's queue resends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.oots.as4.access_point import As4Gateway
from integrations.oots.as4.receiver import As4ReceiverApp
from integrations.oots.as4.sender import OOTS_RETRY, As4Sender, RetrySchedule
from integrations.oots.as4.settings import As4Settings, local_access_point, partners
from integrations.oots.domibus.inbox import DomibusInbox

if TYPE_CHECKING:
    from serviceplatform.platform import Platform

#: One attempt per exchange call (see ``access_point``).
GATEWAY_SCHEDULE = RetrySchedule.parse("0;0;SEND_ONCE")


def build_receiver_app(platform: Platform, settings: As4Settings) -> As4ReceiverApp:
    return As4ReceiverApp(
        local_access_point(settings, platform.certificates),
        partners(settings, path=platform.settings.path),
        DomibusInbox(platform.db, clock=platform.clock),
        max_body_bytes=settings.max_body_bytes,
        max_payload_bytes=settings.max_payload_bytes,
    )


def build_sender(
    platform: Platform, settings: As4Settings, *, schedule: RetrySchedule = OOTS_RETRY
) -> As4Sender:
    return As4Sender(
        local_access_point(settings, platform.certificates),
        partners(settings, path=platform.settings.path),
        schedule=schedule,
        audit=platform.audit,
        clock=platform.clock,
    )


def build_gateway(platform: Platform, settings: As4Settings) -> As4Gateway:
    return As4Gateway(build_sender(platform, settings, schedule=GATEWAY_SCHEDULE))

"""The one way SF2250's handlers call the NemSMS register: route, check certificate, send, record.

VedligeholdTilmelding (EP_SP2/EP_SP3) and the SF1600 Print operations (EP_SP1/EP_SP4) do the
same around their own request: route the call by one SysID role, then send over mutual TLS
with the agreement's certificate and record the register's status on the call. The two steps
are separate functions because ``afsendBrev`` records the sending in its ledger between them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from integrations.sf2250.errors import SmsOutsideSendingHours
from integrations.sf2250.register_errors import OUTSIDE_SENDING_HOURS, REGISTER_ANSWERS
from serviceplatform.call import PlatformCall
from serviceplatform.errors import CertificateUnavailable, UpstreamRejected
from serviceplatform.outbound.base import OutboundRequest, OutboundResponse
from serviceplatform.outbound.credentials import ClientCertificate
from serviceplatform.platform import Platform
from serviceplatform.routing.model import Route

#: The peer name of the NemSMS register in ``[peers]``.
PEER: Final = "nemsms"


def route_by_role(
    platform: Platform, call: PlatformCall, role: str, subject: str
) -> tuple[Route, str]:
    """The call's route and its SysID for ``role``; records the SysID on the call."""
    route = platform.route(call, required_roles=(role,), subject=subject)
    sysid = route.sysids[role]
    call.sysid = sysid
    return route, sysid


def send_to_register(
    platform: Platform, call: PlatformCall, route: Route, request: OutboundRequest
) -> OutboundResponse:
    """Send ``request`` with the route's certificate; records the register's status on the call.

    The register's ``dkal:Fejl`` answers are read by ``register_errors.REGISTER_ANSWERS``.
    Its refusal of an SMS outside the sending hours (400, FejlKode 1009) is the platform's
    sending-hours fault (SP-503, retryable), as when the platform's own clock refuses first:
    the two clocks may differ by a little at 08:00 and 22:00.

    A failure is raised as its platform error; the SOAP layer records it (``call.py``).
    """
    if route.cert_alias is None:
        # The register only talks mutual TLS: say so instead of failing the handshake.
        raise CertificateUnavailable(f"agreement {route.agreement.uuid} names no certificate")
    if request.answer_check is not REGISTER_ANSWERS:
        # A copy per call costs more than the rest of this function: the pass-through
        # handlers build their requests with the register's check already.
        request = replace(request, answer_check=REGISTER_ANSWERS)
    try:
        response = platform.transport(PEER).send(
            request, credential=ClientCertificate(route.cert_alias)
        )
    except UpstreamRejected as error:
        if error.status == 400 and error.peer_code == OUTSIDE_SENDING_HOURS:
            call.upstream_status = error.status
            raise SmsOutsideSendingHours(f"the register refused it ({error.detail})") from error
        raise
    call.upstream_status = response.status
    return response

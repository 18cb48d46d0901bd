"""SF2250 EP_SP2/EP_SP3: forward a validated SOAP call to the NemSMS register (EP_NS2/EP_NS3).

The handler is the integration's whole business logic for these two operations: route by the
authority's CVR to the Register SysID and certificate, map the request to the OIOREST call,
and let the platform's transport carry it. Errors are platform errors, recorded on the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from integrations.sf2250.mapping import (
    CONTENT_TYPE,
    myndighedstilmelding_body,
    register_path_boks,
    register_path_myndighedstilmelding,
    stamdata_body,
)
from integrations.sf2250.messages import OpdaterBorgerNemSMS, Subject, TilmeldNemSMS
from integrations.sf2250.register_calls import route_by_role, send_to_register
from integrations.sf2250.register_errors import REGISTER_ANSWERS
from serviceplatform.call import PlatformCall, current_call
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.platform import Platform

#: The service key of VedligeholdTilmelding in agreements and routing tables.
SERVICE_KEY = "sf2250"
REGISTER_ROLE = "register"


class VedligeholdTilmeldingHandler:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def opdater_borger(self, environ: dict[str, Any], request: OpdaterBorgerNemSMS) -> None:
        call = current_call(environ)
        self._forward(
            call,
            request.subject,
            lambda sysid: register_path_boks(sysid, request.subject),
            stamdata_body(request.stamdata),
        )

    def tilmeld_nemsms(self, environ: dict[str, Any], request: TilmeldNemSMS) -> None:
        call = current_call(environ)
        self._forward(
            call,
            request.subject,
            lambda sysid: register_path_myndighedstilmelding(sysid, request.subject),
            myndighedstilmelding_body(request.tilmeld),
        )

    def _forward(
        self, call: PlatformCall, subject: Subject, path_for: Callable[[str], str], body: bytes
    ) -> None:
        call.subject = subject.number
        route, sysid = route_by_role(self.platform, call, REGISTER_ROLE, subject.number)
        request = OutboundRequest(
            method="PUT",
            path=path_for(sysid),
            body=body,
            headers={"Content-Type": CONTENT_TYPE, "Accept": "application/xml"},
            answer_check=REGISTER_ANSWERS,
        )
        send_to_register(self.platform, call, route, request)

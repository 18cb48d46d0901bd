"""SF2250 EP_SP1/EP_SP4 through the SF1600 Print contract: ask for and send NemSMS.

* ``spoergTilmelding`` (EP_SP1) asks the register (EP_NS1) under the authority's NemSMS SysID
  whether the end user is subscribed; an end user the register does not know is simply not
  subscribed.
* ``afsendBrev`` (EP_SP4) checks the NemSMS rules (``sms_rules``) before anything else, routes
  to the agreement's Afsendersystem SysID, records the sending in the platform's sending
  ledger and only then calls the register (EP_NS4). A repeated call with the same
  ``AfsendelseIdentifikator`` after a success answers the stored result and sends nothing;
  after a failure it sends again. Transient register errors are retried within the 1.5 s SLA
  of a medium integration.

Both operations check ``AuthorityContext/MunicipalityCVR`` against the token's authority first.

An agreement whose print route is ``sf1601`` (``print_routes.py``) goes to SF1601 instead
(``../sf1601/``): PostForespoerg for EP_SP1, KombiPostAfsend with a NEMSMS MeMo for EP_SP4,
token-secured. The NemSMS rules still apply first; on this route MeMo's 150-character limit
for the SMS text too (SP-510), and the MeMo ``messageUUID`` is kept in the sending ledger so
a repeated ``AfsendelseIdentifikator`` sends nothing new and a retry after a lost answer
sends the same message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from integrations.sf2250.errors import MemoNotificationTooLong, SmsContentInvalid
from integrations.sf2250.messages import Subject
from integrations.sf2250.print_routes import PrintRoutes
from integrations.sf2250.register_calls import route_by_role, send_to_register
from integrations.sf2250.sendings import Claim, SendingLedger
from integrations.sf2250.sf1600.mapping import (
    afsendelse_body,
    afsendelse_path,
    meddelelse_id,
    parse_afsendelse,
    parse_tilmelding,
    tilmelding_path,
)
from integrations.sf2250.sf1600.messages import AfsendBrev, SpoergTilmelding
from integrations.sf2250.sf1600.sms_rules import check_sms
from integrations.sf2250.sf1601.calls import Sf1601Client
from integrations.sf2250.sf1601.memo import (
    NOTIFICATION_MAX,
    TEXT_MAX,
    MemoRuleBroken,
    NemSmsMemo,
    new_message_uuid,
)
from serviceplatform.call import PlatformCall, current_call
from serviceplatform.errors import (
    AuthorityContextMismatch,
    ServicePlatformError,
    UpstreamNotFound,
    UpstreamRejected,
)
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.platform import Platform
from serviceplatform.routing.model import Route

#: The service key of the Print service in agreements and routing tables.
SERVICE_KEY: Final = "sf1600"
NEMSMS_ROLE: Final = "nemsms"
AFSENDER_ROLE: Final = "afsender"
#: SF2250 section 1.3.1: sending an SMS is a medium integration.
SEND_BUDGET_SECONDS: Final = 1.5
_XML: Final = {"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml"}


class PrintHandler:
    def __init__(self, platform: Platform, *, clock: Callable[[], datetime] | None = None) -> None:
        self.platform = platform
        #: The SF1600 sending ledger (``integrations/sf2250/sendings.py``).
        self.sendings = SendingLedger(platform.db)
        #: The clock of the sending-hours rule: the platform's business clock unless given.
        self.clock = clock or platform.business_clock
        #: Each agreement's print route (``sf1600``: the register; ``sf1601``: SF1601).
        self.print_routes = PrintRoutes(platform.db)
        self.sf1601 = Sf1601Client(platform, budget_seconds=SEND_BUDGET_SECONDS)

    def _route(self, call: PlatformCall, role: str, subject: str) -> tuple[Route, str | None]:
        """The call's route, and its SysID for ``role`` on the register route (None: SF1601)."""
        route = self.platform.route(call, required_roles=(), subject=subject)
        if self.print_routes.route_of(route.agreement.uuid) == "sf1601":
            return route, None
        return route_by_role(self.platform, call, role, subject)

    # --- EP_SP1 -------------------------------------------------------------------------

    def spoerg_tilmelding(self, environ: dict[str, Any], request: SpoergTilmelding) -> bool:
        call = current_call(environ)
        _check_authority(call, request.municipality_cvr)
        call.subject = request.subject.number
        route, sysid = self._route(call, NEMSMS_ROLE, request.subject.number)
        if sysid is None:
            subscribed = self.sf1601.subscribed(call, route, request.subject)
            call.detail = "SF1601: " + ("tilmeldt" if subscribed else "ikke tilmeldt")
            return subscribed
        outbound = OutboundRequest(
            method="GET", path=tilmelding_path(sysid, request.subject), headers=_XML
        )
        try:
            response = send_to_register(self.platform, call, route, outbound)
        except UpstreamNotFound as error:
            # The register knows no such end user: not subscribed, and not an error.
            call.upstream_status = 404
            call.detail = f"not known to the register ({error.detail})"
            return False
        subscribed = parse_tilmelding(response.body)
        call.detail = "tilmeldt" if subscribed else "ikke tilmeldt"
        return subscribed

    # --- EP_SP4 -------------------------------------------------------------------------

    def afsend_brev(self, environ: dict[str, Any], request: AfsendBrev) -> bool:
        call = current_call(environ)
        _check_authority(call, request.municipality_cvr)
        if request.recipient is not None:
            call.subject = request.recipient.number
        text = check_sms(request, self.clock())
        assert request.recipient is not None  # check_sms refuses a missing recipient
        route, sysid = self._route(call, AFSENDER_ROLE, request.recipient.number)
        if sysid is None and len(text) > NOTIFICATION_MAX:
            raise MemoNotificationTooLong(f"the text has {len(text)} characters")
        ledger = self.sendings
        key = {
            "service": call.service,
            "authority_cvr": call.authority_cvr or "",
            "key": request.afsendelse_id,
        }
        claim = ledger.claim(
            **key,
            request_hash=request.fingerprint(),
            message_id=call.message_id,
            now=self.platform.clock(),
            outward_id=new_message_uuid() if sysid is None else None,
        )
        if not claim.send:
            earlier = json.loads(claim.result or "{}")
            call.upstream_status = earlier.get("upstream_status")
            call.detail = (
                f"AfsendelseIdentifikator {request.afsendelse_id} was sent before "
                f"(attempt {claim.attempt}); answered the earlier result, nothing sent"
            )
            return bool(earlier.get("resultat", False))
        if sysid is None:
            return self._send_sf1601(call, route, request, request.recipient, text, claim, key)
        message_id = meddelelse_id(request.afsendelse_id)
        outbound = OutboundRequest(
            method="PUT",
            path=afsendelse_path(sysid, message_id),
            body=afsendelse_body(
                message_id=message_id,
                recipient=request.recipient,
                text=text,
                titel=request.titel,
                indholdstype=request.indholdstype,
            ),
            headers=_XML,
            budget_seconds=SEND_BUDGET_SECONDS,
        )
        try:
            response = send_to_register(self.platform, call, route, outbound)
            receipt = parse_afsendelse(response.body)
            if not receipt.accepted:
                raise UpstreamRejected(f"the register's state is {receipt.state!r}")
        except ServicePlatformError as error:
            ledger.failed(**key, error_code=error.code, now=self.platform.clock())
            raise
        result = {
            "resultat": True,
            "upstream_status": response.status,
            "meddelelse_id": receipt.message_id,
            "tilstand": receipt.state,
            "sent_at": receipt.sent_at,
        }
        ledger.succeeded(**key, result=json.dumps(result), now=self.platform.clock())
        call.detail = f"attempt {claim.attempt}: {receipt.state} as {receipt.message_id}"
        return True

    def _send_sf1601(
        self,
        call: PlatformCall,
        route: Route,
        request: AfsendBrev,
        recipient: Subject,
        text: str,
        claim: Claim,
        key: dict[str, str],
    ) -> bool:
        """EP_SP4 through KombiPostAfsend; the ledger's claim is taken (``claim``)."""
        assert claim.outward_id is not None  # claimed with one on this route
        cvr = route.agreement.authority_cvr
        try:
            memo = NemSmsMemo(
                message_uuid=claim.outward_id,
                text=text,
                label=(request.titel or "NemSMS")[:TEXT_MAX],
                sender_cvr=cvr,
                # The sender's name is not in the call; the authority's CVR names it.
                sender_label=f"Myndighed CVR {cvr}",
                recipient_kind=recipient.kind.upper(),
                recipient_id=recipient.number,
            )
            receipt = self.sf1601.send_sms(call, route, memo)
            if not receipt.accepted:
                raise UpstreamRejected(f"KombiPostAfsend answered {receipt.advis_text!r}")
        except MemoRuleBroken as broken:
            ledger_error: ServicePlatformError = SmsContentInvalid(str(broken))
            self.sendings.failed(**key, error_code=ledger_error.code, now=self.platform.clock())
            raise ledger_error from broken
        except ServicePlatformError as error:
            self.sendings.failed(**key, error_code=error.code, now=self.platform.clock())
            raise
        result = {
            "resultat": True,
            "route": "sf1601",
            "upstream_status": call.upstream_status,
            "message_uuid": memo.message_uuid,
            "transmission_id": receipt.transmission_id,
        }
        self.sendings.succeeded(**key, result=json.dumps(result), now=self.platform.clock())
        call.detail = f"attempt {claim.attempt}: SF1601 received MeMo {memo.message_uuid}"
        return True


def _check_authority(call: PlatformCall, municipality_cvr: str | None) -> None:
    """``AuthorityContext/MunicipalityCVR``, where given, must be the token's authority."""
    if municipality_cvr is not None and municipality_cvr != call.authority_cvr:
        raise AuthorityContextMismatch(
            f"MunicipalityCVR {municipality_cvr}, token authority {call.authority_cvr}"
        )

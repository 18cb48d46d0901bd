"""``send_to_register``: every request to the NemSMS register is read by its answer check.

The pass-through handlers build their requests with ``REGISTER_ANSWERS`` already (no copy per
call); any other request gets it put in, whatever check it came with.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from integrations.sf2250.errors import SmsOutsideSendingHours
from integrations.sf2250.register_calls import PEER, send_to_register
from integrations.sf2250.register_errors import REGISTER_ANSWERS
from serviceplatform.errors import UpstreamError, UpstreamRejected
from serviceplatform.outbound.base import MemoryTransport, OutboundRequest
from serviceplatform.outbound.credentials import ClientCertificate

FEJL_1009 = (
    b'<dkal:Fejl xmlns:dkal="urn:oio:dkal:1.0.0"><dkal:FejlKode>1009</dkal:FejlKode>'
    b"<dkal:FejlTekst>uden for sendetidsrummet</dkal:FejlTekst></dkal:Fejl>"
)


def _other_check(status: int, headers: Any, body: bytes) -> UpstreamError | None:
    return None


class _Platform:
    def __init__(self) -> None:
        self.register = MemoryTransport()

    def transport(self, peer: str) -> MemoryTransport:
        assert peer == PEER
        return self.register


def _send(request: OutboundRequest, platform: _Platform | None = None) -> tuple[_Platform, Any]:
    platform = platform or _Platform()
    call = SimpleNamespace(upstream_status=None)
    route = SimpleNamespace(cert_alias="kommune", agreement=SimpleNamespace(uuid="a-1"))
    send_to_register(platform, call, route, request)  # type: ignore[arg-type]
    return platform, call


@pytest.mark.parametrize("check", [None, _other_check])
def test_a_request_without_the_register_check_is_sent_with_it(check: Any) -> None:
    request = OutboundRequest("PUT", "/register/x/boks/1", answer_check=check)
    platform, call = _send(request)
    (sent,) = platform.register.sent
    assert sent.request.answer_check is REGISTER_ANSWERS
    assert sent.request.path == request.path
    assert sent.credential == ClientCertificate("kommune")
    assert call.upstream_status == 200


def test_a_request_with_the_register_check_is_sent_as_it_is() -> None:
    request = OutboundRequest("PUT", "/register/x/boks/1", answer_check=REGISTER_ANSWERS)
    platform, _ = _send(request)
    assert platform.register.sent[0].request is request


@pytest.mark.parametrize("check", [None, _other_check, REGISTER_ANSWERS])
def test_the_registers_sending_hours_refusal_is_the_sending_hours_fault(check: Any) -> None:
    # Read by REGISTER_ANSWERS only: with another check it would be a plain 400 refusal.
    platform = _Platform()
    platform.register.reply(400, FEJL_1009)
    request = OutboundRequest("PUT", "/register/x/boks/1", answer_check=check)
    with pytest.raises(SmsOutsideSendingHours) as caught:
        _send(request, platform)
    cause = caught.value.__cause__
    assert isinstance(cause, UpstreamRejected) and cause.peer_code == "1009"

"""The simulated OOTS gateway's AS4 side (``sandbox/oots_as4.py``) over real sockets.

The platform's side is the product: an ``As4Sender`` with the platform's AS4 key (party
``AP_DK_02``) posts an OOTS request to the gateway's HTTPS AS4 endpoint, and an
``As4ReceiverApp`` takes the provider's answer the gateway pushes back; neither end is the
sandbox's own code. Also: a duplicate is receipted again and reaches the provider once, an
unknown sender gets an ``eb:Error`` (EBMS:0003), and an AS4 answer never shows in the WS
plugin's pending list.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import requests

from integrations.oots.as4.encryption import DecryptionKey
from integrations.oots.as4.errors import As4ErrorSignal
from integrations.oots.as4.model import ACTION_REQUEST, OutgoingAs4, ReceivedAs4, TypedId
from integrations.oots.as4.receiver import As4ReceiverApp
from integrations.oots.as4.sender import As4Partner, As4Sender, LocalAccessPoint, RetrySchedule
from integrations.oots.as4.signature import SigningKey
from integrations.oots.as4.transport import HttpTarget
from integrations.oots.edm import Evidence, build_query_request, parse_query_response
from serviceplatform.sandbox.oots_as4 import PLATFORM_AS4_PARTY, PlatformPeer, read_key_pair
from serviceplatform.sandbox.oots_gateway import SimulatedOotsGateway
from tests.as4_material import party
from tests.integration.test_oots_gateway import EAS_DK, REQUESTER, request_to
from tests.wsgi_serving import LocalWsgiServer

pytestmark = pytest.mark.integration

ONCE = RetrySchedule.parse("0;0;SEND_ONCE")


class Stored:
    def __init__(self) -> None:
        self.messages: dict[str, ReceivedAs4] = {}

    def store(self, message: ReceivedAs4) -> bool:
        new = message.message_id not in self.messages
        self.messages.setdefault(message.message_id, message)
        return new


def _platform_point() -> LocalAccessPoint:
    made = party(PLATFORM_AS4_PARTY)
    return LocalAccessPoint(
        PLATFORM_AS4_PARTY, SigningKey(made.key, made.cert), DecryptionKey(made.key, made.cert)
    )


@pytest.fixture()
def linked() -> Iterator[tuple[SimulatedOotsGateway, As4Sender, Stored]]:
    """A gateway whose AS4 side knows the platform; the platform's sender and answer store."""
    stored = Stored()
    with SimulatedOotsGateway(response_delay=0.0) as gateway:
        _, cert = read_key_pair(gateway.as4_cert, gateway.as4_key)
        target = HttpTarget(gateway.as4_endpoint_url, ca_cert=str(gateway.preview_ca_cert))
        partners = {ap: As4Partner(ap, target, cert, cert) for ap in gateway.as4_party_ids}
        receiver = As4ReceiverApp(_platform_point(), partners, stored)
        with LocalWsgiServer(receiver) as server:
            gateway.connect_as4(
                PlatformPeer(PLATFORM_AS4_PARTY, party(PLATFORM_AS4_PARTY).cert, server.base_url)
            )
            yield gateway, As4Sender(_platform_point(), partners, schedule=ONCE), stored


def _request(gateway: SimulatedOotsGateway, provider_id: str = "SE-UHR-DIRECT") -> OutgoingAs4:
    request, provider = request_to(gateway, provider_id)
    return OutgoingAs4(
        conversation_id=uuid.uuid4(),
        from_party=PLATFORM_AS4_PARTY,
        to_party=provider.access_point,
        original_sender=TypedId(REQUESTER.identifier, EAS_DK),
        final_recipient=TypedId(provider.identifier, provider.scheme),
        action=ACTION_REQUEST,
        payload=build_query_request(request),
    )


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited in vain for {what}"
        time.sleep(0.02)


def _answer(stored: Stored, request: OutgoingAs4) -> ReceivedAs4:
    def found() -> ReceivedAs4 | None:
        return next(
            (m for m in stored.messages.values() if m.ref_to_message_id == request.message_id),
            None,
        )

    _wait_for(lambda: found() is not None, "the answer to be pushed")
    answer = found()
    assert answer is not None
    return answer


def test_a_request_over_as4_is_receipted_and_its_answer_pushed_back(
    linked: tuple[SimulatedOotsGateway, As4Sender, Stored],
) -> None:
    gateway, sender, stored = linked
    request = _request(gateway)
    result = sender.send(request)
    assert result.attempts == 1 and result.receipt_message_id
    answer = _answer(stored, request)
    assert answer.action == "ExecuteQueryResponse"
    assert answer.from_party.value == "AP_SE_01"
    assert answer.to_party is not None and answer.to_party.value == PLATFORM_AS4_PARTY
    assert answer.conversation_id == str(request.conversation_id)
    assert answer.body is not None
    outcome = parse_query_response(answer.body, answer.attachments)
    assert isinstance(outcome, Evidence) and b"Virtanen" in outcome.content
    # The gateway saw it come over AS4, and it is not the WS plugin's to hand out.
    (submitted,) = gateway.state.submitted_json()
    assert submitted["from"]["party_id"] == PLATFORM_AS4_PARTY
    assert gateway.state.pending({}) == []
    # The platform stores the answer before it receipts it, and the gateway counts a push only
    # once the receipt is verified: wait for that side too.
    _wait_for(lambda: bool(gateway.as4.pushed), "the push to be receipted")
    assert gateway.as4.pushed == [answer.message_id]


def test_a_duplicate_is_receipted_again_and_reaches_the_provider_once(
    linked: tuple[SimulatedOotsGateway, As4Sender, Stored],
) -> None:
    gateway, sender, stored = linked
    request = _request(gateway)
    first = sender.send(request)
    again = sender.send(request)
    assert first.receipt_message_id != again.receipt_message_id
    assert len(gateway.state.submitted_json()) == 1
    _answer(stored, request)


def test_an_unknown_sender_or_an_unsigned_stranger_gets_an_ebms_error(
    linked: tuple[SimulatedOotsGateway, As4Sender, Stored],
) -> None:
    gateway, sender, _ = linked
    made = party("AP_DK_77")
    stranger = LocalAccessPoint(
        "AP_DK_77", SigningKey(made.key, made.cert), DecryptionKey(made.key, made.cert)
    )
    other = As4Sender(stranger, sender.partners, schedule=ONCE)
    with pytest.raises(As4ErrorSignal) as refused:
        other.send(replace(_request(gateway), from_party="AP_DK_77"))
    assert refused.value.remote_code == "EBMS:0003"
    # The platform's party id with another key: the signature does not verify.
    impostor = LocalAccessPoint(PLATFORM_AS4_PARTY, stranger.signing, stranger.decryption)
    with pytest.raises(As4ErrorSignal) as forged:
        As4Sender(impostor, sender.partners, schedule=ONCE).send(_request(gateway))
    assert forged.value.remote_code != "EBMS:0003"
    assert gateway.state.submitted_json() == []
    # Without the sandbox CA trusted nothing is sent: the endpoint is TLS.
    http = requests.Session()
    http.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        http.post(gateway.as4_endpoint_url, data=b"x", timeout=5)

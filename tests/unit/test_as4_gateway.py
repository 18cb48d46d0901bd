"""``As4Gateway`` is a ``Gateway`` the OOTS exchange can use: submit, status, nothing to collect.

Also: the EDM request the exchange builds arrives at the partner byte for byte and still
validates against the OOTS (RegRep 4, SDG) schemas.
"""

from __future__ import annotations

import pytest

from integrations.oots.as4.access_point import RECEIPTED, As4Gateway
from integrations.oots.as4.errors import As4ReceiptMissing
from integrations.oots.as4.sender import As4Sender, RetrySchedule
from integrations.oots.as4.signals import build_receipt
from integrations.oots.as4.transport import HttpAnswer, HttpTarget
from integrations.oots.as4.usermessage import open_message, unpack_user_message
from integrations.oots.edm import EvidenceRequest, build_query_request
from integrations.oots.gateway import NOT_FOUND, Gateway
from serviceplatform.errors import UpstreamNotFound, UpstreamUnavailable, UpstreamUnreachable
from tests.as4_material import de_partner, dk_access_point, dk_partner_of_de
from tests.oots_domibus_material import outgoing
from tests.unit.test_oots_edm_validation import BUILT, schema_errors


def _receipting(target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer:
    german, platform = dk_partner_of_de()
    unpacked = unpack_user_message(
        open_message(content_type, body),
        sender_certificates=(platform.signing_certificate,),
        decryption=german.decryption,
    )
    receipt = build_receipt(
        unpacked.header.message_id, unpacked.signature.references, german.signing
    )
    return HttpAnswer(200, "application/soap+xml", receipt)


def _down(target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer:
    raise UpstreamUnreachable("refused")


def _gateway(post: object) -> Gateway:
    sender = As4Sender(
        dk_access_point(),
        {"AP_DE_01": de_partner()},
        post=post,  # type: ignore[arg-type]
        schedule=RetrySchedule.parse("0;0;SEND_ONCE"),
    )
    return As4Gateway(sender)


def test_submit_then_status() -> None:
    message = outgoing(message_id="gateway-1@oots.eu")
    with _gateway(_receipting) as gateway:
        assert gateway.status(message.message_id) == NOT_FOUND
        assert gateway.submit(message) == message.message_id
        assert gateway.status(message.message_id) == RECEIPTED


def test_no_receipt_looks_like_a_gateway_that_is_down() -> None:
    # The exchange keeps a request queued on UpstreamUnavailable and sends it again later.
    with _gateway(_down) as gateway, pytest.raises(As4ReceiptMissing) as raised:
        gateway.submit(outgoing(message_id="gateway-2@oots.eu"))
    assert isinstance(raised.value, UpstreamUnavailable) and raised.value.retryable
    assert gateway.status("gateway-2@oots.eu") == NOT_FOUND


def test_nothing_to_collect() -> None:
    with _gateway(_down) as gateway:
        assert gateway.pending() == []
        with pytest.raises(UpstreamNotFound):
            gateway.retrieve("x")
        with pytest.raises(UpstreamNotFound):
            gateway.acknowledge("x")


@pytest.mark.parametrize(("name", "request_"), BUILT[:2], ids=[name for name, _ in BUILT[:2]])
def test_the_edm_request_the_partner_unpacks_still_validates_against_the_oots_schemas(
    name: str, request_: EvidenceRequest
) -> None:
    # Compressed, signed and encrypted on the way, the RegRep document must arrive unchanged.
    received: list[bytes] = []

    def partner(target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer:
        german, platform = dk_partner_of_de()
        unpacked = unpack_user_message(
            open_message(content_type, body),
            sender_certificates=(platform.signing_certificate,),
            decryption=german.decryption,
        )
        assert unpacked.message.body is not None
        received.append(unpacked.message.body)
        return _receipting(target, content_type, body)

    document = build_query_request(request_)
    with _gateway(partner) as gateway:
        gateway.submit(outgoing(message_id=f"edm-{name}@oots.eu", payload=document))
    assert received == [document]
    assert schema_errors(received[0]) == []

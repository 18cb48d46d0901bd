"""The simulated OOTS gateway's AS4 side: eDelivery AS4 with the platform's own access point.

Beside the Domibus WS plugin, the simulated gateway is the providers' access points
(``AP_FI_01``, ``AP_SE_01``, one key for both) to an authority whose gateway is ``as4``:

- ``receive``: the platform's AS4 ``UserMessage`` (an ``ExecuteQueryRequest``, over HTTPS) is
  opened, decrypted and its signature verified against the platform's certificate with the
  product's own building blocks (``integrations.oots.as4``), handed to the providers exactly
  like a WS plugin submission (``GatewayState.submit(..., via_as4=True)``), and answered with a
  signed receipt; a duplicate MessageId is receipted again and submitted once; anything wrong
  is a signed ``eb:Error`` in an HTTP 500, as Domibus answers;
- ``push_due``: each answer of such a request, once due, is pushed to the platform's receiving
  endpoint (``[oots.as4] receive_path``) as an AS4 ``UserMessage`` from the provider's access
  point by the product's ``As4Sender``; a valid receipt marks it delivered, anything else leaves
  it for the next round (``As4Pusher`` runs rounds in a thread).

The platform's party id, certificate and receiving URL are known only once the platform's
configuration is written: ``connect`` sets them. The sandbox may import product code; the
product never imports this.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from integrations.oots.as4.encryption import DecryptionKey
from integrations.oots.as4.errors import As4PartyUnknown, As4ValueNotRecognized
from integrations.oots.as4.model import (
    ACTION_REQUEST,
    FINAL_RECIPIENT,
    OOTS_SERVICE,
    ORIGINAL_SENDER,
    Attachment,
    OutgoingAs4,
    TypedId,
)
from integrations.oots.as4.model import Property as As4Property
from integrations.oots.as4.sender import As4Partner, As4Sender, LocalAccessPoint, RetrySchedule
from integrations.oots.as4.signals import build_error_signal, build_receipt
from integrations.oots.as4.signature import SigningKey
from integrations.oots.as4.soap import SOAP12_CONTENT_TYPE
from integrations.oots.as4.transport import HttpTarget
from integrations.oots.as4.usermessage import (
    TEST_ACTION,
    TEST_SERVICE,
    UnpackedMessage,
    open_message,
    unpack_user_message,
)
from serviceplatform.errors import ServicePlatformError
from serviceplatform.sandbox.httpserver import QuietHandler
from serviceplatform.sandbox.oots_network import OOTS_PARTY_TYPE
from serviceplatform.sandbox.oots_state import GatewayState
from serviceplatform.sandbox.oots_wsplugin import (
    EBRS_MIME,
    Message,
    Party,
    Payload,
    Property,
    Submission,
    WsPluginFault,
)

log = logging.getLogger(__name__)

#: Where the simulated access points take AS4 messages.
AS4_PATH: Final = "/as4"
#: The platform's own AS4 access point in the sandbox (``[oots.as4] party_id``).
PLATFORM_AS4_PARTY: Final = "AP_DK_02"
#: One attempt per push; the next round tries again.
_ONCE: Final = RetrySchedule.parse("0;0;SEND_ONCE")
_CID: Final = "cid:"


@dataclass(frozen=True)
class PlatformPeer:
    """The platform's AS4 access point as the simulated gateway knows it."""

    party_id: str
    certificate: x509.Certificate
    receive_url: str
    #: TLS trust for ``receive_url`` when it is ``https``.
    ca_cert: str | None = None


def read_key_pair(cert: Path, key: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    private = load_pem_private_key(key.read_bytes(), None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError(f"{key}: not an RSA key")
    return private, x509.load_pem_x509_certificate(cert.read_bytes())


class SimulatedAs4AccessPoint:
    """The providers' access points over AS4; see the module docstring."""

    def __init__(
        self,
        state: GatewayState,
        key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        *,
        access_points: set[str],
        platform_party: str = PLATFORM_AS4_PARTY,
    ) -> None:
        self.state = state
        self.certificate = certificate
        self._signing = SigningKey(key, certificate)
        self._decryption = DecryptionKey(key, certificate)
        self.access_points = frozenset(access_points)
        self.platform: PlatformPeer | None = None
        self.pushed: list[str] = []
        self._lock = threading.Lock()
        state.as4_party_id = platform_party

    def connect(self, platform: PlatformPeer) -> None:
        """The platform's party id, certificate and receiving endpoint, once known."""
        self.platform = platform
        self.state.as4_party_id = platform.party_id

    # --- receiving the platform's requests -------------------------------------------------------

    def receive(self, content_type: str, body: bytes) -> tuple[int, bytes]:
        """(HTTP status, SOAP 1.2 body): a signed receipt, or a signed ``eb:Error``."""
        message_id: str | None = None
        try:
            opened = open_message(content_type, body)
            header = opened.user_header()
            message_id = header.message_id
            platform = self._sender(header.from_party.value, header.from_party.type)
            to = header.to_party
            if to is None or to.value not in self.access_points:
                raise As4PartyUnknown(f"To/PartyId {to} is no access point of this gateway")
            unpacked = unpack_user_message(
                opened, sender_certificates=(platform.certificate,), decryption=self._decryption
            )
            test = header.service == TEST_SERVICE and header.action == TEST_ACTION
            if not test:
                if header.service != OOTS_SERVICE or header.action != ACTION_REQUEST:
                    raise As4ValueNotRecognized(f"{header.service} {header.action}")
                self._submit(unpacked.message.message_id, unpacked)
            receipt = build_receipt(header.message_id, unpacked.signature.references, self._signing)
        except ServicePlatformError as error:
            log.warning("simulated AS4: refused %s: %s %s", message_id, error.code, error)
            return 500, build_error_signal(message_id, error, self._signing)
        return 200, receipt

    def _sender(self, party_id: str, party_type: str | None) -> PlatformPeer:
        platform = self.platform
        if platform is None or party_id != platform.party_id or party_type != OOTS_PARTY_TYPE:
            raise As4PartyUnknown(f"From/PartyId {party_id} ({party_type}) is not a partner")
        return platform

    def _submit(self, message_id: str, unpacked: UnpackedMessage) -> None:
        with self.state.lock:
            if message_id in self.state.outgoing:
                return  # a duplicate: receipted again, submitted once
        received = unpacked.message
        header = unpacked.header
        submission = Submission(
            message_id=message_id,
            conversation_id=received.conversation_id,
            ref_to_message_id=received.ref_to_message_id,
            sender=Party(received.from_party.value, OOTS_PARTY_TYPE, header.from_role or ""),
            receiver=Party(
                received.to_party.value if received.to_party else "",
                OOTS_PARTY_TYPE,
                header.to_role or "",
            ),
            properties=tuple(Property(p.name, p.value, p.type) for p in received.properties),
            payloads=tuple(
                Payload(p.content_id.removeprefix(_CID), p.mime_type or "", p.content)
                for p in received.payloads
            ),
        )
        if not any(p.content_type == EBRS_MIME for p in submission.payloads):
            raise As4ValueNotRecognized("no application/x-ebrs+xml payload")
        try:
            self.state.submit(submission, via_as4=True)
        except WsPluginFault as fault:
            raise As4ValueNotRecognized(f"{fault.code}: {fault.message}") from fault

    # --- pushing the providers' answers ----------------------------------------------------------

    def push_due(self) -> int:
        """Push every due AS4 answer once; how many the platform receipted."""
        platform = self.platform
        if platform is None:
            return 0
        done = 0
        with self._lock:
            for message in self.state.due_as4():
                try:
                    self._sender_for(message, platform).send(_outgoing(message))
                except ServicePlatformError as error:
                    log.info("simulated AS4: push of %s: %s", message.message_id, error.code)
                    continue
                self.state.delivered_as4(message.message_id)
                self.pushed.append(message.message_id)
                done += 1
        return done

    def _sender_for(self, message: Message, platform: PlatformPeer) -> As4Sender:
        local = LocalAccessPoint(message.sender.party_id, self._signing, self._decryption)
        target = HttpTarget(platform.receive_url, ca_cert=platform.ca_cert, timeout=30.0)
        partner = As4Partner(
            platform.party_id, target, platform.certificate, platform.certificate, OOTS_PARTY_TYPE
        )
        return As4Sender(local, {platform.party_id: partner}, schedule=_ONCE)


def _outgoing(message: Message) -> OutgoingAs4:
    """The product's ``OutgoingAs4`` of an answer the gateway holds."""
    props = {p.name: p for p in message.properties}
    sender, recipient = props[ORIGINAL_SENDER], props[FINAL_RECIPIENT]
    body = next(p for p in message.payloads if p.content_type == EBRS_MIME)
    return OutgoingAs4(
        conversation_id=uuid.UUID(message.conversation_id),
        from_party=message.sender.party_id,
        to_party=message.receiver.party_id,
        original_sender=TypedId(sender.value, sender.type),
        final_recipient=TypedId(recipient.value, recipient.type),
        action=message.action,
        payload=body.data,
        attachments=tuple(
            Attachment(_cid(p.cid), p.content_type, p.data)
            for p in message.payloads
            if p is not body
        ),
        message_id=message.message_id,
        payload_id=_cid(body.cid),
        timestamp=datetime.now(UTC),
        ref_to_message_id=message.ref_to_message_id,
        properties=tuple(
            As4Property(p.name, p.value, p.type)
            for p in message.properties
            if p.name not in (ORIGINAL_SENDER, FINAL_RECIPIENT)
        ),
    )


def _cid(value: str) -> str:
    return value if value.startswith(_CID) else _CID + value


class As4Pusher:
    """Runs ``push_due`` every ``interval`` seconds in a daemon thread until ``stop()``."""

    def __init__(self, push: Callable[[], int], interval: float = 0.1) -> None:
        self._push = push
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oots-as4-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._push()
            except Exception:  # a bug of the simulation must not end the thread
                log.exception("simulated AS4: push round failed")


def as4_handler(access_point: SimulatedAs4AccessPoint) -> type[QuietHandler]:
    """The HTTP handler of the AS4 endpoint (``POST /as4``)."""

    class _As4Handler(QuietHandler):
        point: ClassVar[SimulatedAs4AccessPoint] = access_point

        def do_POST(self) -> None:  # noqa: N802 - http.server dispatch name
            body = self.read_body()
            if body is None:
                return
            if self.path.split("?")[0].rstrip("/") != AS4_PATH:
                self.send_body(404, b"no such endpoint\n", "text/plain")
                return
            if self.answer_injected(self.point.state.take_fault("as4")):
                return
            status, answer = self.point.receive(self.headers.get("Content-Type", ""), body)
            self.send_body(status, answer, SOAP12_CONTENT_TYPE)

    return _As4Handler

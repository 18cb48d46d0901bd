"""The AS4 sender: one-way push of an OOTS user message, receipt checked, retried, audited.

``As4Sender.send`` packs the message once (``usermessage.pack_user_message``: compressed,
signed, encrypted for the partner) and POSTs the same bytes, same MessageId, until a valid
receipt comes back (AS4 reception awareness, §1.4.3.2):

- a valid receipt is an ``eb:SignalMessage`` signed by the partner's certificate (over
  ``eb:Messaging`` and the Body), with ``RefToMessageId`` = our MessageId and non-repudiation
  references equal (as a set of URI and digest) to the references the platform signed;
- no valid receipt (unreachable, timeout, HTTP error, unsigned or wrong receipt) means another
  attempt after the PMode's pause: the OOTS PMode says ``retry="12;4;CONSTANT"``, read here as
  Domibus documents it, 4 retries spread evenly over 12 minutes (a pause of 3 minutes); after
  the last one the send fails with ``As4ReceiptMissing`` (``EBMS:0301``, SP-790);
- an ``eb:Error`` signal is the partner's refusal: not retried, ``As4ErrorSignal`` (SP-792)
  with the partner's ``EBMS:00xx`` in ``remote_code``.

Every outcome (receipt, refusal, final failure) writes one audit record when an ``AuditLog`` is
given. The HTTP call itself is ``transport.post_message`` (one function, see there), replaceable
through ``post``; ``sleep`` is injectable so tests need no wall clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from cryptography import x509
from lxml import etree

from integrations.oots.as4.encryption import DecryptionKey
from integrations.oots.as4.errors import (
    As4ErrorSignal,
    As4PartnerNotConfigured,
    As4ReceiptInvalid,
    As4ReceiptMissing,
)
from integrations.oots.as4.mime import SOAP12_MEDIA, media_type_parameters, parse_related
from integrations.oots.as4.model import OOTS_PARTY_TYPE, OutgoingAs4
from integrations.oots.as4.signals import Signal, read_signal
from integrations.oots.as4.signature import SigningKey, verify_envelope
from integrations.oots.as4.soap import Malformed, parse_envelope
from integrations.oots.as4.transport import HttpAnswer, HttpTarget, Post, post_message
from integrations.oots.as4.usermessage import (
    PackedMessage,
    pack_test_message,
    pack_user_message,
)
from serviceplatform.errors import SecurityError, ServicePlatformError, UpstreamError
from serviceplatform.store.audit import AuditEntry

log = logging.getLogger(__name__)

AUDIT_SERVICE: Final = "oots-as4"
AUDIT_OPERATION: Final = "as4-send"


class AuditWriter(Protocol):
    """What the sender needs of ``serviceplatform.store.audit.AuditLog``."""

    def write(self, entry: AuditEntry) -> None: ...


@dataclass(frozen=True)
class As4Partner:
    """A partner access point, configured statically (OOTS 1.x uses no SMP)."""

    party_id: str
    endpoint: HttpTarget
    #: Verifies the partner's messages and receipts.
    signing_certificate: x509.Certificate
    #: The platform encrypts the payloads for this one (often the same certificate).
    encryption_certificate: x509.Certificate
    party_type: str = OOTS_PARTY_TYPE


@dataclass(frozen=True)
class LocalAccessPoint:
    """The authority's own access point: its party id and its two keys."""

    party_id: str
    signing: SigningKey
    decryption: DecryptionKey
    party_type: str = OOTS_PARTY_TYPE


@dataclass(frozen=True)
class RetrySchedule:
    """A PMode ``receptionAwareness/@retry``: ``timeout_minutes;count;strategy``."""

    timeout_minutes: float
    count: int
    strategy: str = "CONSTANT"

    @classmethod
    def parse(cls, text: str) -> RetrySchedule:
        try:
            timeout, count, strategy = (item.strip() for item in text.split(";"))
            schedule = cls(float(timeout), int(count), strategy.upper())
        except ValueError as exc:
            raise ValueError(f"retry {text!r} is not 'minutes;count;strategy'") from exc
        if schedule.strategy not in ("CONSTANT", "SEND_ONCE"):
            raise ValueError(f"retry strategy {schedule.strategy!r} is not supported")
        if schedule.timeout_minutes < 0 or schedule.count < 0:
            raise ValueError(f"retry {text!r} has a negative value")
        return schedule

    def pauses(self) -> list[float]:
        """Seconds to wait before each retry (empty: send once)."""
        if self.strategy == "SEND_ONCE" or self.count == 0:
            return []
        return [self.timeout_minutes * 60.0 / self.count] * self.count


#: ``pmode-oots-domibus.xml``: ``receptionAwareness retry="12;4;CONSTANT"``.
OOTS_RETRY: Final = RetrySchedule.parse("12;4;CONSTANT")


@dataclass(frozen=True)
class _Sent:
    """What the audit record of one push names."""

    message_id: str
    action: str
    to_party: str


@dataclass(frozen=True)
class SendResult:
    message_id: str
    receipt_message_id: str | None
    attempts: int


def _answer_envelope(answer: HttpAnswer) -> etree._Element:
    media, _ = media_type_parameters(answer.content_type or "application/octet-stream")
    body = answer.body
    if media == "multipart/related":
        body = parse_related(answer.content_type, body).root.content
    elif media != SOAP12_MEDIA:
        raise As4ReceiptInvalid(f"HTTP {answer.status} with {media!r}, not an ebMS signal")
    return parse_envelope(body)


def check_answer(answer: HttpAnswer, packed: PackedMessage, partner: As4Partner) -> Signal:
    """The partner's receipt of ``packed``; ``As4ErrorSignal`` for an ``eb:Error``,
    ``As4ReceiptInvalid`` for anything else that is not a valid receipt."""
    try:
        root = _answer_envelope(answer)
        signal = read_signal(root)
    except (Malformed, ServicePlatformError) as exc:
        raise As4ReceiptInvalid(f"HTTP {answer.status}: {exc}", answer.status) from exc
    if signal.errors:
        first = signal.errors[0]
        raise As4ErrorSignal(
            f"{first.code}: {first.description or 'no description'}",
            answer.status,
            remote_code=first.code,
        )
    if not 200 <= answer.status < 300:
        raise As4ReceiptInvalid(f"HTTP {answer.status}", answer.status)
    if not signal.is_receipt:
        raise As4ReceiptInvalid("the signal is neither a receipt nor an error")
    try:
        verify_envelope(root, {}, (partner.signing_certificate,))
    except SecurityError as exc:
        raise As4ReceiptInvalid(f"receipt signature: {exc.error_text}") from exc
    if signal.ref_to_message_id != packed.message_id:
        raise As4ReceiptInvalid(f"the receipt is for {signal.ref_to_message_id!r}")
    signed = {(r.uri, r.digest_value) for r in packed.references}
    if set(signal.nri) != signed or len(signal.nri) != len(signed):
        raise As4ReceiptInvalid("the receipt's non-repudiation references differ from ours")
    return signal


class As4Sender:
    """Sends OOTS user messages to configured partners; see the module docstring."""

    def __init__(
        self,
        local: LocalAccessPoint,
        partners: Mapping[str, As4Partner],
        *,
        post: Post = post_message,
        schedule: RetrySchedule = OOTS_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        audit: AuditWriter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.local = local
        self.partners = dict(partners)
        self._post = post
        self._pauses = schedule.pauses()
        self._sleep = sleep
        self._audit = audit
        self._clock = clock

    def partner(self, party_id: str) -> As4Partner:
        partner = self.partners.get(party_id)
        if partner is None:
            raise As4PartnerNotConfigured(party_id)
        return partner

    def send(self, message: OutgoingAs4) -> SendResult:
        """Push ``message`` until a valid receipt; raises ``As4ReceiptMissing`` or
        ``As4ErrorSignal`` (see the module docstring)."""
        partner = self.partner(message.to_party)
        if message.from_party != self.local.party_id:
            raise As4PartnerNotConfigured(f"{message.from_party} is not this access point")
        packed = pack_user_message(message, self.local.signing, partner.encryption_certificate)
        return self._push(packed, partner, message.action)

    def ping(self, party_id: str) -> SendResult:
        """Send the ebMS test message to ``party_id`` (one attempt per pause, as ``send``)."""
        partner = self.partner(party_id)
        packed = pack_test_message(
            self.local.party_id, party_id, self.local.signing, party_type=self.local.party_type
        )
        return self._push(packed, partner, "test")

    def _push(self, packed: PackedMessage, partner: As4Partner, action: str) -> SendResult:
        started = self._clock()
        message = _Sent(packed.message_id, action, partner.party_id)
        last: UpstreamError | None = None
        attempts = 0
        for pause in [0.0, *self._pauses]:
            if attempts:
                log.info(
                    "as4 %s: no valid receipt (%s); attempt %d in %.0f s",
                    packed.message_id,
                    last.code if last else "?",
                    attempts + 1,
                    pause,
                )
                self._sleep(pause)
            attempts += 1
            try:
                answer = self._post(partner.endpoint, packed.content_type, packed.body)
                signal = check_answer(answer, packed, partner)
            except As4ErrorSignal as error:
                self._write_audit(message, started, attempts, error)
                raise
            except UpstreamError as error:
                last = error
                continue
            self._write_audit(message, started, attempts, None)
            return SendResult(packed.message_id, signal.message_id, attempts)
        assert last is not None
        missing = As4ReceiptMissing(
            f"{packed.message_id} to {partner.party_id} after {attempts} attempts; "
            f"last: {last.code} {last.error_text}"
        )
        self._write_audit(message, started, attempts, missing)
        raise missing from last

    def _write_audit(
        self,
        message: _Sent,
        started: datetime,
        attempts: int,
        error: ServicePlatformError | None,
    ) -> None:
        if self._audit is None:
            return
        now = self._clock()
        what = "receipt" if error is None else "no receipt"
        detail = f"{message.action} to {message.to_party}: {what} after {attempts} attempt(s)"
        self._audit.write(
            AuditEntry(
                at=now,
                service=AUDIT_SERVICE,
                operation=AUDIT_OPERATION,
                message_id=message.message_id,
                sysid=message.to_party,
                outcome="ok" if error is None else "fault",
                error_code=None if error is None else error.code,
                latency_ms=max(0.0, (now - started).total_seconds() * 1000.0),
                detail=detail if error is None else f"{detail}: {error.error_text}",
            )
        )

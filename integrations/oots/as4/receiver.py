"""The AS4 receiving endpoint: a WSGI application partners push OOTS answers to.

One POST = one SwA user message (AS4 One-Way/Push). In order:

1. read the body (at most ``max_body_bytes``), split the MIME message, parse the SOAP part;
2. read the ``UserMessage`` header, find the local access point by ``To/PartyId`` (one
   endpoint may serve several: authorities with AS4 party ids of their own, ``others``) and
   the partner by ``From/PartyId`` (and its type) among that one's partners (``EBMS:0003``
   else);
3. decrypt the payloads with the access point's key, verify the signature against the
   partner's certificate (``usermessage.unpack_user_message``), decompress within
   ``max_payload_bytes``;
4. check the header against the OOTS PMode: service ``QueryManager`` of its type, action
   ``ExecuteQueryResponse`` or ``ExceptionResponse``, the gateway role, ``originalSender`` and
   ``finalRecipient`` present (the ebMS test service is accepted and never delivered);
5. store the message (``AnswerStore.store``: the ``oots_messages`` table through the inbox,
   where the OOTS exchange finds the answers the Domibus push stores too) *before* answering;
   the store keeps a MessageId once, so a duplicate is stored once and answered again;
6. answer the signed receipt (HTTP 200), its NRR references those of the verified signature.

Any failure answers a signed ``eb:Error`` signal with HTTP 500 (what Domibus does), the code
from the platform error (``errors.ebms_code_of``); nothing is stored and no stack trace leaves.
A storage failure is ``EBMS:0202``: no receipt, so the partner retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from integrations.oots.as4.compression import DEFAULT_MAX_BYTES
from integrations.oots.as4.ebms import UserMessageHeader
from integrations.oots.as4.errors import (
    As4HeaderInvalid,
    As4PartyUnknown,
    As4ValueNotRecognized,
    ebms_code_of,
)
from integrations.oots.as4.model import (
    ANSWER_ACTIONS,
    FINAL_RECIPIENT,
    GATEWAY_ROLE,
    OOTS_SERVICE,
    OOTS_SERVICE_TYPE,
    ORIGINAL_SENDER,
    ReceivedAs4,
)
from integrations.oots.as4.sender import As4Partner, LocalAccessPoint
from integrations.oots.as4.signals import build_error_signal, build_receipt
from integrations.oots.as4.soap import SOAP12_CONTENT_TYPE
from integrations.oots.as4.usermessage import (
    TEST_ACTION,
    TEST_SERVICE,
    OpenedMessage,
    open_message,
    unpack_user_message,
)
from serviceplatform.errors import ServicePlatformError
from serviceplatform.soap.envelope import read_request_body

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

#: The whole SwA message: evidence PDFs compressed and encrypted.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024


class AnswerStore(Protocol):
    """Where received answers go: ``DomibusInbox`` (the ``oots_messages`` table) fits."""

    def store(self, message: ReceivedAs4) -> bool: ...


def _partner_of(
    header: UserMessageHeader, local: LocalAccessPoint, partners: Mapping[str, As4Partner]
) -> As4Partner:
    sender = header.from_party
    partner = partners.get(sender.value)
    if partner is None or (sender.type or None) != partner.party_type:
        raise As4PartyUnknown(f"From/PartyId {sender.value} ({sender.type}) is not a partner")
    to = header.to_party
    if to is None or to.value != local.party_id or (to.type or None) != local.party_type:
        named = None if to is None else f"{to.value} ({to.type})"
        raise As4PartyUnknown(f"To/PartyId {named} is not this access point")
    return partner


def check_header(header: UserMessageHeader, message: ReceivedAs4) -> bool:
    """True for an OOTS answer to deliver, False for the ebMS test message; else an error."""
    if header.service == TEST_SERVICE and header.action == TEST_ACTION:
        return False
    if header.service != OOTS_SERVICE or header.service_type != OOTS_SERVICE_TYPE:
        raise As4ValueNotRecognized(f"service {header.service!r} ({header.service_type})")
    if header.action not in ANSWER_ACTIONS:
        raise As4ValueNotRecognized(f"action {header.action!r} is not an OOTS answer")
    for role in (header.from_role, header.to_role):
        if role != GATEWAY_ROLE:
            raise As4HeaderInvalid(f"role {role!r} is not {GATEWAY_ROLE}")
    for name in (ORIGINAL_SENDER, FINAL_RECIPIENT):
        if message.message_property(name) is None:
            raise As4HeaderInvalid(f"message property {name} is missing")
    if message.body is None:
        raise As4HeaderInvalid("no application/x-ebrs+xml payload")
    return True


class As4ReceiverApp:
    """WSGI application of the access point's receiving endpoint; see the module docstring."""

    def __init__(
        self,
        local: LocalAccessPoint,
        partners: Mapping[str, As4Partner],
        store: AnswerStore,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_payload_bytes: int = DEFAULT_MAX_BYTES,
        others: Iterable[tuple[LocalAccessPoint, Mapping[str, As4Partner]]] = (),
    ) -> None:
        """``local`` and its ``partners`` first; ``others``: further access points served
        here, each with its partners (chosen by ``To/PartyId``)."""
        self.local = local
        self.partners = dict(partners)
        self._points: dict[str, tuple[LocalAccessPoint, Mapping[str, As4Partner]]] = {}
        for point, its_partners in [(local, self.partners), *others]:
            self._points.setdefault(point.party_id, (point, dict(its_partners)))
        self.store = store
        self._max_body = max_body_bytes
        self._max_payload = max_payload_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            body = b"POST an AS4 user message (multipart/related)\n"
            start_response(
                "405 Method Not Allowed",
                [("Allow", "POST"), ("Content-Type", "text/plain"), _length(body)],
            )
            return [body]
        message_id: str | None = None
        try:
            opened = open_message(str(environ.get("CONTENT_TYPE", "")), self._read_body(environ))
            message_id = _message_id_of(opened)
            receipt = self._receive(opened)
        except ServicePlatformError as error:
            return self._error(error, message_id, start_response)
        start_response("200 OK", [("Content-Type", SOAP12_CONTENT_TYPE), _length(receipt)])
        return [receipt]

    def _receive(self, opened: OpenedMessage) -> bytes:
        header = opened.user_header()
        to = header.to_party
        local, partners = self._points.get(to.value if to else "", (self.local, self.partners))
        partner = _partner_of(header, local, partners)
        unpacked = unpack_user_message(
            opened,
            sender_certificates=(partner.signing_certificate,),
            decryption=local.decryption,
            max_bytes=self._max_payload,
        )
        if check_header(header, unpacked.message):
            new = self.store.store(unpacked.message)
            log.info(
                "as4: %s %s from %s %s",
                header.action,
                header.message_id,
                partner.party_id,
                "stored" if new else "already stored (duplicate): answered again",
            )
        else:
            log.info("as4: test message %s from %s", header.message_id, partner.party_id)
        return build_receipt(header.message_id, unpacked.signature.references, local.signing)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        return read_request_body(environ, self._max_body)

    def _error(
        self, error: ServicePlatformError, message_id: str | None, start_response: StartResponse
    ) -> list[bytes]:
        code = ebms_code_of(error)
        if error.client_fault:
            log.warning("as4: refused %s: %s %s %s", message_id, code, error.code, error)
        else:
            log.error("as4: failed on %s: %s %s %s", message_id, code, error.code, error)
        body = build_error_signal(message_id, error, self.local.signing)
        start_response(
            "500 Internal Server Error", [("Content-Type", SOAP12_CONTENT_TYPE), _length(body)]
        )
        return [body]


def _message_id_of(opened: OpenedMessage) -> str | None:
    """The MessageId, for the error signal's ``refToMessageInError`` (None when unreadable)."""
    try:
        return opened.user_header().message_id
    except ServicePlatformError:
        return None


def _length(body: bytes) -> tuple[str, str]:
    return ("Content-Length", str(len(body)))

"""What the simulated OOTS gateway holds: submitted requests, queued answers, faults.

``GatewayState`` is the gateway's memory, shared by the WS plugin endpoint, the preview pages
(through ``PreviewStore``) and the test hooks, guarded by one lock:

- ``submit`` takes a validated ``Submission``, routes it (``To`` party = the provider's access
  point, ``finalRecipient`` = a provider of the network) and hands the RegRep payload to the
  provider. Its answer becomes an incoming message (ebMS action ``ExecuteQueryResponse`` or
  ``ExceptionResponse``, ``RefToMessageId`` = the request's ``MessageId``, same
  ``ConversationId``, ``From``/``To`` swapped, ``originalSender``/``finalRecipient`` swapped)
  that becomes *pending* ``response_delay`` seconds later: answers are asynchronous, as on a
  real network. An answer that waits for a preview decision is queued once the user decides
  (or the preview times out).
- ``pending``/``retrieve``/``mark_downloaded``/``status`` are the backend's view, with the WS
  plugin's ``markAsDownloaded`` semantics: a message retrieved with ``markAsDownloaded`` true
  (the default) leaves the pending list and cannot be retrieved again; with false it stays
  until ``markMessageAsDownloaded``.
- A request that came over AS4 (``submit(..., via_as4=True)``: the platform's own AS4 access
  point, ``as4_party_id``, sent it to ``oots_as4``'s endpoint) gets its answer the AS4 way: it
  never shows in the WS plugin's pending list; ``due_as4`` hands it to the AS4 side, which
  pushes it to the platform and marks it delivered (``delivered_as4``).
- Time is a monotonic clock (``clock``), so tests need not sleep longer than the delay.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from serviceplatform.sandbox.oots_network import GATEWAY_ROLE, OOTS_PARTY_TYPE, Network
from serviceplatform.sandbox.oots_providers import (
    AwaitPreview,
    ProviderAnswer,
    SimulatedProvider,
)
from serviceplatform.sandbox.oots_wsplugin import (
    EBRS_MIME,
    EXECUTE_QUERY_REQUEST,
    Message,
    Party,
    Payload,
    Property,
    Submission,
    WsPluginFault,
)

#: Right part of the message ids and content ids the simulated access points make.
ID_DOMAIN: Final = "oots.eu"
FAULT_ENDPOINTS: Final = ("wsplugin", "common-services", "preview", "as4")
MAX_RECORDED: Final = 10_000


@dataclass
class Incoming:
    """An answer on its way to, or in, the backend's pending list."""

    message: Message
    available_at: float
    outcome: str
    downloaded: bool = False
    #: Answers a request that came over AS4: pushed over AS4, never listed as pending.
    via_as4: bool = False


@dataclass
class Waiting:
    """A request whose answer waits for the user's preview decision."""

    request: Message
    provider: SimulatedProvider
    reaction: AwaitPreview


@dataclass
class Submitted:
    message: Message
    provider: str
    outcome: str

    def as_json(self) -> dict[str, Any]:
        message = self.message
        ebrs = next((p for p in message.payloads if p.content_type == EBRS_MIME), None)
        return {
            "message_id": message.message_id,
            "conversation_id": message.conversation_id,
            "ref_to_message_id": message.ref_to_message_id,
            "received_at": message.timestamp.isoformat(),
            "service": message.service,
            "service_type": message.service_type,
            "action": message.action,
            "from": _party_json(message.sender),
            "to": _party_json(message.receiver),
            "original_sender": _property_json(message, "originalSender"),
            "final_recipient": _property_json(message, "finalRecipient"),
            "properties": [
                {"name": p.name, "value": p.value, "type": p.type} for p in message.properties
            ],
            "payloads": [
                {"cid": p.cid, "content_type": p.content_type, "size": len(p.data)}
                for p in message.payloads
            ],
            "payload": None if ebrs is None else ebrs.data.decode("utf-8", "replace"),
            "provider": self.provider,
            "outcome": self.outcome,
        }


def _party_json(party: Party) -> dict[str, str]:
    return {"party_id": party.party_id, "type": party.type, "role": party.role}


def _property_json(message: Message, name: str) -> dict[str, str | None] | None:
    found = next((p for p in message.properties if p.name == name), None)
    return None if found is None else {"value": found.value, "type": found.type}


def _property(message: Message, name: str) -> Property | None:
    return next((p for p in message.properties if p.name == name), None)


@dataclass
class GatewayState:
    network: Network
    providers: Mapping[str, SimulatedProvider]
    party_id: str
    response_delay: float
    preview_timeout: float
    clock: Callable[[], float] = time.monotonic
    lock: threading.RLock = field(default_factory=threading.RLock)
    submitted: list[Submitted] = field(default_factory=list)
    incoming: dict[str, Incoming] = field(default_factory=dict)
    waiting: list[Waiting] = field(default_factory=list)
    outgoing: dict[str, Message] = field(default_factory=dict)
    faults: dict[str, tuple[int | str, int]] = field(default_factory=dict)
    requests_received: int = 0
    #: The platform's own AS4 access point (``From`` of the requests ``oots_as4`` takes).
    as4_party_id: str | None = None
    #: MessageIds of the requests that came over AS4.
    as4_requests: set[str] = field(default_factory=set)
    _entity: int = 874945832007903000

    # --- submitMessage -------------------------------------------------------------------------

    def submit(self, submission: Submission, *, via_as4: bool = False) -> tuple[str, int]:
        """Route and record ``submission``; (message id, entity id) for ``submitResponse``.
        ``via_as4``: it came over AS4 from ``as4_party_id``, and its answer goes back so."""
        provider = self._route(submission, via_as4=via_as4)
        now = self.clock()
        with self.lock:
            message_id = submission.message_id or f"{uuid.uuid4()}@{ID_DOMAIN}"
            if message_id in self.outgoing or message_id in self.incoming:
                raise WsPluginFault(
                    "WS_PLUGIN:0007", f"a message with id [{message_id}] exists already"
                )
            message = Message(
                message_id=message_id,
                conversation_id=submission.conversation_id,
                action=EXECUTE_QUERY_REQUEST,
                sender=submission.sender,
                receiver=submission.receiver,
                properties=submission.properties,
                payloads=submission.payloads,
                timestamp=datetime.now(UTC),
                ref_to_message_id=submission.ref_to_message_id,
            )
            self.outgoing[message_id] = message
            if via_as4:
                self.as4_requests.add(message_id)
            self._entity += 1
            entity = self._entity
        reaction = provider.answer(
            submission.ebrs_payload.data, conversation_id=submission.conversation_id, now=now
        )
        with self.lock:
            record = Submitted(message, provider.spec.identifier, "waiting-for-preview")
            self.submitted.append(record)
            del self.submitted[:-MAX_RECORDED]
            if isinstance(reaction, AwaitPreview):
                self.waiting.append(Waiting(message, provider, reaction))
            else:
                self._queue(message, provider, reaction, now + self.response_delay)
                record.outcome = reaction.outcome
        return message_id, entity

    def _route(self, submission: Submission, *, via_as4: bool = False) -> SimulatedProvider:
        expected = self.as4_party_id if via_as4 else self.party_id
        if submission.sender.party_id != expected:
            raise WsPluginFault(
                "WS_PLUGIN:0004",
                f"From/PartyId [{submission.sender.party_id}] is not this access point "
                f"([{expected}]): a backend submits as its own gateway",
            )
        final = submission.prop("finalRecipient")
        provider = self.providers.get(final.value)
        if provider is None:
            known = ", ".join(sorted(self.providers))
            raise WsPluginFault(
                "WS_PLUGIN:0004",
                f"finalRecipient [{final.value}] is no provider of the simulated OOTS network "
                f"(known: {known})",
            )
        spec = provider.spec
        if final.type != spec.scheme:
            raise WsPluginFault(
                "WS_PLUGIN:0004",
                f"finalRecipient [{final.value}] has type [{final.type}]; the DSD publishes it "
                f"under [{spec.scheme}]",
            )
        if submission.receiver.party_id != spec.access_point:
            raise WsPluginFault(
                "WS_PLUGIN:0003",
                f"no PMode process for To/PartyId [{submission.receiver.party_id}] reaching "
                f"[{spec.identifier}]: its access point is [{spec.access_point}] (the DSD's "
                "AccessService/Identifier)",
            )
        return provider

    def _queue(
        self, request: Message, provider: SimulatedProvider, answer: ProviderAnswer, at: float
    ) -> None:
        """Turn ``answer`` into the incoming message answering ``request`` (lock held)."""
        spec = provider.spec
        exchange = _property(request, "ExchangeId")
        original_sender = _property(request, "originalSender")
        assert original_sender is not None
        properties = [
            *([exchange] if exchange is not None else []),
            Property("SpecificationId", answer.version.value),
            Property("originalSender", spec.identifier, spec.scheme),
            Property("finalRecipient", original_sender.value, original_sender.type),
        ]
        payloads = [Payload(f"{answer.response_id}@{ID_DOMAIN}", EBRS_MIME, answer.body)]
        payloads += [Payload(a.content_id, a.mime_type, a.data) for a in answer.attachments]
        message = Message(
            message_id=f"{uuid.uuid4()}@{ID_DOMAIN}",
            conversation_id=request.conversation_id,
            action=answer.action,
            sender=Party(spec.access_point, OOTS_PARTY_TYPE, GATEWAY_ROLE),
            receiver=request.sender,
            properties=tuple(properties),
            payloads=tuple(payloads),
            timestamp=datetime.now(UTC),
            ref_to_message_id=request.message_id,
        )
        via_as4 = request.message_id in self.as4_requests
        self.incoming[message.message_id] = Incoming(message, at, answer.outcome, via_as4=via_as4)
        for record in self.submitted:
            if record.message is request:
                record.outcome = answer.outcome

    def settle(self) -> None:
        """Queue the answers whose preview was decided (or timed out) since the last look."""
        now = self.clock()
        with self.lock:
            still = []
            for item in self.waiting:
                answer = item.provider.settle(item.reaction, now=now, timeout=self.preview_timeout)
                if answer is None:
                    still.append(item)
                    continue
                session = item.provider.previews.get(item.reaction.token)
                decided = session.decided_clock if session and session.decided_clock else now
                self._queue(item.request, item.provider, answer, decided + self.response_delay)
            self.waiting = still

    # --- the backend's view ----------------------------------------------------------------------

    def pending(self, filters: Mapping[str, str]) -> list[str]:
        """Ids of the messages waiting for the backend, oldest first, filtered as the WSDL's
        ``listPendingMessagesRequest`` allows."""
        self.settle()
        now = self.clock()
        with self.lock:
            found = []
            for item in self.incoming.values():
                message = item.message
                if item.downloaded or item.via_as4 or item.available_at > now:
                    continue
                if not _matches(message, filters):
                    continue
                found.append(message.message_id)
            return found

    def retrieve(self, message_id: str, *, mark: bool) -> Message:
        self.settle()
        with self.lock:
            item = self._available(message_id)
            if mark:
                item.downloaded = True
            return item.message

    def mark_downloaded(self, message_id: str) -> Message:
        self.settle()
        with self.lock:
            item = self._available(message_id)
            item.downloaded = True
            return item.message

    def due_as4(self) -> list[Message]:
        """The answers due to be pushed over AS4 (oldest first), not yet delivered."""
        self.settle()
        now = self.clock()
        with self.lock:
            return [
                item.message
                for item in self.incoming.values()
                if item.via_as4 and not item.downloaded and item.available_at <= now
            ]

    def delivered_as4(self, message_id: str) -> None:
        """The platform's access point receipted the AS4 push of ``message_id``."""
        with self.lock:
            item = self.incoming.get(message_id)
            if item is not None:
                item.downloaded = True

    def _available(self, message_id: str) -> Incoming:
        item = self.incoming.get(message_id)
        if item is None or item.downloaded or item.via_as4 or item.available_at > self.clock():
            raise WsPluginFault(
                "WS_PLUGIN:0009", f"No message with id [{message_id}] pending for download"
            )
        return item

    def status(self, message_id: str) -> str:
        """``getStatus``: the plugin's ``messageStatus`` of a message."""
        self.settle()
        with self.lock:
            if message_id in self.outgoing:
                return "ACKNOWLEDGED"
            item = self.incoming.get(message_id)
            if item is None or item.available_at > self.clock():
                return "NOT_FOUND"
            return "DOWNLOADED" if item.downloaded else "RECEIVED"

    # --- faults and hooks ------------------------------------------------------------------------

    def take_fault(self, endpoint: str) -> int | str | None:
        """The injected fault for one request at ``endpoint``, if any is left."""
        with self.lock:
            fault = self.faults.get(endpoint)
            if fault is None or fault[1] <= 0:
                return None
            self.faults[endpoint] = (fault[0], fault[1] - 1)
            return fault[0]

    def pending_json(self) -> list[dict[str, Any]]:
        self.settle()
        now = self.clock()
        with self.lock:
            listed: list[dict[str, Any]] = []
            for item in self.incoming.values():
                if item.downloaded:
                    continue
                message = item.message
                listed.append(
                    {
                        "message_id": message.message_id,
                        "conversation_id": message.conversation_id,
                        "ref_to_message_id": message.ref_to_message_id,
                        "action": message.action,
                        "from": message.sender.party_id,
                        "final_recipient": _property_json(message, "finalRecipient"),
                        "outcome": item.outcome,
                        "state": "available" if item.available_at <= now else "scheduled",
                    }
                )
            for waiting in self.waiting:
                request = waiting.request
                listed.append(
                    {
                        "message_id": None,
                        "conversation_id": request.conversation_id,
                        "ref_to_message_id": request.message_id,
                        "action": None,
                        "from": waiting.provider.spec.access_point,
                        "final_recipient": _property_json(request, "originalSender"),
                        "outcome": None,
                        "state": "waiting-for-preview",
                        "preview": waiting.reaction.token,
                    }
                )
            return listed

    def submitted_json(self) -> list[dict[str, Any]]:
        self.settle()
        with self.lock:
            return [record.as_json() for record in self.submitted]


def _matches(message: Message, filters: Mapping[str, str]) -> bool:
    received = message.timestamp
    for name, wanted in filters.items():
        if name == "messageId" and message.message_id != wanted:
            return False
        if name == "conversationId" and message.conversation_id != wanted:
            return False
        if name == "refToMessageId" and message.ref_to_message_id != wanted:
            return False
        if name == "fromPartyId" and message.sender.party_id != wanted:
            return False
        if name in ("finalRecipient", "originalSender"):
            found = _property(message, name)
            if found is None or found.value != wanted:
                return False
        if name == "receivedFrom" and received < _instant(wanted):
            return False
        if name == "receivedTo" and received > _instant(wanted):
            return False
    return True


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WsPluginFault(
            "WS_PLUGIN:0001", f"[{value}] is not an xsd:dateTime", sender=True
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

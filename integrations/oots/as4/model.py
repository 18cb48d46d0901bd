"""The OOTS user message of eDelivery AS4 / ebMS 3, whatever gateway carries it.

What the platform submits (``OutgoingAs4``) and what it receives (``ReceivedAs4``, one
``ReceivedPayload`` per part), their fields (``TypedId``, ``Property``, ``Attachment``), the ebMS
namespace and the header values OOTS fixes (``conformance/README.md``: service
``QueryManager``, the three actions, the gateway role, the party id type), and the ids and
timestamps the platform generates. Plain data: no XML, no I/O. The ``eb:Messaging`` header
itself is built and read in ``ebms``; each gateway (the Domibus WS plugin, ...) moves these
values over its own wire.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

EBMS_NS: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"

#: ``conformance/README.md``: the OOTS ebMS header values.
OOTS_SERVICE: Final = "QueryManager"
OOTS_SERVICE_TYPE: Final = "urn:oasis:names:tc:ebcore:ebrs:ebms:binding:1.0"
ACTION_REQUEST: Final = "ExecuteQueryRequest"
ACTION_RESPONSE: Final = "ExecuteQueryResponse"
ACTION_EXCEPTION: Final = "ExceptionResponse"
OOTS_ACTIONS: Final = frozenset({ACTION_REQUEST, ACTION_RESPONSE, ACTION_EXCEPTION})
#: The actions that answer a request.
ANSWER_ACTIONS: Final = frozenset({ACTION_RESPONSE, ACTION_EXCEPTION})
GATEWAY_ROLE: Final = "http://sdg.europa.eu/edelivery/gateway"
OOTS_PARTY_TYPE: Final = "urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots"
ORIGINAL_SENDER: Final = "originalSender"
FINAL_RECIPIENT: Final = "finalRecipient"
EBRS_MIME: Final = "application/x-ebrs+xml"
MIME_TYPE_PROPERTY: Final = "MimeType"
#: The content id under which a ``bodyload`` (an AS4 payload in the SOAP body, which OOTS does
#: not use) is kept; every other payload is keyed by its ``cid:`` reference.
BODYLOAD_ID: Final = "bodyload"
#: The domain part of the MessageIds and content ids the platform generates (the convention of
#: the reference envelopes, ``...@oots.eu``).
ID_DOMAIN: Final = "oots.eu"

#: ``max255-non-empty-string`` of both header schemas.
MAX_ID: Final = 255
_MAX_PROPERTY: Final = 1024


def new_message_id() -> str:
    """A fresh ebMS MessageId, ``<uuid4>@oots.eu``."""
    return f"{uuid.uuid4()}@{ID_DOMAIN}"


def new_content_id() -> str:
    """A fresh payload reference, ``cid:<uuid4>@oots.eu``."""
    return f"cid:{uuid.uuid4()}@{ID_DOMAIN}"


def format_timestamp(moment: datetime) -> str:
    """``2026-08-06T10:00:00.000Z``: UTC with milliseconds, as the reference envelopes write."""
    if moment.tzinfo is None:
        raise ValueError("the ebMS timestamp must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- value types --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypedId:
    """A value and its scheme (a party id and its ``@type``, ``originalSender``, ...)."""

    value: str
    type: str | None = None


@dataclass(frozen=True)
class Property:
    """One ebMS ``MessageProperties/Property``."""

    name: str
    value: str
    type: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A payload besides the RegRep document, e.g. the evidence PDF of a response."""

    #: ``cid:...`` as the ebMS ``PartInfo/@href`` and the payload's ``@payloadId`` write it.
    content_id: str
    mime_type: str
    content: bytes


@dataclass(frozen=True)
class OutgoingAs4:
    """What the platform submits: one OOTS user message (normally the evidence request).

    ``message_id``, ``payload_id`` and ``timestamp`` are generated unless given. The platform
    sets the MessageId itself (Domibus keeps a submitted one), so the request can be recorded
    for correlation *before* it is submitted, and a repeated submission of the same object is
    refused by Domibus ("Message identifiers must be unique") instead of sending twice.
    """

    conversation_id: uuid.UUID
    from_party: str
    to_party: str
    original_sender: TypedId
    final_recipient: TypedId
    action: str
    #: The RegRep document (``query:QueryRequest`` / ``QueryResponse``), sent as
    #: ``application/x-ebrs+xml``.
    payload: bytes
    attachments: tuple[Attachment, ...] = ()
    message_id: str = field(default_factory=new_message_id)
    payload_id: str = field(default_factory=new_content_id)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    ref_to_message_id: str | None = None
    #: Further message properties, written after ``originalSender`` and ``finalRecipient``
    #: (e.g. the reference envelopes' ``ExchangeId`` and ``SpecificationId``).
    properties: tuple[Property, ...] = ()
    #: The party id type of ``from_party`` and ``to_party``.
    party_type: str = OOTS_PARTY_TYPE

    def __post_init__(self) -> None:
        if not isinstance(self.conversation_id, uuid.UUID):
            raise ValueError("conversation_id must be a UUID")
        if self.action not in OOTS_ACTIONS:
            raise ValueError(f"action {self.action!r} is not an OOTS action")
        if self.timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        if not self.payload:
            raise ValueError("the RegRep payload is empty")
        for what, value in (
            ("message_id", self.message_id),
            ("from_party", self.from_party),
            ("to_party", self.to_party),
            ("original_sender", self.original_sender.value),
            ("final_recipient", self.final_recipient.value),
            ("ref_to_message_id", self.ref_to_message_id),
        ):
            if value is not None and not 0 < len(value.strip()) == len(value) <= MAX_ID:
                raise ValueError(f"{what} must be 1-{MAX_ID} characters without outer blanks")
        if self.original_sender.type is None or self.final_recipient.type is None:
            raise ValueError("originalSender and finalRecipient need a type (their scheme)")
        ids = [self.payload_id, *(a.content_id for a in self.attachments)]
        for content_id in ids:
            if not content_id.startswith("cid:") or len(content_id) <= len("cid:"):
                raise ValueError(f"content id {content_id!r} must be cid:...")
        if len({i.lower() for i in ids}) != len(ids):
            raise ValueError("content ids must be unique (Domibus compares them ignoring case)")
        for prop in self.properties:
            if prop.name in (ORIGINAL_SENDER, FINAL_RECIPIENT):
                raise ValueError(f"{prop.name} is set by its own field")
            if not prop.value or len(prop.value) > _MAX_PROPERTY:
                raise ValueError(f"property {prop.name} must be 1-{_MAX_PROPERTY} characters")


@dataclass(frozen=True)
class ReceivedPayload:
    #: ``cid:...`` (or ``BODYLOAD_ID`` for a payload in the SOAP body).
    content_id: str
    mime_type: str | None
    content: bytes


@dataclass(frozen=True)
class ReceivedAs4:
    """A user message Domibus delivered: its ebMS header and its payloads, decoded."""

    message_id: str
    conversation_id: str
    service: str
    action: str
    from_party: TypedId
    to_party: TypedId | None
    payloads: tuple[ReceivedPayload, ...]
    properties: tuple[Property, ...] = ()
    ref_to_message_id: str | None = None
    timestamp: datetime | None = None
    service_type: str | None = None
    from_role: str | None = None
    to_role: str | None = None

    def message_property(self, name: str) -> TypedId | None:
        """The first message property ``name`` (value and type), or None."""
        for prop in self.properties:
            if prop.name == name:
                return TypedId(prop.value, prop.type)
        return None

    @property
    def original_sender(self) -> TypedId | None:
        return self.message_property(ORIGINAL_SENDER)

    @property
    def final_recipient(self) -> TypedId | None:
        return self.message_property(FINAL_RECIPIENT)

    @property
    def is_answer(self) -> bool:
        """An ``ExecuteQueryResponse`` or ``ExceptionResponse``."""
        return self.action in ANSWER_ACTIONS

    def _body_part(self) -> ReceivedPayload | None:
        return next((p for p in self.payloads if p.mime_type == EBRS_MIME), None)

    @property
    def body(self) -> bytes | None:
        """The RegRep document: the first ``application/x-ebrs+xml`` payload (None without)."""
        part = self._body_part()
        return part.content if part is not None else None

    @property
    def body_id(self) -> str | None:
        part = self._body_part()
        return part.content_id if part is not None else None

    @property
    def attachments(self) -> dict[str, bytes]:
        """Every other payload by content id (``cid:...``): what ``parse_query_response`` takes."""
        main = self._body_part()
        return {p.content_id: p.content for p in self.payloads if p is not main}

"""The OOTS answer store: never lose an answer, store it before acknowledging it.

Table ``oots_messages`` (migration 0005), one row per AS4 user message:

=====================  ====================================================================
column                 what
=====================  ====================================================================
``message_id``         ebMS MessageId; unique per ``direction`` (a loopback gateway hands
                       back the platform's own request under the same MessageId)
``conversation_id``    ebMS ConversationId (indexed): the OOTS correlation key
``ref_to_message_id``  ebMS RefToMessageId (indexed), when the sender wrote one
``direction``          ``in`` (received from Domibus) or ``out`` (submitted by the platform)
``action``             ``ExecuteQueryRequest`` / ``ExecuteQueryResponse`` / ``ExceptionResponse``
``from_party``         ``From/PartyId``; ``to_party``: ``To/PartyId``
``state``              ``received`` -> ``consumed`` (in); ``submitted`` (out)
``payload``            the RegRep document bytes (``application/x-ebrs+xml``), or NULL
``attachments``        JSON ``{"cid:...": {"mime_type": ..., "content": base64}}``: the other
                       payloads (an evidence PDF), in the order they came
``header``             JSON of the rest of the ebMS header (timestamp, service and type, roles,
                       party id types, every message property, the payload's content id/type)
``received_at``        when the row was written (for ``out``: when it was recorded)
=====================  ====================================================================

One row holds everything needed to give the message back as a ``ReceivedAs4``. Attachments
are JSON in the row rather than a second table: an answer is written and read as a whole, and
one insert is one transaction.

Collecting (``collect``): for each pending MessageId, ``retrieve`` (not marking it) ->
``store`` (one transaction, ``INSERT ... ON CONFLICT DO NOTHING`` on (direction, MessageId):
idempotent) -> ``acknowledge``. A crash, or a failed acknowledgement, between storing and
acknowledging leaves the message pending in Domibus: the next run retrieves it again, stores
nothing new and acknowledges it. A storage failure stops the run before anything is
acknowledged. Domibus' push (``push.py``) goes through the same ``store``.

Correlation (``answer_for``): OOTS answers share the request's ConversationId; an answer *may*
carry ``RefToMessageId`` = the request's MessageId (the real Domibus answers in the
conformance captures carry none). ``record_outgoing`` writes the request *before* it is
submitted (the platform sets the MessageId itself), so its row id precedes every answer's:

- by ConversationId: the newest answer of the conversation;
- by the request's MessageId: the newest answer whose RefToMessageId is that id; else the
  first answer of the request's conversation stored after the request (so the preview answer
  and the evidence answer of a two-step exchange in one conversation each find their request).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from integrations.oots.as4.model import (
    ANSWER_ACTIONS,
    EBRS_MIME,
    FINAL_RECIPIENT,
    OOTS_SERVICE,
    OOTS_SERVICE_TYPE,
    ORIGINAL_SENDER,
    Attachment,
    OutgoingAs4,
    Property,
    ReceivedAs4,
    ReceivedPayload,
    TypedId,
    format_timestamp,
)
from integrations.oots.gateway import AnswerSource, Submitter
from integrations.oots.tables import oots_messages
from serviceplatform.errors import ServicePlatformError, StorageError, UpstreamNotFound
from serviceplatform.store.db import Database

log = logging.getLogger(__name__)

#: Message properties that ``OutgoingAs4`` writes itself from its own fields.
_ROUTING_PROPERTIES = frozenset({ORIGINAL_SENDER, FINAL_RECIPIENT})

IN = "in"
OUT = "out"
RECEIVED = "received"
CONSUMED = "consumed"
SUBMITTED = "submitted"


@dataclass
class CollectReport:
    """What one ``collect`` run did, by MessageId."""

    #: Stored now for the first time.
    stored: list[str] = field(default_factory=list)
    #: Already stored earlier (a crash or failed acknowledgement before): acknowledged now.
    known: list[str] = field(default_factory=list)
    #: Stored (now or before) but the acknowledgement failed: pending again next run.
    unacknowledged: dict[str, ServicePlatformError] = field(default_factory=dict)
    #: Could not be retrieved or read: left pending in Domibus.
    failed: dict[str, ServicePlatformError] = field(default_factory=dict)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DomibusInbox:
    """The ``oots_messages`` table: store, correlate and hand out OOTS messages."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._db = db
        self._clock = clock
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    # --- writing ---------------------------------------------------------------------------

    def store(self, message: ReceivedAs4) -> bool:
        """Store a received message once; True when it was new, False when already stored."""
        body = _body_part(message)
        others = [p for p in message.payloads if p is not body]
        values = {
            "message_id": message.message_id,
            "conversation_id": message.conversation_id,
            "ref_to_message_id": message.ref_to_message_id,
            "direction": IN,
            "action": message.action,
            "from_party": message.from_party.value,
            "to_party": message.to_party.value if message.to_party else None,
            "state": RECEIVED,
            "payload": body.content if body is not None else None,
            "attachments": _attachments_json(
                (p.content_id, p.mime_type, p.content) for p in others
            ),
            "header": json.dumps(_received_header(message, body)),
            "received_at": self._clock(),
        }
        inserted = self._insert_once(values)
        if inserted:
            log.info(
                "oots: stored %s %s (conversation %s)",
                message.action,
                message.message_id,
                message.conversation_id,
            )
        return inserted

    def record_outgoing(self, message: OutgoingAs4) -> bool:
        """Record a request before submitting it (idempotent); True when it was new."""
        attachments = ((a.content_id, a.mime_type, a.content) for a in message.attachments)
        values = {
            "message_id": message.message_id,
            "conversation_id": str(message.conversation_id),
            "ref_to_message_id": message.ref_to_message_id,
            "direction": OUT,
            "action": message.action,
            "from_party": message.from_party,
            "to_party": message.to_party,
            "state": SUBMITTED,
            "payload": message.payload,
            "attachments": _attachments_json(attachments),
            "header": json.dumps(_outgoing_header(message)),
            "received_at": self._clock(),
        }
        return self._insert_once(values)

    def submit(self, client: Submitter, message: OutgoingAs4) -> str:
        """``record_outgoing``, then ``client.submit``: the answer can always be correlated.

        Returns the MessageId Domibus answered (the message's own; should Domibus ever answer
        another, the record follows it).
        """
        self.record_outgoing(message)
        return self.send_recorded(client, message)

    def send_recorded(self, client: Submitter, message: OutgoingAs4) -> str:
        """``client.submit`` of a message ``record_outgoing`` has recorded; as ``submit``."""
        message_id = client.submit(message)
        if message_id != message.message_id:
            with self._db.transaction(write_first=True) as connection:
                connection.execute(
                    update(oots_messages)
                    .where(
                        oots_messages.c.direction == OUT,
                        oots_messages.c.message_id == message.message_id,
                    )
                    .values(message_id=message_id)
                )
        return message_id

    def mark_consumed(self, message_id: str) -> bool:
        """The integration has taken the received message; True when it was ``received``."""
        with self._db.transaction(write_first=True) as connection:
            result = connection.execute(
                update(oots_messages)
                .where(
                    oots_messages.c.direction == IN,
                    oots_messages.c.message_id == message_id,
                    oots_messages.c.state == RECEIVED,
                )
                .values(state=CONSUMED)
            )
        return bool(result.rowcount)

    def _insert_once(self, values: dict[str, Any]) -> bool:
        statement = (
            self._insert(oots_messages)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=[oots_messages.c.direction, oots_messages.c.message_id]
            )
            .returning(oots_messages.c.id)
        )
        with self._db.transaction(write_first=True) as connection:
            return connection.execute(statement).first() is not None

    # --- collecting ------------------------------------------------------------------------

    def collect(self, client: AnswerSource, *, final_recipient: str | None = None) -> CollectReport:
        """Download every pending message: retrieve -> store -> acknowledge, one by one.

        A message that cannot be retrieved is reported and skipped (it stays pending); a
        failed acknowledgement is reported (the message is stored; the next run acknowledges
        it). ``StorageError`` stops the run at once, with nothing unstored acknowledged.
        """
        report = CollectReport()
        for message_id in client.pending(final_recipient):
            try:
                message = client.retrieve(message_id)
            except StorageError:
                raise
            except ServicePlatformError as exc:
                log.error("oots: cannot retrieve %s: %s %s", message_id, exc.code, exc)
                report.failed[message_id] = exc
                continue
            (report.stored if self.store(message) else report.known).append(message_id)
            error = acknowledge(client, message_id)
            if error is not None:
                report.unacknowledged[message_id] = error
        return report

    # --- reading ---------------------------------------------------------------------------

    def received(self, message_id: str) -> ReceivedAs4 | None:
        """The received message ``message_id``, or None."""
        query = select(oots_messages).where(
            oots_messages.c.direction == IN, oots_messages.c.message_id == message_id
        )
        with self._db.transaction() as connection:
            row = connection.execute(query).first()
        return _to_received(row) if row is not None else None

    def outgoing(self, message_id: str) -> OutgoingAs4 | None:
        """The submitted (or to-be-submitted) message ``message_id`` as recorded, to submit it
        again unchanged; None when unknown or its document was purged. The timestamp is new."""
        query = select(oots_messages).where(
            oots_messages.c.direction == OUT, oots_messages.c.message_id == message_id
        )
        with self._db.transaction() as connection:
            row = connection.execute(query).first()
        if row is None or row.payload is None:
            return None
        header = json.loads(row.header)
        properties = [Property(p["name"], p["value"], p.get("type")) for p in header["properties"]]
        by_name = {p.name: p for p in properties}
        sender, recipient = by_name.get(ORIGINAL_SENDER), by_name.get(FINAL_RECIPIENT)
        if sender is None or recipient is None:
            return None
        attachments = json.loads(row.attachments or "{}")
        return OutgoingAs4(
            conversation_id=uuid.UUID(row.conversation_id),
            from_party=row.from_party,
            to_party=row.to_party,
            original_sender=TypedId(sender.value, sender.type),
            final_recipient=TypedId(recipient.value, recipient.type),
            action=row.action,
            payload=bytes(row.payload),
            attachments=tuple(
                Attachment(cid, part["mime_type"], base64.b64decode(part["content"]))
                for cid, part in attachments.items()
            ),
            message_id=row.message_id,
            payload_id=header["payload_id"],
            ref_to_message_id=row.ref_to_message_id,
            properties=tuple(p for p in properties if p.name not in _ROUTING_PROPERTIES),
            party_type=header["from_type"],
        )

    def state(self, message_id: str, *, direction: str = IN) -> str | None:
        """``received``/``consumed``/``submitted``, or None when unknown."""
        query = select(oots_messages.c.state).where(
            oots_messages.c.direction == direction, oots_messages.c.message_id == message_id
        )
        with self._db.transaction() as connection:
            return connection.execute(query).scalar()

    def answer_for(
        self, *, conversation_id: str | None = None, ref_to_message_id: str | None = None
    ) -> ReceivedAs4 | None:
        """The answer to a request, by ConversationId or by the request's MessageId (one)."""
        if (conversation_id is None) == (ref_to_message_id is None):
            raise ValueError("give exactly one of conversation_id and ref_to_message_id")
        answers = select(oots_messages).where(
            oots_messages.c.direction == IN, oots_messages.c.action.in_(sorted(ANSWER_ACTIONS))
        )
        with self._db.transaction() as connection:
            if conversation_id is not None:
                row = connection.execute(
                    answers.where(oots_messages.c.conversation_id == conversation_id)
                    .order_by(oots_messages.c.id.desc())
                    .limit(1)
                ).first()
                return _to_received(row) if row is not None else None
            row = connection.execute(
                answers.where(oots_messages.c.ref_to_message_id == ref_to_message_id)
                .order_by(oots_messages.c.id.desc())
                .limit(1)
            ).first()
            if row is None:
                request = connection.execute(
                    select(oots_messages.c.id, oots_messages.c.conversation_id).where(
                        oots_messages.c.direction == OUT,
                        oots_messages.c.message_id == ref_to_message_id,
                    )
                ).first()
                if request is not None:
                    row = connection.execute(
                        answers.where(
                            oots_messages.c.conversation_id == request.conversation_id,
                            oots_messages.c.id > request.id,
                            oots_messages.c.ref_to_message_id.is_(None),
                        )
                        .order_by(oots_messages.c.id)
                        .limit(1)
                    ).first()
        return _to_received(row) if row is not None else None


def acknowledge(client: AnswerSource, message_id: str) -> ServicePlatformError | None:
    """``client.acknowledge``; None when done (``UpstreamNotFound``: it was already)."""
    try:
        client.acknowledge(message_id)
    except UpstreamNotFound:
        log.info("oots: %s was no longer pending (acknowledged before)", message_id)
    except StorageError:
        raise
    except ServicePlatformError as exc:
        log.warning("oots: stored %s but cannot acknowledge it: %s %s", message_id, exc.code, exc)
        return exc
    return None


# --- the JSON columns ---------------------------------------------------------------------------


def _body_part(message: ReceivedAs4) -> ReceivedPayload | None:
    return next((p for p in message.payloads if p.mime_type == EBRS_MIME), None)


def _attachments_json(parts: Any) -> str:
    return json.dumps(
        {
            content_id: {
                "mime_type": mime_type,
                "content": base64.b64encode(content).decode("ascii"),
            }
            for content_id, mime_type, content in parts
        }
    )


def _properties_json(properties: tuple[Property, ...]) -> list[dict[str, str | None]]:
    return [{"name": p.name, "value": p.value, "type": p.type} for p in properties]


def _received_header(message: ReceivedAs4, body: ReceivedPayload | None) -> dict[str, Any]:
    return {
        "timestamp": message.timestamp.isoformat() if message.timestamp else None,
        "service": message.service,
        "service_type": message.service_type,
        "from_type": message.from_party.type,
        "from_role": message.from_role,
        "to_type": message.to_party.type if message.to_party else None,
        "to_role": message.to_role,
        "properties": _properties_json(message.properties),
        "payload_id": body.content_id if body is not None else None,
        # The stored order of the payloads: the RegRep document's place among them.
        "payload_index": message.payloads.index(body) if body is not None else None,
    }


def _outgoing_header(message: OutgoingAs4) -> dict[str, Any]:
    sender, recipient = message.original_sender, message.final_recipient
    return {
        "timestamp": format_timestamp(message.timestamp),
        "service": OOTS_SERVICE,
        "service_type": OOTS_SERVICE_TYPE,
        "from_type": message.party_type,
        "to_type": message.party_type,
        "properties": [
            {"name": "originalSender", "value": sender.value, "type": sender.type},
            {"name": "finalRecipient", "value": recipient.value, "type": recipient.type},
            *_properties_json(message.properties),
        ],
        "payload_id": message.payload_id,
    }


def _to_received(row: Any) -> ReceivedAs4:
    header = json.loads(row.header)
    payloads = [
        ReceivedPayload(content_id, part["mime_type"], base64.b64decode(part["content"]))
        for content_id, part in json.loads(row.attachments).items()
    ]
    if row.payload is not None:
        index = header.get("payload_index") or 0
        payloads.insert(index, ReceivedPayload(header["payload_id"], EBRS_MIME, bytes(row.payload)))
    timestamp = header.get("timestamp")
    return ReceivedAs4(
        message_id=row.message_id,
        conversation_id=row.conversation_id,
        service=header["service"],
        service_type=header.get("service_type"),
        action=row.action,
        from_party=TypedId(row.from_party, header.get("from_type")),
        from_role=header.get("from_role"),
        to_party=TypedId(row.to_party, header.get("to_type")) if row.to_party else None,
        to_role=header.get("to_role"),
        ref_to_message_id=row.ref_to_message_id,
        timestamp=datetime.fromisoformat(timestamp) if timestamp else None,
        properties=tuple(Property(p["name"], p["value"], p["type"]) for p in header["properties"]),
        payloads=tuple(payloads),
    )

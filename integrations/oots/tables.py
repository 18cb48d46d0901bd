"""The tables of OOTS evidence requests, on the core's ``MetaData`` (``INTEGRATION.tables``).

``oots_messages`` (migration 0005) holds the AS4 messages, ``oots_requests`` (migration
0007) the requests and where they stand; both migrations are in ``migrations/``.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    CheckConstraint,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from serviceplatform.store.models import (
    CVR_LEN,
    ERROR_CODE_LEN,
    KIND_LEN,
    MESSAGE_ID_LEN,
    NAME_LEN,
    STATUS_LEN,
    UUID_LEN,
    Base,
    UtcDateTime,
)


class OotsMessageRecord(Base):
    """An OOTS AS4 user message: an answer received through Domibus, or a request submitted.

    Written by ``integrations/oots/domibus/inbox.py``. A received message is stored before
    Domibus is told it was downloaded, once per (direction, MessageId): a loopback gateway
    hands back the platform's own request under the MessageId it was submitted with.
    """

    __tablename__ = "oots_messages"
    __table_args__ = (
        UniqueConstraint("direction", "message_id"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint("state IN ('received', 'consumed', 'submitted')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LEN))
    conversation_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LEN), index=True)
    ref_to_message_id: Mapped[str | None] = mapped_column(String(MESSAGE_ID_LEN), index=True)
    direction: Mapped[str] = mapped_column(String(KIND_LEN))
    action: Mapped[str] = mapped_column(String(NAME_LEN))
    from_party: Mapped[str] = mapped_column(String(NAME_LEN))
    to_party: Mapped[str | None] = mapped_column(String(NAME_LEN))
    state: Mapped[str] = mapped_column(String(STATUS_LEN))
    #: The RegRep document (``application/x-ebrs+xml``); None when the message had none.
    payload: Mapped[bytes | None] = mapped_column()
    #: JSON: the other payloads, ``{"cid:...": {"mime_type": ..., "content": base64}}``.
    attachments: Mapped[str] = mapped_column(Text)
    #: JSON: the rest of the ebMS header (timestamp, service, roles, party types, properties).
    header: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


oots_messages = cast(Table, OotsMessageRecord.__table__)


class OotsRequestRecord(Base):
    """One OOTS evidence request of an authority and where it stands (``integrations/oots``).

    The request and answer documents stay in ``oots_messages`` (``answer_message_id`` names
    the answer); this row holds no evidence and no personal data beyond the authority.
    """

    __tablename__ = "oots_requests"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'submitted', 'preview_required', 'answered', 'failed')",
            name="state",
        ),
    )

    request_id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)
    authority_cvr: Mapped[str] = mapped_column(String(CVR_LEN), index=True)
    consumer_system: Mapped[str | None] = mapped_column(String(UUID_LEN))
    conversation_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LEN))
    #: The AS4 MessageId of the first request, and of the one awaiting its answer.
    first_message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LEN))
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LEN), unique=True)
    provider_id: Mapped[str] = mapped_column(String(NAME_LEN))
    provider_scheme: Mapped[str] = mapped_column(String(NAME_LEN))
    to_party: Mapped[str] = mapped_column(String(NAME_LEN))
    edm_version: Mapped[str] = mapped_column(String(STATUS_LEN))
    state: Mapped[str] = mapped_column(String(STATUS_LEN), index=True)
    preview_location: Mapped[str | None] = mapped_column(Text)
    preview_method: Mapped[str | None] = mapped_column(String(STATUS_LEN))
    #: JSON ``[[lang, text], ...]``.
    preview_description: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(ERROR_CODE_LEN))
    edm_error_code: Mapped[str | None] = mapped_column(String(ERROR_CODE_LEN))
    error_text: Mapped[str | None] = mapped_column(Text)
    #: ``oots_messages.message_id`` (direction ``in``) of the answer that finished it.
    answer_message_id: Mapped[str | None] = mapped_column(String(MESSAGE_ID_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


oots_requests = cast(Table, OotsRequestRecord.__table__)

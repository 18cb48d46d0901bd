"""The ``oots_requests`` table: one row per evidence request, and where it stands.

States (``state``)::

    queued --(Domibus accepted it)--> submitted        (gateway down: stays queued, resent by
       '--(refused, or queued too long)--> failed       the poller; see ``OotsExchange``)
    submitted --(ExecuteQueryResponse)--------------------------> answered
        |  \\--(ExceptionResponse with a preview location)--> preview_required
        |   \\-(ExceptionResponse, unreadable answer, timeout)--> failed
        '-- preview_required --(second request recorded)--> queued (new message_id)

Every transition is one conditional ``UPDATE`` (``WHERE state = <from> AND message_id =
<expected>``): when two processes see the same answer, exactly one of them moves the row, and
only that one writes the audit record of the answer.

The row holds no document and no personal data: the request and answer documents stay in
``oots_messages`` (``first_message_id``, ``answer_message_id``), and ``purge`` empties those
once the request is finished and its retention has passed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import exists, insert, or_, select, update

from integrations.oots.tables import oots_messages, oots_requests
from serviceplatform.store.db import Database

QUEUED: Final = "queued"
SUBMITTED: Final = "submitted"
PREVIEW_REQUIRED: Final = "preview_required"
ANSWERED: Final = "answered"
FAILED: Final = "failed"
FINISHED: Final = (ANSWERED, FAILED)


@dataclass(frozen=True)
class RequestRecord:
    """One row of ``oots_requests``."""

    request_id: str
    authority_cvr: str
    consumer_system: str | None
    conversation_id: str
    first_message_id: str
    message_id: str
    provider_id: str
    provider_scheme: str
    to_party: str
    edm_version: str
    state: str
    created_at: datetime
    updated_at: datetime
    preview_location: str | None = None
    preview_method: str | None = None
    #: ``(lang, text)`` pairs.
    preview_description: tuple[tuple[str, str], ...] = ()
    error_code: str | None = None
    edm_error_code: str | None = None
    error_text: str | None = None
    answer_message_id: str | None = None


def _record(row: Any) -> RequestRecord:
    values = dict(row._mapping)
    description = values.pop("preview_description")
    pairs = json.loads(description) if description else []
    return RequestRecord(**values, preview_description=tuple((a, b) for a, b in pairs))


class RequestStore:
    """Reads and moves ``oots_requests`` rows; see the module docstring."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, record: RequestRecord) -> None:
        values = record.__dict__ | {
            "preview_description": _description(record.preview_description),
        }
        with self._db.transaction(write_first=True) as connection:
            connection.execute(insert(oots_requests).values(**values))

    def get(self, request_id: str) -> RequestRecord | None:
        query = select(oots_requests).where(oots_requests.c.request_id == request_id)
        with self._db.transaction() as connection:
            row = connection.execute(query).first()
        return _record(row) if row is not None else None

    def in_state(self, state: str, *, limit: int = 500) -> list[RequestRecord]:
        query = (
            select(oots_requests)
            .where(oots_requests.c.state == state)
            .order_by(oots_requests.c.created_at)
            .limit(limit)
        )
        with self._db.transaction() as connection:
            return [_record(row) for row in connection.execute(query)]

    def move(self, record: RequestRecord, *, from_state: str, now: datetime, **values: Any) -> bool:
        """Move ``record`` out of ``from_state`` (as last read) with ``values``; True if this
        call did it, False when another caller moved it first."""
        if "preview_description" in values:
            values["preview_description"] = _description(values["preview_description"])
        statement = (
            update(oots_requests)
            .where(
                oots_requests.c.request_id == record.request_id,
                oots_requests.c.state == from_state,
                oots_requests.c.message_id == record.message_id,
            )
            .values(updated_at=now, **values)
        )
        with self._db.transaction(write_first=True) as connection:
            return bool(connection.execute(statement).rowcount)

    def purge(self, before: datetime) -> int:
        """Empty the documents of requests finished before ``before``; the rows stay.

        The answer (evidence) and every request document of the conversation lose their
        payload and attachments. Returns how many requests were purged now.
        """
        # Only conversations that still hold a document: the finished requests of earlier
        # rounds are not touched again, however long the history grows.
        holds_documents = or_(
            oots_messages.c.payload.is_not(None), oots_messages.c.attachments != "{}"
        )
        due = (
            select(oots_requests.c.conversation_id)
            .where(
                oots_requests.c.state.in_(FINISHED),
                oots_requests.c.updated_at < before,
                exists().where(
                    oots_messages.c.conversation_id == oots_requests.c.conversation_id,
                    holds_documents,
                ),
            )
            .distinct()
        )
        with self._db.transaction(write_first=True) as connection:
            purged = len(connection.execute(due).all())
            if purged:
                connection.execute(
                    update(oots_messages)
                    .where(oots_messages.c.conversation_id.in_(due), holds_documents)
                    .values(payload=None, attachments="{}")
                )
        return purged


def _description(pairs: Iterable[tuple[str, str]] | None) -> str | None:
    found = [list(pair) for pair in pairs or ()]
    return json.dumps(found) if found else None

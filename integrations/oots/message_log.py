"""OOTS evidence requests in the platform's message log (``Integration.message_sources``).

One ``oots_requests`` row is one message log row (source ``oots``): ``answered`` is ok,
``failed`` a fault, the other states pending. Its detail is the request's state, the
conversation's AS4 messages with their states, and the audit records of those messages;
never a document (the evidence and the request stay in ``oots_messages``, unread here). A
failed request can be resent by an operator (``OotsExchange.resend_failed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import or_, select

from integrations.oots import SERVICE_KEY
from integrations.oots.request_store import ANSWERED, FAILED, RequestStore
from integrations.oots.tables import oots_messages, oots_requests
from serviceplatform.errors import MessageNotFound
from serviceplatform.messagelog.model import (
    MessageDetail,
    MessageQuery,
    MessageRow,
    ResendResult,
    Section,
    after_cursor,
    nothing,
)
from serviceplatform.store.models import audit_records

if TYPE_CHECKING:
    from serviceplatform.platform import Platform

NAME: Final = "oots"
#: The operation OOTS requests are listed under (the audit's name of a delivered request).
OPERATION: Final = "Bevisanmodning"
_OUTCOME_STATES: Final = {"ok": (ANSWERED,), "fault": (FAILED,)}


def _outcome(state: str) -> str:
    return "ok" if state == ANSWERED else "fault" if state == FAILED else "pending"


def _row(row: Any) -> MessageRow:
    return MessageRow(
        source=NAME,
        key=row.request_id,
        at=row.created_at,
        service=SERVICE_KEY,
        operation=OPERATION,
        outcome=_outcome(row.state),
        state=row.state,
        authority_cvr=row.authority_cvr,
        error_code=row.error_code,
        message_id=row.message_id,
        conversation_id=row.conversation_id,
        detail=row.error_text,
    )


class OotsRequestSource:
    name = NAME

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._db = platform.db

    def find(self, query: MessageQuery, limit: int) -> Sequence[MessageRow]:
        c = oots_requests.c
        statement = select(oots_requests)
        if query.service not in (None, SERVICE_KEY) or query.operation not in (None, OPERATION):
            return []
        if query.subject is not None:
            return []  # a request holds no personal data
        for column, value in (
            (c.authority_cvr, query.authority_cvr),
            (c.error_code, query.error_code),
            (c.conversation_id, query.conversation_id),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.message_id is not None:
            statement = statement.where(
                or_(c.message_id == query.message_id, c.first_message_id == query.message_id)
            )
        if query.outcome is not None:
            if query.outcome == "pending":
                statement = statement.where(c.state.not_in((ANSWERED, FAILED)))
            elif query.outcome in _OUTCOME_STATES:
                statement = statement.where(c.state.in_(_OUTCOME_STATES[query.outcome]))
            else:
                statement = statement.where(nothing())
        if query.since is not None:
            statement = statement.where(c.created_at >= query.since)
        if query.until is not None:
            statement = statement.where(c.created_at < query.until)
        cursor = query.after
        after = after_cursor(NAME, c.created_at, c.request_id, cursor, cursor and cursor.key)
        if after is not None:
            statement = statement.where(after)
        statement = statement.order_by(c.created_at.desc(), c.request_id.desc()).limit(limit)
        with self._db.transaction() as connection:
            return [_row(row) for row in connection.execute(statement)]

    def detail(self, key: str) -> MessageDetail | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                select(oots_requests).where(oots_requests.c.request_id == key)
            ).first()
            if row is None:
                return None
            m = oots_messages.c
            # The columns of the messages only: never their payload or attachments.
            messages = connection.execute(
                select(
                    m.message_id,
                    m.direction,
                    m.action,
                    m.state,
                    m.from_party,
                    m.to_party,
                    m.ref_to_message_id,
                    m.received_at,
                )
                .where(m.conversation_id == row.conversation_id)
                .order_by(m.received_at, m.id)
            ).all()
            ids = [message.message_id for message in messages] or [row.message_id]
            audited = connection.execute(
                select(audit_records)
                .where(audit_records.c.message_id.in_(ids))
                .order_by(audit_records.c.at, audit_records.c.id)
            ).all()
        request = {
            "request_id": row.request_id,
            "state": row.state,
            "conversation_id": row.conversation_id,
            "first_message_id": row.first_message_id,
            "message_id": row.message_id,
            "provider": f"{row.provider_scheme}::{row.provider_id}",
            "to_party": row.to_party,
            "edm_version": row.edm_version,
            "error_code": row.error_code,
            "edm_error_code": row.edm_error_code,
            "error_text": row.error_text,
            "answer_message_id": row.answer_message_id,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        }
        return MessageDetail(
            _row(row),
            [
                Section("OOTS request", [request]),
                Section(
                    "Conversation messages",
                    [
                        {
                            "message_id": message.message_id,
                            "direction": message.direction,
                            "action": message.action,
                            "state": message.state,
                            "from_party": message.from_party,
                            "to_party": message.to_party,
                            "ref_to_message_id": message.ref_to_message_id,
                            "at": message.received_at.isoformat(),
                        }
                        for message in messages
                    ],
                ),
                Section(
                    "Audit records",
                    [
                        {
                            "ref": f"call:{a.id}",
                            "at": a.at.isoformat(),
                            "operation": a.operation,
                            "outcome": a.outcome,
                            "error_code": a.error_code,
                            "detail": a.detail,
                        }
                        for a in audited
                    ],
                ),
            ],
            resendable=row.state == FAILED,
        )

    def related(self, row: MessageRow) -> list[Section]:
        """For an OOTS call's audit record: the request of the same AS4 message."""
        if row.source == NAME or row.service != SERVICE_KEY or not row.message_id:
            return []
        c = oots_requests.c
        with self._db.transaction() as connection:
            found = connection.execute(
                select(c.request_id, c.state, c.conversation_id).where(
                    or_(c.message_id == row.message_id, c.first_message_id == row.message_id)
                )
            ).all()
        rows = [
            {
                "ref": f"{NAME}:{r.request_id}",
                "state": r.state,
                "conversation_id": r.conversation_id,
            }
            for r in found
        ]
        return [Section("OOTS request", rows)] if rows else []

    def resend(self, key: str, *, actor: str) -> ResendResult:
        from integrations.oots.exchange import OotsExchange

        record = RequestStore(self._db).get(key)
        if record is None:
            raise MessageNotFound(f"oots:{key}")
        platform = self._platform
        exchange = OotsExchange.from_settings(
            platform.db, platform.audit, platform.settings, platform.clock
        )
        try:
            sent = exchange.resend_failed(record, actor=actor)
        finally:
            exchange.close()
        if sent.state == FAILED:
            return ResendResult(False, f"the gateway refused it again: {sent.error_text}")
        return ResendResult(True, f"resent as {sent.message_id}; the request is {sent.state}")


def message_source(platform: Platform) -> OotsRequestSource:
    """The ``Integration.message_sources`` entry."""
    return OotsRequestSource(platform)

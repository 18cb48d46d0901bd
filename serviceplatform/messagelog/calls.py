"""The core's part of the message log: every call, read from the audit table.

One audit record is one row (source ``call``). Its detail is the record itself and, as the
outward status, the peer's HTTP status; the integrations' sources add what they hold about the
same MessageID (``related``: SF1600's sending ledger, the OOTS request). Conversation ids are
not the audit table's: a search by one finds no calls (the integrations' sources answer it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Select, select

from serviceplatform.errors import ResendRefused
from serviceplatform.messagelog.model import (
    MessageDetail,
    MessageQuery,
    MessageRow,
    ResendResult,
    Section,
    after_cursor,
    nothing,
    row_id,
)
from serviceplatform.store.db import Database
from serviceplatform.store.models import audit_records

NAME: Final = "call"
_OUTCOMES: Final = frozenset({"ok", "fault"})


def call_row(row: Any) -> MessageRow:
    return MessageRow(
        source=NAME,
        key=str(row.id),
        at=row.at,
        service=row.service,
        operation=row.operation,
        outcome=row.outcome,
        state=row.outcome,
        authority_cvr=row.authority_cvr,
        error_code=row.error_code,
        message_id=row.message_id,
        subject=row.subject,
        latency_ms=row.latency_ms,
        detail=row.detail,
    )


def filtered(query: MessageQuery) -> Select[Any]:
    """The audit records matching ``query`` (the time range, every exact filter, the cursor)."""
    c = audit_records.c
    statement = select(audit_records)
    exact = (
        (c.authority_cvr, query.authority_cvr),
        (c.service, query.service),
        (c.operation, query.operation),
        (c.error_code, query.error_code),
        (c.message_id, query.message_id),
        (c.subject, query.subject),
    )
    for column, value in exact:
        if value is not None:
            statement = statement.where(column == value)
    if query.outcome is not None:
        statement = statement.where(
            c.outcome == query.outcome if query.outcome in _OUTCOMES else nothing()
        )
    if query.conversation_id is not None:
        statement = statement.where(nothing())
    if query.since is not None:
        statement = statement.where(c.at >= query.since)
    if query.until is not None:
        statement = statement.where(c.at < query.until)
    cursor = query.after
    own = cursor is not None and cursor.source == NAME
    after = after_cursor(NAME, c.at, c.id, cursor, int(cursor.key) if own and cursor else None)
    if after is not None:
        statement = statement.where(after)
    return statement


class CallSource:
    """Calls as message log rows."""

    name = NAME

    def __init__(self, db: Database) -> None:
        self._db = db

    def find(self, query: MessageQuery, limit: int) -> Sequence[MessageRow]:
        after = query.after
        if after is not None and after.source == NAME and row_id(after.key) is None:
            return []
        statement = (
            filtered(query)
            .order_by(audit_records.c.at.desc(), audit_records.c.id.desc())
            .limit(limit)
        )
        with self._db.transaction() as connection:
            return [call_row(row) for row in connection.execute(statement)]

    def detail(self, key: str) -> MessageDetail | None:
        number = row_id(key)
        if number is None:
            return None
        with self._db.transaction() as connection:
            row = connection.execute(
                select(audit_records).where(audit_records.c.id == number)
            ).first()
            if row is None:
                return None
        found = call_row(row)
        outward = [
            {
                "what": "upstream HTTP status",
                "state": str(row.upstream_status) if row.upstream_status is not None else "-",
            },
        ]
        return MessageDetail(
            found,
            [
                Section("Audit record", [_record_json(row)]),
                Section("Outward status", outward),
            ],
        )

    def related(self, row: MessageRow) -> list[Section]:
        return []

    def resend(self, key: str, *, actor: str) -> ResendResult:
        # A call was made by a case system; only the case system can make it again.
        raise ResendRefused("a call is made again by the case system that made it")


def _record_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "message_id": row.message_id,
        "authority_cvr": row.authority_cvr,
        "consumer_system": row.consumer_system,
        "service": row.service,
        "operation": row.operation,
        "subject": row.subject,
        "sysid": row.sysid,
        "upstream_status": row.upstream_status,
        "outcome": row.outcome,
        "error_code": row.error_code,
        "latency_ms": round(row.latency_ms, 1),
        "detail": row.detail,
    }

"""The nightly deliveries (the outbox) in the platform's message log (source ``outbox``).

One outbox row is one message log row, service ``sf2250``, operation ``delivery``:
``delivered`` is ok, a pending row that failed at least once is a fault, a pending row not
tried yet is pending. The body (a Hændelsesbesked about a citizen) is never shown. An operator
can hand an undelivered row to the distributor again from the detail view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import and_, select

from integrations.sf2250.tables import sendings
from serviceplatform.errors import (
    DistributorRejected,
    DistributorUnavailable,
    MessageNotFound,
    ResendRefused,
)
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
from serviceplatform.store.models import outbox, outbox_state
from serviceplatform.store.outbox import OUTBOX_COLUMNS, OUTBOX_WITH_STATE, PENDING, Outbox

if TYPE_CHECKING:
    from serviceplatform.platform import Platform

NAME: Final = "outbox"
SERVICE: Final = "sf2250"
OPERATION: Final = "delivery"


def _outcome(state: str, attempts: int) -> str:
    if state == "delivered":
        return "ok"
    return "fault" if attempts > 0 else "pending"


def _row(row: Any) -> MessageRow:
    return MessageRow(
        source=NAME,
        key=str(row.id),
        at=row.created_at,
        service=SERVICE,
        operation=OPERATION,
        outcome=_outcome(row.state, row.attempts),
        state=row.state,
        authority_cvr=row.authority_cvr,
        message_id=row.message_id,
        detail=row.last_error,
    )


class OutboxSource:
    name = NAME

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._db = platform.db

    def find(self, query: MessageQuery, limit: int) -> Sequence[MessageRow]:
        if query.service not in (None, SERVICE) or query.operation not in (None, OPERATION):
            return []
        if query.subject or query.error_code or query.conversation_id:
            return []  # no such columns: the subject is inside the body, never searched
        c, state = outbox.c, outbox_state.c
        statement = select(*OUTBOX_COLUMNS).select_from(OUTBOX_WITH_STATE)
        if query.authority_cvr is not None:
            statement = statement.where(c.authority_cvr == query.authority_cvr)
        if query.message_id is not None:
            statement = statement.where(c.message_id == query.message_id)
        outcomes = {
            "ok": state.state == "delivered",
            "fault": and_(PENDING, state.attempts > 0),
            "pending": and_(PENDING, state.attempts == 0),
        }
        if query.outcome is not None:
            statement = statement.where(outcomes.get(query.outcome, nothing()))
        if query.since is not None:
            statement = statement.where(c.created_at >= query.since)
        if query.until is not None:
            statement = statement.where(c.created_at < query.until)
        cursor = query.after
        own = row_id(cursor.key) if cursor is not None and cursor.source == NAME else None
        after = after_cursor(NAME, c.created_at, c.id, cursor, own or 0)
        if after is not None:
            statement = statement.where(after)
        statement = statement.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        with self._db.transaction() as connection:
            return [_row(row) for row in connection.execute(statement)]

    def _get(self, key: str) -> Any:
        number = row_id(key)
        if number is None:
            return None
        with self._db.transaction() as connection:
            return connection.execute(
                select(*OUTBOX_COLUMNS).select_from(OUTBOX_WITH_STATE).where(outbox.c.id == number)
            ).first()

    def detail(self, key: str) -> MessageDetail | None:
        row = self._get(key)
        if row is None:
            return None
        status = {
            "message_id": row.message_id,
            "topic": row.topic,
            "state": row.state,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": row.created_at.isoformat(),
            "delivered_at": _iso(row.delivered_at),
        }
        return MessageDetail(
            _row(row), [Section("Outward status", [status])], resendable=row.state == "pending"
        )

    def related(self, row: MessageRow) -> list[Section]:
        """For a call's audit record: the sending ledger's rows of the same MessageID (SF1600)."""
        if row.source == NAME or not row.message_id:
            return []
        c = sendings.c
        with self._db.transaction() as connection:
            found = connection.execute(select(sendings).where(c.message_id == row.message_id)).all()
        rows = [
            {
                "what": f"sending {s.sending_key} ({s.service})",
                "state": s.state,
                "attempts": s.attempts,
                "error_code": s.error_code,
                "updated_at": s.updated_at.isoformat(),
            }
            for s in found
        ]
        return [Section("Sending", rows)] if rows else []

    def resend(self, key: str, *, actor: str) -> ResendResult:
        from serviceplatform.distribution.base import OutgoingMessage
        from serviceplatform.distribution.factory import distributor_from_settings

        row = self._get(key)
        if row is None:
            raise MessageNotFound(f"outbox:{key}")
        if row.state != "pending":
            raise ResendRefused(f"outbox row {key} was delivered at {_iso(row.delivered_at)}")
        message = OutgoingMessage(
            besked_id=row.message_id, authority_cvr=row.authority_cvr, body=row.body.encode()
        )
        # The row is claimed as a relay claims it, so a relay running meanwhile (a night's
        # delivery, `deliver`) never hands the same row over a second time.
        with (
            distributor_from_settings(self._platform.settings) as distributor,
            Outbox(self._db).claim(limit=1, topic=row.topic, after=row.id - 1) as claim,
        ):
            if [claimed.id for claimed in claim.rows] != [row.id]:
                raise ResendRefused(f"outbox row {key} is being delivered or was just delivered")
            try:
                distributor.deliver(message)
            except (DistributorUnavailable, DistributorRejected) as error:
                claim.mark_failed(row.id, error.error_text)
                return ResendResult(False, f"{error.code} {error.error_text}")
            claim.mark_delivered([row.id], self._platform.clock())
        return ResendResult(True, f"delivered to the distributor (asked by {actor})")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def message_source(platform: Platform) -> OutboxSource:
    """The ``Integration.message_sources`` entry."""
    return OutboxSource(platform)

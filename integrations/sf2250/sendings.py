"""The sending ledger: at least once, and never the same sending twice.

A caller that identifies its sendings (SF1600's ``AfsendelseIdentifikator``) may repeat a call
whose answer it never saw. Before the platform calls out, :meth:`SendingLedger.claim` records
the sending under (service, authority, key) with a hash of what is to be sent, in one write
transaction, and tells the handler what to do:

* a new key, or a key whose earlier attempt failed: send (``Claim.send`` is True);
* a key whose sending succeeded: do not send, answer the stored result;
* a key being sent right now by another call: :class:`SendingInProgress` (retry later);
  an attempt older than ``stale_after`` is taken to have died with its process and is taken
  over, so a crash never blocks a key forever;
* a key used before for other content: :class:`SendingIdentifierReused`.

After the outward call the handler marks the row ``sent`` (with the result to repeat) or
``failed``. Two callers racing with one key cannot both send: the insert is
``ON CONFLICT DO NOTHING`` and the row is then read ``FOR UPDATE`` (PostgreSQL waits for the
winner's commit; SQLite runs write transactions one at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from integrations.sf2250.errors import SendingIdentifierReused, SendingInProgress
from integrations.sf2250.tables import sendings
from serviceplatform.store.db import Database
from serviceplatform.store.models import ERROR_CODE_LEN, MESSAGE_ID_LEN

#: How long an unfinished attempt blocks its key before another call may take it over.
DEFAULT_STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Claim:
    #: True: call out now. False: the sending was done before; answer ``result``.
    send: bool
    #: The result stored when the sending succeeded (only when ``send`` is False).
    result: str | None
    #: Which attempt this is (1 for a new key).
    attempt: int
    #: The identifier this sending carries outward, the same on every attempt: the one the
    #: first claim stored (SF1601's MeMo ``messageUUID``); None when none was given.
    outward_id: str | None = None


@dataclass(frozen=True)
class SendingState:
    service: str
    authority_cvr: str
    sending_key: str
    state: str
    attempts: int
    result: str | None
    error_code: str | None
    updated_at: datetime
    outward_id: str | None = None


class SendingLedger:
    def __init__(self, db: Database, *, stale_after: timedelta = DEFAULT_STALE_AFTER) -> None:
        self._db = db
        self._stale_after = stale_after
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    def claim(
        self,
        *,
        service: str,
        authority_cvr: str,
        key: str,
        request_hash: str,
        message_id: str | None,
        now: datetime,
        outward_id: str | None = None,
    ) -> Claim:
        """Record the intent to send; raises the two errors of the module docstring.

        ``outward_id`` is stored with a new key (or one that has none yet) and answered
        in ``Claim.outward_id`` on every later attempt, so a retry after a lost answer
        reuses it."""
        message_id = message_id[:MESSAGE_ID_LEN] if message_id else None
        where = _key(service, authority_cvr, key)
        with self._db.transaction(write_first=True) as connection:
            inserted = connection.execute(
                self._insert(sendings)
                .values(
                    service=service,
                    authority_cvr=authority_cvr,
                    sending_key=key,
                    request_hash=request_hash,
                    state="sending",
                    attempts=1,
                    message_id=message_id,
                    outward_id=outward_id,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(
                    index_elements=[
                        sendings.c.service,
                        sendings.c.authority_cvr,
                        sendings.c.sending_key,
                    ]
                )
                .returning(sendings.c.id)
            ).first()
            if inserted is not None:
                return Claim(send=True, result=None, attempt=1, outward_id=outward_id)
            row = connection.execute(select(sendings).where(*where).with_for_update()).one()
            if row.request_hash != request_hash:
                raise SendingIdentifierReused(f"AfsendelseIdentifikator {key}")
            if row.state == "sent":
                return Claim(
                    send=False, result=row.result, attempt=row.attempts, outward_id=row.outward_id
                )
            if row.state == "sending" and row.updated_at > now - self._stale_after:
                raise SendingInProgress(f"AfsendelseIdentifikator {key}")
            attempt = row.attempts + 1
            kept = row.outward_id or outward_id
            connection.execute(
                update(sendings)
                .where(*where)
                .values(
                    state="sending",
                    attempts=attempt,
                    error_code=None,
                    message_id=message_id,
                    outward_id=kept,
                    updated_at=now,
                )
            )
            return Claim(send=True, result=None, attempt=attempt, outward_id=kept)

    def succeeded(
        self, *, service: str, authority_cvr: str, key: str, result: str, now: datetime
    ) -> None:
        self._finish(service, authority_cvr, key, now, state="sent", result=result)

    def failed(
        self, *, service: str, authority_cvr: str, key: str, error_code: str, now: datetime
    ) -> None:
        self._finish(
            service, authority_cvr, key, now, state="failed", error_code=error_code[:ERROR_CODE_LEN]
        )

    def get(self, *, service: str, authority_cvr: str, key: str) -> SendingState | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                select(sendings).where(*_key(service, authority_cvr, key))
            ).first()
        if row is None:
            return None
        return SendingState(
            service=row.service,
            authority_cvr=row.authority_cvr,
            sending_key=row.sending_key,
            state=row.state,
            attempts=row.attempts,
            result=row.result,
            error_code=row.error_code,
            updated_at=row.updated_at,
            outward_id=row.outward_id,
        )

    def _finish(
        self, service: str, authority_cvr: str, key: str, now: datetime, **values: Any
    ) -> None:
        with self._db.transaction(write_first=True) as connection:
            connection.execute(
                update(sendings)
                .where(*_key(service, authority_cvr, key))
                .values(updated_at=now, **values)
            )


def _key(service: str, authority_cvr: str, key: str) -> tuple[Any, ...]:
    return (
        sendings.c.service == service,
        sendings.c.authority_cvr == authority_cvr,
        sendings.c.sending_key == key,
    )

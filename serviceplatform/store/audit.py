"""The audit trail: one row per SOAP call, success or not.

The audit table is the platform's record of who called what on whose behalf, so it keeps the
subject (CPR or CVR number) in full; every surface that *shows* records (CLI, admin API,
logs) masks it. ``detail`` is free text and is masked on the way in, because it is written
from error messages that nobody has checked for personal data.

``write`` is on the hot path of every call: one INSERT, its own transaction, committed before
the caller gets its answer, run as a prepared statement on the DBAPI connection
(``Database.run``). Values longer than their column are cut, so an oversized MessageID from a
caller can never make the audit write itself fail on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import bindparam, insert, select

from serviceplatform.errors import ServicePlatformError
from serviceplatform.logmask import mask_cpr_numbers
from serviceplatform.store.db import Database
from serviceplatform.store.models import audit_records

Outcome = Literal["ok", "fault"]

#: Longest ``detail`` kept; the audit trail is not a log of payloads.
DETAIL_MAX = 500

_COLUMNS = (
    "at",
    "message_id",
    "authority_cvr",
    "consumer_system",
    "service",
    "operation",
    "subject",
    "sysid",
    "upstream_status",
    "outcome",
    "error_code",
    "latency_ms",
    "detail",
)


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One audited call. ``at`` must be tz-aware; it is stored as UTC."""

    at: datetime
    service: str
    outcome: Outcome
    latency_ms: float
    message_id: str | None = None
    authority_cvr: str | None = None
    consumer_system: str | None = None
    operation: str | None = None
    #: The CPR or CVR number the call was about, in full (mask it wherever it is shown).
    subject: str | None = None
    sysid: str | None = None
    upstream_status: int | None = None
    #: The platform fault code (``SP-303``) when ``outcome`` is ``"fault"``.
    error_code: str | None = None
    detail: str | None = None


def admin_entry(
    *,
    operation: str,
    detail: str,
    error: ServicePlatformError | None,
    authority_cvr: str | None,
    latency_ms: float,
) -> AuditEntry:
    """The record of an administrator's change (admin API or command line), refused or not.

    Service ``admin``; a refusal is a ``fault`` with its code and the error in the detail.
    """
    if error is not None:
        detail += f" refused: {error.error_text}"
    return AuditEntry(
        at=datetime.now(UTC),
        service="admin",
        operation=operation,
        outcome="fault" if error is not None else "ok",
        error_code=error.code if error is not None else None,
        authority_cvr=authority_cvr,
        latency_ms=latency_ms,
        detail=detail,
    )


#: The length of each string column with one (read once: ``write`` is on every call's path).
_LENGTHS: dict[str, int] = {
    name: length
    for name in _COLUMNS
    if isinstance(length := getattr(audit_records.c[name].type, "length", None), int)
}


class AuditLog:
    """Writes and reads audit records."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._columns = [audit_records.c[name] for name in _COLUMNS]
        self._insert = db.prepare(
            insert(audit_records).values(
                {column: bindparam(column.name, type_=column.type) for column in self._columns}
            )
        )

    def write(self, entry: AuditEntry) -> None:
        """Store ``entry``; raises :class:`~serviceplatform.errors.StorageError` on failure."""
        # An entry's fields are the columns (extra keys would be ignored by the statement);
        # copying its __dict__ takes 0.1 us, a getattr per column took 1 us.
        values: dict[str, Any] = vars(entry).copy()
        # Only the columns with a length are looked at: a function call per column was most
        # of this method's own time under cProfile.
        for name, length in _LENGTHS.items():
            value = values[name]
            if isinstance(value, str) and len(value) > length:
                values[name] = value[:length]
        if entry.detail is not None:
            values["detail"] = mask_cpr_numbers(entry.detail)[:DETAIL_MAX]
        self._db.run(self._insert, values, write=True)

    def tail(self, limit: int = 20) -> list[AuditEntry]:
        """The latest ``limit`` records, newest first."""
        statement = (
            select(*self._columns)
            .order_by(audit_records.c.at.desc(), audit_records.c.id.desc())
            .limit(max(0, limit))
        )
        with self._db.transaction() as connection:
            rows = connection.execute(statement).mappings().all()
        return [AuditEntry(**dict(row)) for row in rows]

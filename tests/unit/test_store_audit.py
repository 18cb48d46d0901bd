"""The audit log: one row per call, read back newest first, UTC, CPRs only where allowed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from serviceplatform.errors import StorageError
from serviceplatform.store.audit import DETAIL_MAX, AuditEntry, AuditLog
from serviceplatform.store.db import Database
from serviceplatform.store.models import audit_records

AT = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def _entry(**changes: object) -> AuditEntry:
    entry = AuditEntry(
        at=AT,
        message_id="urn:uuid:1",
        authority_cvr="29189846",
        consumer_system="0d7fcabb-3505-4065-a006-d48b1cf50cc2",
        service="sf2250",
        operation="OpdaterBorgerNemSMS",
        subject="0101901234",
        sysid="2250001",
        upstream_status=200,
        outcome="ok",
        latency_ms=12.5,
    )
    return replace(entry, **changes)  # type: ignore[arg-type]


def test_write_then_tail_round_trips_every_field(database: Database) -> None:
    log = AuditLog(database)
    entry = _entry(error_code=None, detail="fine")
    log.write(entry)
    assert log.tail() == [entry]


def test_tail_is_newest_first_and_limited(database: Database) -> None:
    log = AuditLog(database)
    for i in range(5):
        log.write(_entry(at=AT + timedelta(seconds=i), message_id=f"m{i}"))
    assert [e.message_id for e in log.tail(3)] == ["m4", "m3", "m2"]
    assert [e.message_id for e in log.tail()] == ["m4", "m3", "m2", "m1", "m0"]
    assert log.tail(0) == []


def test_same_instant_keeps_insertion_order(database: Database) -> None:
    log = AuditLog(database)
    for i in range(3):
        log.write(_entry(message_id=f"m{i}"))
    assert [e.message_id for e in log.tail()] == ["m2", "m1", "m0"]


def test_times_are_stored_as_utc(database: Database) -> None:
    log = AuditLog(database)
    local = AT.astimezone(timezone(timedelta(hours=2)))
    log.write(_entry(at=local))
    (read,) = log.tail()
    assert read.at == AT
    assert read.at.utcoffset() == timedelta(0)


def test_a_fault_with_minimal_fields(database: Database) -> None:
    log = AuditLog(database)
    entry = AuditEntry(
        at=AT, service="sf2250", outcome="fault", latency_ms=0.4, error_code="SP-101"
    )
    log.write(entry)
    assert log.tail() == [entry]


def test_subject_is_stored_in_full_but_detail_is_masked_and_cut(database: Database) -> None:
    log = AuditLog(database)
    log.write(_entry(detail="upstream said: 0101901234 unknown " + "x" * 2000))
    with database.transaction() as connection:
        row = connection.execute(select(audit_records.c.subject, audit_records.c.detail)).one()
    assert row.subject == "0101901234"
    assert row.detail.startswith("upstream said: 010190**** unknown")
    assert len(row.detail) == DETAIL_MAX


def test_overlong_values_are_cut_to_their_columns(database: Database) -> None:
    log = AuditLog(database)
    log.write(_entry(message_id="m" * 1000, operation="o" * 500))
    (read,) = log.tail()
    assert read.message_id == "m" * 255
    assert read.operation == "o" * 128


def test_naive_times_and_bad_outcomes_are_storage_errors(database: Database) -> None:
    log = AuditLog(database)
    with pytest.raises(StorageError):
        log.write(_entry(at=datetime(2025, 1, 1, 12, 0)))
    with pytest.raises(StorageError):
        log.write(_entry(outcome="maybe"))
    assert log.tail() == []

"""The message log over calls, OOTS requests and the outbox: each filter, paging, details,
resend of an outbox row. Real SQL on SQLite and PostgreSQL (the ``database`` fixture).

The sources are the registered ones (``MessageLog.for_platform``): the core's calls and the
sources the integrations declare, so a source that is not wired in fails these tests.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from integrations.oots.tables import oots_messages, oots_requests
from serviceplatform.config import Settings
from serviceplatform.errors import MessageNotFound, ResendRefused
from serviceplatform.messagelog.log import MessageLog
from serviceplatform.messagelog.model import Cursor, MessageQuery
from serviceplatform.messagelog.usage import percentile, usage, usage_json
from serviceplatform.platform import Platform
from serviceplatform.store.audit import AuditEntry, AuditLog
from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox_state
from serviceplatform.store.outbox import Outbox
from tests.outbox_rows import add_outbox_row

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
A, B = "29189846", "29189854"
CPR = "0101901234"
AS4_ID = "a1b2@dk.oots.eu"
CONVERSATION = "7f0c2d3e-0000-4000-8000-000000000001"
EVIDENCE = b"%PDF-1.4 the degree of Aino Virtanen %%EOF"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def platform(database: Database, tmp_path: Path) -> Platform:
    return Platform(Settings(base_dir=str(tmp_path)), database=database, clock=lambda: at(100))


def _call(database: Database, minute: int, **values: object) -> None:
    entry: dict[str, object] = {
        "at": at(minute),
        "service": "sf2250",
        "outcome": "ok",
        "latency_ms": 12.5,
        "authority_cvr": A,
    }
    AuditLog(database).write(AuditEntry(**(entry | values)))  # type: ignore[arg-type]


def _oots(database: Database, minute: int, request_id: str, state: str, **values: object) -> None:
    row: dict[str, object] = {
        "request_id": request_id,
        "authority_cvr": A,
        "consumer_system": None,
        "conversation_id": str(uuid.uuid4()),
        "first_message_id": f"{request_id}@dk",
        "message_id": f"{request_id}@dk",
        "provider_id": "FI-UNIV",
        "provider_scheme": "urn:cef.eu:names:identifier:EAS:0212",
        "to_party": "AP_FI_01",
        "edm_version": "2.0",
        "state": state,
        "created_at": at(minute),
        "updated_at": at(minute),
    }
    with database.transaction(write_first=True) as connection:
        connection.execute(insert(oots_requests).values(row | values))


def _outbox(database: Database, minute: int, state: str, attempts: int, cvr: str = A) -> None:
    with database.transaction(write_first=True) as connection:
        add_outbox_row(
            connection,
            authority_cvr=cvr,
            body="<Haendelsesbesked>0101901234</Haendelsesbesked>",
            created_at=at(minute),
            state=state,
            attempts=attempts,
            last_error="SP-430 unavailable" if attempts and state == "pending" else None,
            delivered_at=at(minute + 1) if state == "delivered" else None,
        )


@pytest.fixture
def log(database: Database, platform: Platform) -> MessageLog:
    # call:1 .. call:4, two OOTS requests, two outbox rows: one of each kind per filter.
    _call(database, 0, operation="opdater", subject=CPR, message_id="urn:uuid:m1")
    _call(database, 1, authority_cvr=B, service="sf1600", operation="afsendBrev",
          outcome="fault", error_code="SP-405", subject="12345674")  # fmt: skip
    _call(database, 2, service="oots", operation="Bevisanmodning", message_id=AS4_ID)
    _call(database, 3, service="admin", operation="approve", authority_cvr=None)
    _oots(database, 4, "req-failed", "failed", error_code="SP-405",
          conversation_id=CONVERSATION, message_id=AS4_ID, first_message_id=AS4_ID)  # fmt: skip
    _oots(database, 5, "req-pending", "submitted", authority_cvr=B)
    _outbox(database, 6, "delivered", 1)
    _outbox(database, 7, "pending", 2, cvr=B)
    return MessageLog.for_platform(platform)


def refs(log: MessageLog, **filters: object) -> list[str]:
    return [row.ref for row in log.page(MessageQuery(**filters)).rows]  # type: ignore[arg-type]


def test_every_source_is_listed_newest_first(log: MessageLog) -> None:
    assert refs(log) == [
        "outbox:2",
        "outbox:1",
        "oots:req-pending",
        "oots:req-failed",
        "call:4",
        "call:3",
        "call:2",
        "call:1",
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"since": at(2), "until": at(5)}, ["oots:req-failed", "call:4", "call:3"]),
        ({"authority_cvr": B}, ["outbox:2", "oots:req-pending", "call:2"]),
        ({"service": "oots"}, ["oots:req-pending", "oots:req-failed", "call:3"]),
        ({"operation": "afsendBrev"}, ["call:2"]),
        ({"operation": "delivery"}, ["outbox:2", "outbox:1"]),
        ({"outcome": "fault"}, ["outbox:2", "oots:req-failed", "call:2"]),
        ({"outcome": "pending"}, ["oots:req-pending"]),
        ({"outcome": "ok"}, ["outbox:1", "call:4", "call:3", "call:1"]),
        ({"error_code": "SP-405"}, ["oots:req-failed", "call:2"]),
        ({"message_id": AS4_ID}, ["oots:req-failed", "call:3"]),
        ({"message_id": "urn:uuid:m1"}, ["call:1"]),
        ({"conversation_id": CONVERSATION}, ["oots:req-failed"]),
        ({"subject": CPR}, ["call:1"]),
        ({"subject": "12345674"}, ["call:2"]),
        ({"source": "outbox"}, ["outbox:2", "outbox:1"]),
        ({"authority_cvr": A, "outcome": "fault"}, ["oots:req-failed"]),
    ],
)
def test_each_filter(log: MessageLog, filters: dict[str, object], expected: list[str]) -> None:
    assert refs(log, **filters) == expected


def test_pages_follow_each_other_without_gaps_or_repeats(
    database: Database, platform: Platform
) -> None:
    # Many rows at the same instant across sources: the order must still be total.
    for n in range(23):
        _call(database, n % 3)
    for n in range(6):
        _oots(database, 1, f"r-{n}", "answered")
        _outbox(database, 2, "delivered", 1)
    log = MessageLog.for_platform(platform)
    everything = [row.ref for row in log.page(MessageQuery(limit=200)).rows]
    assert len(everything) == len(set(everything)) == 35
    seen: list[str] = []
    cursor: Cursor | None = None
    pages = 0
    while True:
        page = log.page(MessageQuery(limit=4, after=cursor))
        seen += [row.ref for row in page.rows]
        pages += 1
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())  # as it travels through a URL
    assert seen == everything and pages == 9
    # A filter pages the same way.
    faults = [r.ref for r in log.page(MessageQuery(service="sf2250", limit=5)).rows]
    second = log.page(MessageQuery(service="sf2250", limit=5, after=log.page(
        MessageQuery(service="sf2250", limit=5)).next))  # fmt: skip
    assert not set(faults) & {r.ref for r in second.rows} and len(second.rows) == 5


def test_a_bad_cursor_is_refused() -> None:
    with pytest.raises(ValueError, match="cursor"):
        Cursor.decode("not-a-cursor")


def test_the_oots_detail_shows_the_conversation_and_never_the_evidence(
    log: MessageLog, database: Database
) -> None:
    with database.transaction(write_first=True) as connection:
        for n, (direction, state) in enumerate((("out", "submitted"), ("in", "received"))):
            connection.execute(
                insert(oots_messages).values(
                    message_id=AS4_ID if direction == "out" else "answer@fi",
                    conversation_id=CONVERSATION,
                    ref_to_message_id=None if direction == "out" else AS4_ID,
                    direction=direction,
                    action="ExecuteQueryRequest",
                    from_party="AP_DK_01",
                    to_party="AP_FI_01",
                    state=state,
                    payload=EVIDENCE,
                    attachments='{"cid:x": {"content": "JVBERi0xLjQ="}}',
                    header="{}",
                    received_at=at(4 + n),
                )
            )
    detail = log.detail("oots:req-failed")
    assert detail.resendable and detail.row.outcome == "fault"
    sections = {section.title: section.rows for section in detail.sections}
    assert [m["message_id"] for m in sections["Conversation messages"]] == [AS4_ID, "answer@fi"]
    assert [m["state"] for m in sections["Conversation messages"]] == ["submitted", "received"]
    assert [a["ref"] for a in sections["Audit records"]] == ["call:3"]
    text = repr(detail)
    assert "PDF" not in text and "JVBERi0" not in text and "payload" not in text
    # The OOTS call's audit record names its request.
    call = log.detail("call:3")
    related = {s.title: s.rows for s in call.sections}
    assert related["OOTS request"][0]["ref"] == "oots:req-failed"
    assert not call.resendable


def test_unknown_refs_are_not_found(log: MessageLog) -> None:
    for ref in ("call:999", "oots:nosuch", "outbox:x", "nosuch:1", "call"):
        with pytest.raises(MessageNotFound):
            log.detail(ref)


def test_resending_an_unknown_ref_is_not_found_not_refused(log: MessageLog) -> None:
    # An id that names nothing is SP-611 (404) as for its detail; SP-612 (409) is for a row
    # that exists and cannot be resent (the outbox and OOTS sources said "no outbox row").
    for ref in ("call:999", "oots:nosuch", "outbox:999", "outbox:x", "nosuch:1"):
        with pytest.raises(MessageNotFound) as raised:
            log.resend(ref, actor="ops")
        assert raised.value.code == "SP-611" and raised.value.http_status == 404


def test_an_undelivered_outbox_row_is_resent_and_a_delivered_one_is_not(
    log: MessageLog, database: Database, tmp_path: Path
) -> None:
    detail = log.detail("outbox:2")
    assert detail.resendable and detail.row.outcome == "fault"
    assert "Haendelsesbesked" not in repr(detail) and CPR not in repr(detail)
    result = log.resend("outbox:2", actor="ops")
    assert result.sent
    [written] = (tmp_path / "distributor").iterdir()
    assert CPR in written.read_text()  # the body went out unchanged
    with database.transaction() as connection:
        state = connection.execute(
            select(outbox_state.c.state).where(outbox_state.c.id == 2)
        ).scalar()
    assert state == "delivered"
    with pytest.raises(ResendRefused):
        log.resend("outbox:2", actor="ops")
    with pytest.raises(ResendRefused):
        log.resend("call:1", actor="ops")


def test_usage_counts_calls_faults_and_p95_per_day_authority_and_service(
    database: Database,
) -> None:
    # Twenty calls of A on one day, latencies 1..20 ms, two of them faults; one of B; an
    # administrator's change, a call before the period, and one of the next day.
    for n in range(1, 21):
        _call(database, n, latency_ms=float(n), outcome="fault" if n % 10 == 0 else "ok")
    _call(database, 30, authority_cvr=B, latency_ms=7.0)
    _call(database, 31, service="admin", operation="approve")
    _call(database, -60 * 24 * 40)  # 40 days before: outside 30 days
    _call(database, 60 * 24, latency_ms=3.0)
    now = at(60 * 24 + 5)
    rows = usage(database, now=now, days=30)
    assert [(r.day, r.authority_cvr, r.service, r.calls, r.faults) for r in rows] == [
        (at(60 * 24).date(), A, "sf2250", 1, 0),
        (T0.date(), B, "sf2250", 1, 0),
        (T0.date(), A, "sf2250", 20, 2),
    ]
    assert rows[2].error_rate == 0.1
    # percentile_cont: 19 * 0.95 = 18.05 -> 19 + 0.05 * (20 - 19)
    assert rows[2].p95_ms == pytest.approx(19.05)
    assert [r.authority_cvr for r in usage(database, now=now, authority_cvr=B)] == [B]
    answer = usage_json(rows, first=(now - timedelta(days=29)).date(), last=now.date())
    assert len(answer["days"]) == 30
    assert answer["days"][-2:] == [
        {"day": T0.date().isoformat(), "calls": 21, "faults": 2},
        {"day": now.date().isoformat(), "calls": 1, "faults": 0},
    ]


def test_percentile_matches_postgres_percentile_cont() -> None:
    assert percentile([], 0.95) == 0.0
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_a_row_a_relay_is_delivering_is_not_resent_beside_it(
    log: MessageLog, database: Database, tmp_path: Path
) -> None:
    # A night's relay holds the row: the resend waits for it (SQLite's writer lock) or skips
    # it (PostgreSQL's SKIP LOCKED), and either way finds it no longer its to deliver.
    outcome: list[object] = []

    def resend() -> None:
        try:
            outcome.append(log.resend("outbox:2", actor="ops"))
        except ResendRefused as refused:
            outcome.append(refused)

    with Outbox(database).claim(limit=10) as claim:
        assert [row.id for row in claim.rows] == [2]
        worker = threading.Thread(target=resend)
        worker.start()
        worker.join(timeout=0.5 if database.dialect == "postgresql" else 0.2)
        claim.mark_delivered([2], at(101))
    worker.join()
    [refused] = outcome
    assert isinstance(refused, ResendRefused), refused
    assert not (tmp_path / "distributor").exists() or not any((tmp_path / "distributor").iterdir())

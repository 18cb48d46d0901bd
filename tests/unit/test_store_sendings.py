"""The sending ledger: new, done, failed, in flight, stale, reused ids, and racing claims."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from integrations.sf2250.errors import SendingIdentifierReused, SendingInProgress
from integrations.sf2250.sendings import SendingLedger
from integrations.sf2250.tables import sendings
from serviceplatform.errors import StorageError
from serviceplatform.store.db import Database
from serviceplatform.store.models import ERROR_CODE_LEN, MESSAGE_ID_LEN
from tests.unit.writer_gate_probe import gated_database

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
KEY: dict[str, Any] = {"service": "sf1600", "authority_cvr": "29189846", "key": "sms-1"}


def claim(ledger: SendingLedger, now: datetime = NOW, request_hash: str = "h1", **key: Any) -> Any:
    return ledger.claim(
        **{**KEY, **key}, request_hash=request_hash, message_id="urn:uuid:m", now=now
    )


def test_a_new_key_is_sent_and_a_done_one_answers_its_result(database: Database) -> None:
    ledger = SendingLedger(database)
    first = claim(ledger)
    assert (first.send, first.attempt) == (True, 1)
    ledger.succeeded(**KEY, result='{"resultat": true}', now=NOW)
    again = claim(ledger, NOW + timedelta(minutes=5))
    assert (again.send, again.result) == (False, '{"resultat": true}')
    state = ledger.get(**KEY)
    assert state is not None and (state.state, state.attempts) == ("sent", 1)


def test_a_failed_key_is_sent_again(database: Database) -> None:
    ledger = SendingLedger(database)
    claim(ledger)
    ledger.failed(**KEY, error_code="SP-404", now=NOW)
    state = ledger.get(**KEY)
    assert state is not None and (state.state, state.error_code) == ("failed", "SP-404")
    retry = claim(ledger, NOW + timedelta(seconds=1))
    assert (retry.send, retry.attempt) == (True, 2)
    state = ledger.get(**KEY)
    assert state is not None and (state.state, state.error_code) == ("sending", None)


def test_a_key_in_flight_is_refused_until_it_goes_stale(database: Database) -> None:
    ledger = SendingLedger(database, stale_after=timedelta(seconds=60))
    claim(ledger)
    with pytest.raises(SendingInProgress):
        claim(ledger, NOW + timedelta(seconds=59))
    # The first attempt's process died: after a minute another call takes the key over.
    taken = claim(ledger, NOW + timedelta(seconds=61))
    assert (taken.send, taken.attempt) == (True, 2)


def test_a_reused_key_with_other_content_is_refused(database: Database) -> None:
    ledger = SendingLedger(database)
    claim(ledger)
    ledger.succeeded(**KEY, result="{}", now=NOW)
    with pytest.raises(SendingIdentifierReused):
        claim(ledger, request_hash="h2")


def test_keys_are_per_authority_and_service(database: Database) -> None:
    ledger = SendingLedger(database)
    claim(ledger)
    assert claim(ledger, authority_cvr="29189854").send
    assert claim(ledger, service="other").send
    assert ledger.get(service="sf1600", authority_cvr="29189854", key="sms-1") is not None
    assert ledger.get(service="sf1600", authority_cvr="11111111", key="sms-1") is None


def test_racing_claims_let_exactly_one_send(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    databases[0].upgrade()
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(databases))

    def race(db: Database) -> None:
        start.wait()
        try:
            result = "send" if claim(SendingLedger(db), key="race").send else "done"
        except SendingInProgress:
            result = "in progress"
        except StorageError as exc:  # pragma: no cover - reported in the assertion
            result = f"storage: {exc}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(db,)) for db in databases]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for db in databases:
            db.dispose()
    assert sorted(outcomes) == ["in progress"] * 3 + ["send"]


def _stored(db: Database, key: str = "sms-1") -> Any:
    with db.transaction() as connection:
        return connection.execute(select(sendings).where(sendings.c.sending_key == key)).one()


def test_each_attempt_records_the_calls_message_id_cut_to_its_column(database: Database) -> None:
    # The message log finds a sending by the MessageID of the call that made it.
    ledger = SendingLedger(database)
    ledger.claim(**KEY, request_hash="h1", message_id="urn:uuid:first", now=NOW)
    assert _stored(database).message_id == "urn:uuid:first"
    ledger.failed(**KEY, error_code="SP-404", now=NOW)
    ledger.claim(**KEY, request_hash="h1", message_id="urn:uuid:retry", now=NOW)
    assert _stored(database).message_id == "urn:uuid:retry"
    ledger.claim(**{**KEY, "key": "none"}, request_hash="h1", message_id=None, now=NOW)
    assert _stored(database, "none").message_id is None
    long_id = "urn:uuid:" + "x" * MESSAGE_ID_LEN
    ledger.claim(**{**KEY, "key": "long"}, request_hash="h1", message_id=long_id, now=NOW)
    assert _stored(database, "long").message_id == long_id[:MESSAGE_ID_LEN]


def test_the_first_outward_id_is_kept_on_every_attempt(database: Database) -> None:
    ledger = SendingLedger(database)
    first = ledger.claim(**KEY, request_hash="h1", message_id=None, now=NOW, outward_id="o-1")
    assert first.outward_id == "o-1"
    state = ledger.get(**KEY)
    assert state is not None and state.outward_id == "o-1"
    ledger.failed(**KEY, error_code="SP-404", now=NOW)
    # A retry after a lost answer must carry the same MeMo messageUUID, not its own new one.
    retry = ledger.claim(**KEY, request_hash="h1", message_id=None, now=NOW, outward_id="o-2")
    assert (retry.send, retry.attempt, retry.outward_id) == (True, 2, "o-1")
    state = ledger.get(**KEY)
    assert state is not None and (state.outward_id, state.attempts) == ("o-1", 2)
    ledger.succeeded(**KEY, result="{}", now=NOW)
    done = ledger.claim(**KEY, request_hash="h1", message_id=None, now=NOW, outward_id="o-3")
    assert (done.send, done.attempt, done.outward_id) == (False, 2, "o-1")


def test_a_key_stored_without_an_outward_id_takes_the_retrys(database: Database) -> None:
    ledger = SendingLedger(database)
    assert ledger.claim(**KEY, request_hash="h1", message_id=None, now=NOW).outward_id is None
    ledger.failed(**KEY, error_code="SP-404", now=NOW)
    retry = ledger.claim(**KEY, request_hash="h1", message_id=None, now=NOW, outward_id="o-2")
    assert retry.outward_id == "o-2"
    state = ledger.get(**KEY)
    assert state is not None and state.outward_id == "o-2"


def test_an_attempt_is_stale_at_exactly_stale_after_and_a_takeover_blocks_anew(
    database: Database,
) -> None:
    ledger = SendingLedger(database)  # the default: a minute
    claim(ledger)
    with pytest.raises(SendingInProgress):
        claim(ledger, NOW + timedelta(seconds=59))
    taken = claim(ledger, NOW + timedelta(seconds=60))
    assert (taken.send, taken.attempt) == (True, 2)
    # The takeover is itself an attempt in flight, timed from when it began.
    with pytest.raises(SendingInProgress):
        claim(ledger, NOW + timedelta(seconds=61))
    state = ledger.get(**KEY)
    assert state is not None and (state.state, state.attempts) == ("sending", 2)
    assert state.updated_at == NOW + timedelta(seconds=60)


def test_get_answers_the_whole_stored_sending(database: Database) -> None:
    ledger = SendingLedger(database)
    claim(ledger)
    later = NOW + timedelta(minutes=3)
    ledger.succeeded(**KEY, result='{"resultat": true}', now=later)
    state = ledger.get(**KEY)
    assert state is not None
    assert (state.service, state.authority_cvr, state.sending_key) == (
        "sf1600",
        "29189846",
        "sms-1",
    )
    assert (state.state, state.result, state.error_code) == ("sent", '{"resultat": true}', None)
    assert state.updated_at == later
    claim(ledger, key="sms-3")
    ledger.failed(**{**KEY, "key": "sms-3"}, error_code="SP-" + "9" * 40, now=later)
    failed = ledger.get(**{**KEY, "key": "sms-3"})
    assert failed is not None and failed.error_code == ("SP-" + "9" * 40)[:ERROR_CODE_LEN]


def test_every_ledger_write_queues_at_the_sqlite_writer_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with gated_database(tmp_path, monkeypatch) as (db, gate):
        ledger = SendingLedger(db)
        claim(ledger)
        assert gate.holds == 1
        ledger.failed(**KEY, error_code="SP-404", now=NOW)
        assert gate.holds == 2
        ledger.get(**KEY)  # a read does not queue
        assert gate.holds == 2

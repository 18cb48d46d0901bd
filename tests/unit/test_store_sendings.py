"""The sending ledger: new, done, failed, in flight, stale, reused ids, and racing claims."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.sf2250.errors import SendingIdentifierReused, SendingInProgress
from integrations.sf2250.sendings import SendingLedger
from serviceplatform.errors import StorageError
from serviceplatform.store.db import Database

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

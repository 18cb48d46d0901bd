"""Two outbox relays racing on the same pending rows hand each row over exactly once.

A ``subscriptions run`` relays after its lease is finished, and a ``subscriptions deliver``
(or a second one) may relay at the same moment. Each relay here has a database handle of its
own (as a process has) on the same SQLite file or PostgreSQL schema. The first relay, in the
middle of handing over its first batch, starts the second and lets it go as far as it can:
without the claim's lock the second reads the same pending rows and delivers them too. With
it, on PostgreSQL the second skips the locked rows and takes later ones; on SQLite it waits
for the writer lock, so the first gives it a few seconds and goes on (no duration is
asserted: the second relay merely had every chance to take the rows twice).

The distributors are real: the file drop (counting what each relay wrote) and AMQP to the
simulated Beskedfordeler over RabbitMQ (which records every message it accepted), each through
its own ``deliver_stream``, so on PostgreSQL AMQP holds two claims and batches at once.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serviceplatform.config import AmqpDistributorSettings
from serviceplatform.distribution.amqp import AmqpDistributor
from serviceplatform.distribution.base import (
    BatchOutcome,
    Distributor,
    DistributorBase,
    OutgoingMessage,
)
from serviceplatform.distribution.file_drop import FileDropDistributor
from serviceplatform.relay import OutboxRelay, RelayResult
from serviceplatform.sandbox.beskedfordeler import SimulatedBeskedfordeler
from serviceplatform.sandbox.pki import STS_ISSUER, Pki
from serviceplatform.sandbox.sts_tokens import SandboxStsTokenSource
from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox
from serviceplatform.store.outbox import Outbox
from tests.conftest import AMQP_VHOST
from tests.integration.test_distribution_amqp import AUDIENCE, haendelsesbesked

NOW = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)
AUTHORITY = "29189846"
TOPIC = "beskedfordeler"
ROWS = 12
BATCH = 4
#: How long the first relay lets a blocked second relay try (SQLite: it waits for the lock).
CHANCE_SECONDS = 3.0

pytestmark = pytest.mark.integration


def _pending(database: Database, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with database.transaction(write_first=True) as connection:
        connection.execute(
            outbox.insert(),
            [
                {
                    "message_id": besked_id,
                    "topic": TOPIC,
                    "authority_cvr": AUTHORITY,
                    "body": haendelsesbesked(besked_id, AUTHORITY).decode("utf-8"),
                    "created_at": NOW,
                }
                for besked_id in ids
            ],
        )
    return ids


class Recording(DistributorBase):
    """A real distributor that records the ids it accepted, and can run a hook first."""

    def __init__(self, inner: Distributor) -> None:
        self.inner = inner
        self.accepted: list[str] = []
        self.before_first: Callable[[], None] | None = None
        self.called = threading.Event()

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        self.called.set()
        hook, self.before_first = self.before_first, None
        if hook is not None:
            hook()
        outcome = self.inner.deliver_batch(messages)
        self.accepted += [m.besked_id for i, m in enumerate(messages) if outcome.get(i, 0) is None]
        return outcome

    def deliver_stream(
        self, batches: Iterable[Sequence[OutgoingMessage]], *, overlap: bool = False
    ) -> Generator[BatchOutcome, None, None]:
        # The inner distributor's own stream, so AMQP overlaps its batches on PostgreSQL.
        taken: list[Sequence[OutgoingMessage]] = []

        def hooked() -> Iterator[Sequence[OutgoingMessage]]:
            for batch in batches:  # claimed now
                self.called.set()
                hook, self.before_first = self.before_first, None
                if hook is not None:
                    hook()
                taken.append(batch)
                yield batch

        for outcome in self.inner.deliver_stream(hooked(), overlap=overlap):
            messages = taken.pop(0)
            self.accepted += [
                m.besked_id for i, m in enumerate(messages) if outcome.get(i, 0) is None
            ]
            yield outcome

    def deliver(self, message: OutgoingMessage) -> None:
        self.inner.deliver(message)


def _race(
    database: Database, database_url: str, make: Callable[[], AbstractContextManager[Distributor]]
) -> tuple[list[str], RelayResult, RelayResult]:
    """Run two relays, the second started inside the first's first batch; what each accepted."""
    second_db = Database(database_url)
    results: dict[str, RelayResult] = {}
    try:
        with make() as first_inner, make() as second_inner:
            first, second = Recording(first_inner), Recording(second_inner)
            finished = threading.Event()

            def run_second() -> None:
                try:
                    relay = OutboxRelay(
                        Outbox(second_db), second, clock=lambda: NOW, topic=TOPIC, batch_size=BATCH
                    )
                    results["second"] = relay.run()
                finally:
                    finished.set()

            thread = threading.Thread(target=run_second)

            def start_second() -> None:
                thread.start()
                # Until the second relay hands rows over itself or ends; if it is blocked
                # (SQLite's writer lock), a few seconds' chance.
                for _ in range(int(CHANCE_SECONDS / 0.05)):
                    if second.called.is_set() or finished.is_set():
                        break
                    finished.wait(0.05)

            first.before_first = start_second
            relay = OutboxRelay(
                Outbox(database), first, clock=lambda: NOW, topic=TOPIC, batch_size=BATCH
            )
            results["first"] = relay.run()
            thread.join(120)
            assert not thread.is_alive()
            accepted = first.accepted + second.accepted
    finally:
        second_db.dispose()
    return accepted, results["first"], results["second"]


def _assert_each_row_once(
    database: Database, ids: list[str], accepted: list[str], *results: RelayResult
) -> None:
    twice = [i for i, n in Counter(accepted).items() if n > 1]
    assert twice == [], f"{len(twice)} rows delivered more than once"
    assert sorted(accepted) == sorted(ids)
    assert sum(r.delivered for r in results) == ROWS
    assert not any(r.unavailable or r.rejected for r in results)
    counts = Outbox(database).counts(TOPIC)
    assert (counts.pending, counts.delivered) == (0, ROWS)


def test_two_relays_racing_drop_each_file_once(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    ids = _pending(database, ROWS)

    def make() -> AbstractContextManager[Distributor]:
        return FileDropDistributor(tmp_path / "drop")

    accepted, first, second = _race(database, database_url, make)
    _assert_each_row_once(database, ids, accepted, first, second)
    assert sorted(p.stem for p in (tmp_path / "drop").glob("*.xml")) == sorted(ids)


@pytest.mark.amqp
def test_two_relays_racing_publish_each_message_once(
    database: Database, database_url: str, rabbitmq_url: str, pki: Pki, tmp_path: Path
) -> None:
    exchange = f"SP_TEST_{uuid.uuid4().hex[:12]}"
    ids = _pending(database, ROWS)
    settings = AmqpDistributorSettings(
        url=rabbitmq_url,
        virtual_host=AMQP_VHOST,
        exchange=exchange,
        reply_timeout_seconds=10.0,
        connect_timeout_seconds=5.0,
    )
    tokens = SandboxStsTokenSource.from_files(pki.sts_key, pki.sts_cert, STS_ISSUER, AUDIENCE)

    def make() -> AbstractContextManager[Distributor]:
        return AmqpDistributor(settings, tokens, base_dir=tmp_path)

    with SimulatedBeskedfordeler(
        rabbitmq_url, exchange=exchange, trusted_sts_cert=pki.sts_cert, delete_on_stop=True
    ) as beskedfordeler:
        accepted, first, second = _race(database, database_url, make)
        received = [m.besked_id for m in beskedfordeler.received]
    _assert_each_row_once(database, ids, accepted, first, second)
    # What the Beskedfordeler itself saw, not only what the relays counted.
    assert sorted(received) == sorted(ids)

"""The relay's stream of batches: AMQP's window stays full across batches, at least once.

On PostgreSQL (``Outbox.claims_overlap``) the relay claims the next batch while the previous
one's answers are still coming, so the AMQP window does not empty between batches; on SQLite a
batch is claimed only after the previous one committed. Either way a row is marked delivered
only with its confirm and StatusKode 20 and an error while two claims are open rolls the open
ones back. (A connection lost with two batches open: test_distribution_amqp_pipeline's
``test_a_connection_lost_mid_window_leaves_the_unanswered_pending[five-batches]``.)
Real RabbitMQ, the simulated Beskedfordeler and real databases (SQLite and PostgreSQL).
"""

# The fixtures (exchange, tokens, beskedfordeler) are the sibling module's, imported by name;
# pytest's parameters of the same names are what ruff calls redefinitions.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serviceplatform.distribution.amqp import AmqpDistributor
from serviceplatform.distribution.base import (
    BatchOutcome,
    DistributorBase,
    MemoryDistributor,
    OutgoingMessage,
)
from serviceplatform.errors import DistributorUnavailable
from serviceplatform.relay import OutboxRelay
from serviceplatform.store.db import Database
from serviceplatform.store.outbox import Outbox
from tests.integration.test_distribution_amqp import (  # noqa: F401  # fixtures
    OTHER_AUTHORITY,
    amqp_settings,
    beskedfordeler,
    exchange,
    message,
    tokens,
)
from tests.integration.test_distribution_amqp_pipeline import (  # noqa: F401  # fixtures
    _delivered_ids,
    by_token,
)
from tests.integration.test_relay_race import TOPIC, _pending

pytestmark = [pytest.mark.integration, pytest.mark.amqp]

NOW = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)


def test_batches_overlap_on_postgresql_and_each_row_goes_once(
    database: Database, beskedfordeler, rabbitmq_url, exchange, tokens, tmp_path: Path
):
    rows, batch = 60, 10
    ids = _pending(database, rows)
    settings = amqp_settings(rabbitmq_url, exchange, in_flight=64)
    with AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor:
        result = OutboxRelay(
            Outbox(database), distributor, clock=lambda: NOW, topic=TOPIC, batch_size=batch
        ).run()
        overlapped = distributor.batches_overlapped
    assert (result.delivered, result.unavailable, result.rejected) == (rows, False, 0)
    assert _delivered_ids(database) == set(ids)
    received = [r.besked_id for r in beskedfordeler.received]
    assert sorted(received) == sorted(ids)
    if database.dialect == "postgresql":
        # A later batch was taken while the one before it was still on its way: at least
        # the second, taken as soon as the first was published. Later ones may find the
        # one before already answered while the relay committed (timing), so not all.
        assert 1 <= overlapped <= rows // batch - 1
    else:
        # SQLite's claim holds the writer lock: one claim, one batch at a time.
        assert overlapped == 0


def test_a_refusal_in_one_batch_stops_publishing_the_next(
    beskedfordeler, by_token, rabbitmq_url, tokens, tmp_path: Path
):
    front, _ = by_token
    first = [message() for _ in range(4)]
    first[2] = message(OTHER_AUTHORITY)  # unroutable through the front exchange
    second = [message() for _ in range(6)]
    # A window of four: the second batch is taken at once, and publishes only as the first's
    # messages are done; the refusal comes back before them.
    settings = amqp_settings(rabbitmq_url, front, in_flight=4)
    with AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor:
        outcomes = list(distributor.deliver_stream([first, second], overlap=True))
    assert len(outcomes) == 2
    refused = outcomes[0].pop(2)
    assert isinstance(refused, DistributorUnavailable) and "did not route" in refused.error_text
    assert outcomes[0] == {0: None, 1: None, 3: None}
    # Nothing of the second batch was published after the refusal: left out (pending), never
    # failed as unanswered. Whatever went out before it was answered.
    assert set(outcomes[1].values()) <= {None} and len(outcomes[1]) < len(second)
    received = {r.besked_id for r in beskedfordeler.received}
    expected = {m.besked_id for i, m in enumerate(first) if i != 2}
    assert received == expected | {second[i].besked_id for i in outcomes[1]}


class _TakesTwo(DistributorBase):
    """With ``overlap``, takes two batches before answering the first (as AMQP does)."""

    def __init__(self) -> None:
        self.inner = MemoryDistributor()
        self.overlapped = False

    def deliver_stream(
        self, batches: Iterable[Sequence[OutgoingMessage]], *, overlap: bool = False
    ) -> Generator[BatchOutcome, None, None]:
        source = iter(batches)
        taken = [batch for batch in [next(source, None)] if batch]
        while taken:
            if overlap:
                following = next(source, None)
                if following:
                    self.overlapped = True
                    taken.append(following)
            yield self.inner.deliver_batch(taken.pop(0))
            if not overlap or not taken:
                taken += [batch for batch in [next(source, None)] if batch]


def test_an_error_with_two_claims_open_rolls_the_open_one_back(database: Database):
    rows, batch = 12, 4
    ids = _pending(database, rows)
    distributor = _TakesTwo()

    def stop(count: int) -> None:
        raise RuntimeError("the process dies after the first batch committed")

    relay = OutboxRelay(
        Outbox(database), distributor, clock=lambda: NOW, topic=TOPIC, batch_size=batch
    )
    with pytest.raises(RuntimeError):
        relay.run(on_delivered=stop)
    # The first batch committed; the second, claimed and taken by the distributor, rolled
    # back: pending again and not locked (the next round takes it).
    assert _delivered_ids(database) == set(ids[:batch])
    assert Outbox(database).counts(TOPIC).pending == rows - batch
    again = OutboxRelay(
        Outbox(database), _TakesTwo(), clock=lambda: NOW, topic=TOPIC, batch_size=batch
    ).run()
    assert again.delivered == rows - batch
    assert _delivered_ids(database) == set(ids)
    assert [m.besked_id for m in distributor.inner.delivered] == ids[:batch]
    # On PostgreSQL the second claim was open when the error came; SQLite never has two.
    assert distributor.overlapped == (database.dialect == "postgresql")

"""The AMQP transport's pipelined batches against a real RabbitMQ and the simulated Beskedfordeler.

``deliver_batch`` publishes many messages ahead on one channel and matches the broker's
confirms (by delivery tag) and the replies (by correlation id) as they come. These tests hold
it to the contract: a message counts as delivered only with its confirm and a StatusKode 20
reply; a refusal or rejection in the middle of a window fails that message alone; a
connection lost in the middle of a window leaves every message without its answer pending.
"""

# The fixtures (exchange, tokens, beskedfordeler, distributor) are the sibling module's,
# imported by name; pytest's parameters of the same names are what ruff calls redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pika
import pytest
from pika.adapters.utils import io_services_utils
from sqlalchemy import select

from serviceplatform.distribution import OutgoingMessage
from serviceplatform.distribution.amqp import AmqpDistributor
from serviceplatform.errors import DistributorRejected, DistributorUnavailable
from serviceplatform.relay import OutboxRelay
from serviceplatform.sandbox.beskedfordeler import SimulatedBeskedfordeler
from serviceplatform.sandbox.pki import Pki
from serviceplatform.sandbox.sts_tokens import SandboxStsTokenSource
from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox, outbox_state
from serviceplatform.store.outbox import OUTBOX_WITH_STATE, Outbox
from tests.conftest import AMQP_VHOST
from tests.integration.test_distribution_amqp import (  # noqa: F401  # fixtures
    AUTHORITY,
    OTHER_AUTHORITY,
    TcpProxy,
    amqp_settings,
    beskedfordeler,
    broker_address,
    declared_queue,
    distributor,
    exchange,
    message,
    tokens,
    with_port,
)
from tests.integration.test_relay_race import TOPIC, _pending

pytestmark = [pytest.mark.integration, pytest.mark.amqp]

NOW = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)


def test_a_window_of_messages_is_confirmed_and_answered(
    beskedfordeler, rabbitmq_url, exchange, tokens, tmp_path
):
    # More messages than the window: it slides as confirms and replies come in.
    sent = [message() for _ in range(300)]
    settings = amqp_settings(rabbitmq_url, exchange, in_flight=64)
    with AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor:
        outcome = distributor.deliver_batch(sent)
        assert outcome == dict.fromkeys(range(300))
        assert distributor.connections_opened == 1
    received = [r.besked_id for r in beskedfordeler.received]
    assert sorted(received) == sorted(m.besked_id for m in sent)


def test_a_rejected_reply_in_the_middle_fails_only_that_message(beskedfordeler, distributor):
    sent = [message() for _ in range(20)]
    # The body names another authority than the token: Beskedfordeler answers 42.
    sent[7] = message(AUTHORITY, body_cvr=OTHER_AUTHORITY)
    outcome = distributor.deliver_batch(sent)
    assert isinstance(outcome[7], DistributorRejected) and outcome[7].status == 42
    assert {i: e for i, e in outcome.items() if i != 7} == {i: None for i in range(20) if i != 7}
    received = {r.besked_id for r in beskedfordeler.received}
    assert received == {m.besked_id for i, m in enumerate(sent) if i != 7}


@pytest.fixture
def by_token(
    rabbitmq_url: str, exchange: str, tokens: SandboxStsTokenSource
) -> Iterator[tuple[str, pika.adapters.blocking_connection.BlockingChannel]]:
    """A headers exchange in front of the simulator's: only AUTHORITY's token routes there."""
    front = f"{exchange}_FRONT"
    parameters = pika.URLParameters(rabbitmq_url)
    parameters.virtual_host = AMQP_VHOST
    connection = pika.BlockingConnection(parameters)
    channel = connection.channel()
    channel.exchange_declare(front, exchange_type="headers", durable=False)
    channel.exchange_bind(
        exchange, front, arguments={"x-match": "all", "token": tokens.token_for(AUTHORITY)}
    )
    try:
        yield front, channel
    finally:
        channel.exchange_delete(front)
        connection.close()


@pytest.mark.parametrize("refusal", ["unroutable", "nacked"])
def test_a_refused_publish_in_the_middle_fails_only_that_message(
    beskedfordeler, by_token, refusal, rabbitmq_url, tokens, tmp_path
):
    front, channel = by_token
    if refusal == "nacked":
        # A queue that takes nothing and refuses the publish: the broker nacks it.
        full = f"{front}_FULL"
        channel.queue_declare(
            full, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}, auto_delete=True
        )
        other = {"x-match": "all", "token": tokens.token_for(OTHER_AUTHORITY)}
        channel.queue_bind(full, front, arguments=other)
    sent = [message() for _ in range(12)]
    sent[4] = message(OTHER_AUTHORITY)
    with AmqpDistributor(
        amqp_settings(rabbitmq_url, front), tokens, base_dir=tmp_path
    ) as distributor:
        outcome = distributor.deliver_batch(sent)
    assert isinstance(outcome[4], DistributorUnavailable)
    expected = "did not route" if refusal == "unroutable" else r"\(nack\)"
    assert re.search(expected, outcome[4].error_text)
    assert sent[4].besked_id not in outcome[4].error_text
    assert {i: e for i, e in outcome.items() if i != 4} == {i: None for i in range(12) if i != 4}
    received = {r.besked_id for r in beskedfordeler.received}
    assert received == {m.besked_id for i, m in enumerate(sent) if i != 4}


class _Holding(SimulatedBeskedfordeler):
    """Stops before answering the message after ``answer_first`` until ``release`` is set."""

    def __init__(self, *args: object, answer_first: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.answer_first = answer_first
        self.holding = threading.Event()
        self.release = threading.Event()

    def _answer(self, body: bytes, headers: dict[str, object]) -> tuple[int, str | None]:
        if len(self.received) >= self.answer_first:
            self.holding.set()
            self.release.wait(30)
        return super()._answer(body, headers)


def _delivered_ids(database: Database) -> set[str]:
    with database.transaction() as connection:
        rows = connection.execute(
            select(outbox.c.message_id)
            .select_from(OUTBOX_WITH_STATE)
            .where(outbox_state.c.state == "delivered")
        )
        return {row.message_id for row in rows}


@pytest.mark.parametrize("batch", [40, 8], ids=["one-batch", "five-batches"])
def test_a_connection_lost_mid_window_leaves_the_unanswered_pending(
    database, rabbitmq_url, exchange, pki: Pki, tokens, tmp_path: Path, batch: int
):
    # Five batches: on PostgreSQL two are open when the connection goes (the relay's stream).
    rows, answered = 40, 10
    ids = _pending(database, rows)
    proxy = TcpProxy(broker_address(rabbitmq_url)).start()
    settings = amqp_settings(with_port(rabbitmq_url, proxy.port), exchange, in_flight=64)
    holding = _Holding(
        rabbitmq_url,
        exchange=exchange,
        trusted_sts_cert=pki.sts_cert,
        delete_on_stop=True,
        answer_first=answered,
    )

    def drop_the_connection() -> None:
        # Beskedfordeler answered the first ten and holds the eleventh: the connection goes.
        if holding.holding.wait(30):
            proxy.stop()
        holding.release.set()

    dropper = threading.Thread(target=drop_the_connection)
    try:
        with holding, AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor:
            relay = OutboxRelay(
                Outbox(database), distributor, clock=lambda: NOW, topic=TOPIC, batch_size=batch
            )
            dropper.start()
            first = relay.run()
            dropper.join()
            assert first.unavailable
            delivered = _delivered_ids(database)
            # Only messages Beskedfordeler answered can count, the held one and later never;
            # a batch answered whole before the drop (the first of eight) counts whole.
            least = batch if batch <= answered else 0
            assert least <= first.delivered == len(delivered) <= answered
            assert delivered <= {r.besked_id for r in holding.received[:answered]}
            assert Outbox(database).counts(TOPIC).pending == rows - len(delivered)
            if batch < rows and database.dialect == "postgresql":
                assert distributor.batches_overlapped >= 1
            # The next round, over a connection again, delivers the rest.
            proxy.start()
            second = relay.run()
            assert (second.delivered, second.unavailable) == (rows - len(delivered), False)
        assert _delivered_ids(database) == set(ids)
        assert {r.besked_id for r in holding.received} == set(ids)
    finally:
        holding.release.set()
        proxy.stop()


def test_the_same_besked_id_twice_in_a_batch_waits_for_the_first(beskedfordeler, distributor):
    first = message()
    again = OutgoingMessage(first.besked_id, first.authority_cvr, first.body)
    others = [message() for _ in range(3)]
    outcome = distributor.deliver_batch([first, *others, again])
    assert outcome == dict.fromkeys(range(5))
    received = [r.besked_id for r in beskedfordeler.received]
    assert received.count(first.besked_id) == 2 and len(received) == 5


def test_no_reply_in_time_fails_the_window_and_leaves_the_rest_out(
    rabbitmq_url, exchange, tokens, tmp_path
):
    settings = amqp_settings(rabbitmq_url, exchange, reply_timeout_seconds=0.3)
    sent = [message() for _ in range(5)]
    with (
        declared_queue(rabbitmq_url, exchange),
        AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor,
    ):
        outcome = distributor.deliver_batch(sent)
    # Nobody answers: the first message carries the error, the others are left out (pending).
    assert list(outcome) == [0]
    assert isinstance(outcome[0], DistributorUnavailable)
    assert "within 0.3 s" in outcome[0].error_text


def test_a_window_leaves_in_a_few_writes_not_three_per_message(
    beskedfordeler, rabbitmq_url, exchange, tokens, tmp_path, monkeypatch
):
    # pika sends each frame (method, header, body: three a message) with a write of its own;
    # the distributor joins what a window queued, so the broker gets it in a few writes.
    sends: list[int] = []
    transport = io_services_utils._AsyncTransportBase
    send = getattr(transport, "_sigint_safe_send")  # noqa: B009  # private, untyped

    def counting(sock, data):
        sends.append(len(data))
        return send(sock, data)

    sent = [message() for _ in range(200)]
    settings = amqp_settings(rabbitmq_url, exchange, in_flight=200)
    with AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor:
        distributor.deliver_batch(sent[:1])  # connected, before counting
        monkeypatch.setattr(transport, "_sigint_safe_send", staticmethod(counting))
        outcome = distributor.deliver_batch(sent[1:])
    assert outcome == dict.fromkeys(range(199))
    # Without joining: at least 3 x 199 writes. Joined, a write still may go out in parts
    # (the socket takes what fits, less on a busy machine), but fewer than one a message.
    assert 0 < len(sends) < len(sent)
    assert sum(sends) > sum(len(m.body) for m in sent[1:])

"""The AMQP transport's per-message savings: frames joined, replies read once, properties
encoded once per token, and the relay's larger batches over AMQP."""

from __future__ import annotations

import uuid
from collections import deque
from types import SimpleNamespace
from typing import Any

import pika
import pytest

from serviceplatform.config import AMQP_BATCH_SIZE, FILE_BATCH_SIZE, DistributorSettings
from serviceplatform.distribution import amqp
from serviceplatform.distribution.amqp import coalesce_output, parse_standard_retur


def connection_with(buffers: list[bytes]) -> Any:
    return SimpleNamespace(_transport=SimpleNamespace(_tx_buffers=deque(buffers)))


def test_queued_frames_are_joined_behind_the_untouched_first_buffer():
    frames = [b"head"] + [bytes([65 + i % 26]) * 100 for i in range(300)]
    connection = connection_with(frames)
    coalesce_output(connection)
    buffers = connection._transport._tx_buffers
    # The first buffer may be a TLS write waiting to be retried: it stays as it was.
    assert buffers[0] is frames[0]
    assert len(buffers) == 2
    assert b"".join(buffers) == b"".join(frames)


def test_joined_chunks_are_bounded():
    frames = [b"head"] + [b"x" * 100_000 for _ in range(10)]
    connection = connection_with(frames)
    coalesce_output(connection)
    buffers = list(connection._transport._tx_buffers)
    assert b"".join(buffers) == b"".join(frames)
    assert 2 < len(buffers) < len(frames)
    # Each chunk ends at the first frame that takes it past the bound.
    assert all(len(chunk) < amqp._WRITE_CHUNK + 100_000 for chunk in buffers)


@pytest.mark.parametrize("buffers", [[], [b"a"], [b"a", b"b"]])
def test_nothing_to_join_leaves_the_buffers_alone(buffers):
    connection = connection_with(buffers)
    coalesce_output(connection)
    assert list(connection._transport._tx_buffers) == buffers


def test_a_connection_without_a_transport_is_left_alone():
    coalesce_output(None)
    coalesce_output(SimpleNamespace(_transport=None))


def test_the_same_reply_is_read_once(monkeypatch):
    reads: list[bytes] = []
    parse = amqp._parse_standard_retur

    def counting(body: bytes) -> tuple[int, str | None]:
        reads.append(body)
        return parse(body)

    monkeypatch.setattr(amqp, "_parse_standard_retur", counting)
    monkeypatch.setattr(amqp, "_RETUR_SEEN", {})
    ok = b'<StandardRetur xmlns="urn:oio:sagdok:3.0.0"><StatusKode>20</StatusKode></StandardRetur>'
    refused = ok.replace(b">20<", b">41<")
    assert [parse_standard_retur(ok) for _ in range(5)] == [(20, None)] * 5
    assert parse_standard_retur(refused) == (41, None)
    assert parse_standard_retur(ok) == (20, None)
    assert reads == [ok, refused]


def test_garbage_is_refused_every_time_and_long_replies_are_not_remembered(monkeypatch):
    monkeypatch.setattr(amqp, "_RETUR_SEEN", {})
    for _ in range(2):
        with pytest.raises(ValueError):
            parse_standard_retur(b"<StandardRetur/>")
    long = (
        b"<StandardRetur><StatusKode>42</StatusKode><FejlbeskedTekst>"
        + b"x" * 2000
        + b"</FejlbeskedTekst></StandardRetur>"
    )
    assert parse_standard_retur(long) == (42, "x" * 2000)
    assert amqp._RETUR_SEEN == {}


TOKEN = '<saml:Assertion ID="_a">\u00e6\u00f8\u00e5 ' + "x" * 6000 + "</saml:Assertion>"


def test_templated_properties_encode_as_pika_does():
    template = amqp.PropertiesTemplate(TOKEN)
    for _ in range(20):
        besked_id = str(uuid.uuid4())
        properties = template.properties(besked_id)
        expected = amqp.publish_properties(besked_id, TOKEN)
        assert b"".join(properties.encode()) == b"".join(expected.encode())
        # What pika decodes from it is what was meant.
        decoded = pika.BasicProperties()
        decoded.decode(b"".join(properties.encode()))
        assert decoded.correlation_id == decoded.message_id == besked_id
        assert decoded.headers == {"token": TOKEN}
        assert decoded.reply_to == amqp.REPLY_TO
        assert decoded.delivery_mode == 2 and decoded.content_type == "application/xml"


def test_the_template_is_used_for_every_message_of_its_token(monkeypatch):
    template = amqp.PropertiesTemplate(TOKEN)
    encoded: list[str] = []

    def encode(self: pika.BasicProperties) -> list[bytes]:
        encoded.append("pika")
        return [b""]

    monkeypatch.setattr(pika.BasicProperties, "encode", encode)
    for _ in range(3):
        template.properties(str(uuid.uuid4())).encode()
    assert encoded == []


def test_without_the_placeholder_where_it_belongs_pika_encodes_each_message(monkeypatch):
    # Another pika might order or encode the fields otherwise: then nothing is spliced.
    monkeypatch.setattr(amqp, "publish_properties", _with_a_field_after_the_message_id)
    template = amqp.PropertiesTemplate(TOKEN)
    besked_id = str(uuid.uuid4())
    properties = template.properties(besked_id)
    assert not isinstance(properties, amqp._EncodedProperties)
    assert properties.encode() == _with_a_field_after_the_message_id(besked_id, TOKEN).encode()


def _with_a_field_after_the_message_id(besked_id: str, token: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        correlation_id=besked_id,
        message_id=besked_id,
        reply_to=amqp.REPLY_TO,
        headers={"token": token},
        app_id="elsewhere",
    )


def test_the_relay_batch_is_the_transports_unless_set():
    assert DistributorSettings().relay_batch_size() == FILE_BATCH_SIZE == 500
    assert DistributorSettings(transport="amqp").relay_batch_size() == AMQP_BATCH_SIZE == 2000
    assert DistributorSettings(transport="amqp", batch_size=7).relay_batch_size() == 7
    assert DistributorSettings(batch_size=3).relay_batch_size() == 3

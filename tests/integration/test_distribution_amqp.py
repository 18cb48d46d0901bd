"""The AMQP transport against a real RabbitMQ and the simulated Beskedfordeler.

Each test uses an exchange and queue of its own (deleted afterwards), so runs on a shared
broker do not hear each other. Broker loss is made with a small TCP proxy between the
distributor and RabbitMQ (stop it, start it again) and, where ``rabbitmqctl`` is at hand, by
the broker closing the distributor's connection.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import select
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from serviceplatform.client.token_minter import mint_assertion
from serviceplatform.config import AmqpDistributorSettings, DistributorSettings, Settings
from serviceplatform.distribution import KUVERT_NS, SAGDOK_NS, OutgoingMessage
from serviceplatform.distribution import distributor_from_settings as make_distributor
from serviceplatform.distribution.amqp import REPLY_TO, AmqpDistributor, connection_name
from serviceplatform.distribution.tokens import FileTokenSource, TokenSource
from serviceplatform.errors import ConfigurationError, DistributorRejected, DistributorUnavailable
from serviceplatform.sandbox.beskedfordeler import SimulatedBeskedfordeler, standard_retur
from serviceplatform.sandbox.httpserver import server_tls_context
from serviceplatform.sandbox.pki import STS_ISSUER, Pki
from serviceplatform.sandbox.sts_tokens import SandboxStsTokenSource
from serviceplatform.security.token import read_assertion
from tests.conftest import AMQP_VHOST, rabbitmqctl

pytestmark = [pytest.mark.integration, pytest.mark.amqp]

EXAMPLE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/conformance/kombit/beskedfordeler/example_messages/externTestBesked.xml"
)
AUDIENCE = "http://entityid.kombit.dk/service/beskedfordeler/1"
AUTHORITY = "29189846"
OTHER_AUTHORITY = "12345674"
_BESKED_ID = f"{{{KUVERT_NS}}}BeskedId/{{{SAGDOK_NS}}}UUIDIdentifikator"
_AUTHORITY_URN = f".//{{{KUVERT_NS}}}ObjektAnsvarligMyndighed/{{{SAGDOK_NS}}}URNIdentifikator"


# --- messages and tokens --------------------------------------------------------------------


def haendelsesbesked(besked_id: str, cvr: str) -> bytes:
    """The official example message with our BeskedId and responsible authority."""
    root = etree.parse(str(EXAMPLE)).getroot()
    id_element = root.find(_BESKED_ID)
    assert id_element is not None
    id_element.text = besked_id
    authorities = root.findall(_AUTHORITY_URN)
    assert authorities
    for element in authorities:
        element.text = f"urn:oio:cvr-nr:{cvr}"
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def message(cvr: str = AUTHORITY, *, body_cvr: str | None = None) -> OutgoingMessage:
    besked_id = str(uuid.uuid4())
    return OutgoingMessage(besked_id, cvr, haendelsesbesked(besked_id, body_cvr or cvr))


def load_key(path: Path) -> RSAPrivateKey:
    key = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def tokens(pki: Pki) -> SandboxStsTokenSource:
    return SandboxStsTokenSource.from_files(pki.sts_key, pki.sts_cert, STS_ISSUER, AUDIENCE)


# --- broker plumbing ------------------------------------------------------------------------


@pytest.fixture
def exchange() -> str:
    return f"SP_TEST_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def beskedfordeler(rabbitmq_url: str, exchange: str, pki: Pki) -> Iterator[SimulatedBeskedfordeler]:
    with SimulatedBeskedfordeler(
        rabbitmq_url, exchange=exchange, trusted_sts_cert=pki.sts_cert, delete_on_stop=True
    ) as running:
        yield running


def amqp_settings(url: str, exchange: str, **overrides: object) -> AmqpDistributorSettings:
    values: dict[str, object] = {
        "url": url,
        "virtual_host": AMQP_VHOST,
        "exchange": exchange,
        "reply_timeout_seconds": 5.0,
        "connect_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return AmqpDistributorSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def distributor(
    rabbitmq_url: str, exchange: str, tokens: SandboxStsTokenSource, tmp_path: Path
) -> Iterator[AmqpDistributor]:
    with AmqpDistributor(
        amqp_settings(rabbitmq_url, exchange), tokens, base_dir=tmp_path
    ) as running:
        yield running


def with_port(url: str, port: int, scheme: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"{netloc[0]}@127.0.0.1:{port}" if len(netloc) == 2 else f"127.0.0.1:{port}"
    return urlunsplit((scheme or parts.scheme, host, "/", "", ""))


def broker_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5672


@contextlib.contextmanager
def declared_queue(url: str, exchange: str) -> Iterator[pika.adapters.BlockingConnection]:
    """A bound queue with no consumer (the test reads it); both deleted afterwards."""
    parameters = pika.URLParameters(url)
    parameters.virtual_host = AMQP_VHOST
    connection = pika.BlockingConnection(parameters)
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="direct", durable=True)
    channel.queue_declare(exchange, durable=True)
    channel.queue_bind(exchange, exchange, routing_key="")  # type: ignore[no-untyped-call]
    try:
        yield connection
    finally:
        channel.queue_delete(exchange)
        channel.exchange_delete(exchange)
        connection.close()


class TcpProxy:
    """Forwards a local port to the broker; ``stop()`` drops every connection, ``start()``
    listens again on the same port. With ``tls`` it terminates TLS (an ``amqps`` front)."""

    def __init__(self, target: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.target = target
        self.tls = tls
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # close() alone would not wake accept() on Linux, and the port would stay open.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, accepted: socket.socket) -> None:
        client = accepted
        try:
            if self.tls is not None:
                client = self.tls.wrap_socket(accepted, server_side=True)
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        peers: dict[socket.socket, socket.socket] = {client: upstream, upstream: client}
        try:
            while True:
                # TLS may hold decrypted bytes that select() cannot see.
                ready: list[socket.socket] = [
                    s for s in peers if isinstance(s, ssl.SSLSocket) and s.pending()
                ]
                if not ready:
                    ready, _, _ = select.select(list(peers), [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in peers:
                sock.close()


# --- delivery and the conversation ----------------------------------------------------------


def test_message_is_delivered_with_the_token_header(beskedfordeler, distributor):
    sent = [message() for _ in range(3)]
    for item in sent:
        distributor.deliver(item)
    received = beskedfordeler.received
    assert [r.besked_id for r in received] == [m.besked_id for m in sent]
    assert [r.body for r in received] == [m.body for m in sent]
    assert {r.authority_cvr for r in received} == {AUTHORITY}
    token = received[0].headers["token"]
    assert isinstance(token, str)
    facts = read_assertion(etree.fromstring(token.encode()))
    assert facts.cvr_values == (AUTHORITY,)
    assert facts.issuer == STS_ISSUER
    # One connection serves every message.
    assert distributor.connections_opened == 1


def test_published_message_properties(rabbitmq_url, exchange, tokens, tmp_path):
    settings = amqp_settings(rabbitmq_url, exchange, reply_timeout_seconds=0.3)
    sent = message()
    with declared_queue(rabbitmq_url, exchange) as connection:
        with AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor:
            # Nobody answers: the message waits in the queue, the distributor gives up.
            with pytest.raises(DistributorUnavailable, match="no reply") as caught:
                distributor.deliver(sent)
            assert caught.value.retryable
            # The BeskedId may be derived from a CPR number: never in an error text.
            assert sent.besked_id not in caught.value.error_text
        method, properties, body = connection.channel().basic_get(exchange, auto_ack=True)
    assert method is not None
    assert body == sent.body
    assert properties.content_type == "application/xml"
    assert properties.delivery_mode == 2
    assert properties.correlation_id == sent.besked_id
    assert properties.message_id == sent.besked_id
    assert properties.reply_to.startswith(REPLY_TO)
    assert read_assertion(etree.fromstring(properties.headers["token"].encode())).cvr_values == (
        AUTHORITY,
    )


def test_no_consumer_times_out_then_the_next_delivery_works(
    rabbitmq_url, exchange, pki, tokens, tmp_path
):
    settings = amqp_settings(rabbitmq_url, exchange, reply_timeout_seconds=0.3)
    with AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor:
        with (
            declared_queue(rabbitmq_url, exchange),
            pytest.raises(DistributorUnavailable, match=r"within 0\.3 s"),
        ):
            distributor.deliver(message())
        with SimulatedBeskedfordeler(
            rabbitmq_url, exchange=exchange, trusted_sts_cert=pki.sts_cert, delete_on_stop=True
        ) as beskedfordeler:
            sent = message()
            distributor.deliver(sent)
            assert [r.besked_id for r in beskedfordeler.received] == [sent.besked_id]


def test_unroutable_message_is_unavailable(rabbitmq_url, exchange, tokens, tmp_path, caplog):
    # Even with pika's own DEBUG records switched on.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pika")
    sent = message()
    parameters = pika.URLParameters(rabbitmq_url)
    parameters.virtual_host = AMQP_VHOST
    admin = pika.BlockingConnection(parameters)
    channel = admin.channel()
    channel.exchange_declare(exchange, exchange_type="direct", durable=False, auto_delete=False)
    try:
        with (
            AmqpDistributor(
                amqp_settings(rabbitmq_url, exchange), tokens, base_dir=tmp_path
            ) as distributor,
            pytest.raises(DistributorUnavailable, match="did not route") as caught,
        ):
            distributor.deliver(sent)
    finally:
        channel.exchange_delete(exchange)
        admin.close()
    # pika hands the returned message (token header and all) to the exception: none of it
    # may reach the error text or any log line, pika's own included.
    token = tokens.token_for(AUTHORITY)
    assert token not in caught.value.error_text
    assert sent.besked_id not in caught.value.error_text
    assert "Assertion" not in caplog.text
    assert sent.besked_id not in caplog.text
    # The distributor handles the return itself (pika then logs none of it), and says so
    # without content.
    assert "the broker returned a message" in caplog.text


def test_pika_log_records_withhold_properties_and_bodies(tokens, caplog):
    # pika logs properties and bodies in places (a return nobody handles, DEBUG frames): the
    # filter that protect_pika_logging() puts on its loggers withholds them.
    AmqpDistributor(amqp_settings("amqp://127.0.0.1:5672/", "X"), tokens, base_dir=Path("."))
    caplog.set_level(logging.DEBUG, logger="pika")
    token = tokens.token_for(AUTHORITY)
    properties = pika.BasicProperties(correlation_id="kept-out", headers={"token": token})
    logging.getLogger("pika.channel").debug(
        "Basic.Return received from server (%r, %r)", "method", properties
    )
    logging.getLogger("pika.adapters.blocking_connection").warning(
        "returned: %r body_prefix=%.255r", properties, b"<Haendelsesbesked>"
    )
    assert caplog.text.count("<withheld>") == 3
    assert token not in caplog.text
    assert "Assertion" not in caplog.text and "kept-out" not in caplog.text
    assert "Haendelsesbesked" not in caplog.text


def test_missing_exchange_is_unavailable_and_the_channel_recovers(
    rabbitmq_url, exchange, pki, tokens, tmp_path
):
    with AmqpDistributor(
        amqp_settings(rabbitmq_url, exchange), tokens, base_dir=tmp_path
    ) as distributor:
        with pytest.raises(DistributorUnavailable, match="NOT_FOUND"):
            distributor.deliver(message())
        with SimulatedBeskedfordeler(
            rabbitmq_url, exchange=exchange, trusted_sts_cert=pki.sts_cert, delete_on_stop=True
        ):
            distributor.deliver(message())
        assert distributor.connections_opened == 2


# --- StandardRetur other than 20 -------------------------------------------------------------


def test_forced_status_is_rejected_with_that_status(beskedfordeler, distributor):
    beskedfordeler.fail_next(41, count=2)
    for _ in range(2):
        with pytest.raises(DistributorRejected) as caught:
            distributor.deliver(message())
        assert caught.value.status == 41
        assert caught.value.code == "SP-431"
    assert beskedfordeler.received == []
    sent = message()
    distributor.deliver(sent)
    assert [r.besked_id for r in beskedfordeler.received] == [sent.besked_id]
    assert distributor.connections_opened == 1


def test_authority_other_than_the_tokens_is_42(beskedfordeler, distributor):
    with pytest.raises(DistributorRejected) as caught:
        distributor.deliver(message(AUTHORITY, body_cvr=OTHER_AUTHORITY))
    assert caught.value.status == 42
    assert f"urn:oio:cvr-nr:{OTHER_AUTHORITY}" in caught.value.error_text
    assert beskedfordeler.received == []


def test_malformed_message_is_40(beskedfordeler, distributor):
    for body in (b"<not-closed>", b"<Haendelsesbesked/>"):
        with pytest.raises(DistributorRejected) as caught:
            distributor.deliver(OutgoingMessage(str(uuid.uuid4()), AUTHORITY, body))
        assert caught.value.status == 40


class _FixedToken:
    def __init__(self, token: str) -> None:
        self.token = token

    def token_for(self, authority_cvr: str) -> str:
        return self.token


def _deliver_with(url: str, exchange: str, source: TokenSource, tmp_path: Path) -> int | None:
    settings = amqp_settings(url, exchange)
    with (
        AmqpDistributor(settings, source, base_dir=tmp_path) as distributor,
        pytest.raises(DistributorRejected) as caught,
    ):
        distributor.deliver(message())
    return caught.value.status


def test_expired_token_is_41(beskedfordeler, rabbitmq_url, exchange, pki, tmp_path):
    expired = mint_assertion(
        sts_key=load_key(pki.sts_key),
        sts_cert=x509.load_pem_x509_certificate(pki.sts_cert.read_bytes()),
        issuer=STS_ISSUER,
        audience=AUDIENCE,
        authority_cvr=AUTHORITY,
        holder_cert=x509.load_pem_x509_certificate(pki.sts_cert.read_bytes()),
        now=datetime.now(UTC) - timedelta(hours=9),
    )
    tokens_dir = tmp_path / "tokens"
    tokens_dir.mkdir()
    (tokens_dir / f"{AUTHORITY}.xml").write_bytes(etree.tostring(expired))
    source = FileTokenSource(tokens_dir)
    assert _deliver_with(rabbitmq_url, exchange, source, tmp_path) == 41


def test_token_of_an_untrusted_sts_is_41(beskedfordeler, rabbitmq_url, exchange, pki, tmp_path):
    # The case system's key is a valid key from the same CA, but not the trusted STS.
    forged = SandboxStsTokenSource.from_files(pki.client_key, pki.client_cert, STS_ISSUER, AUDIENCE)
    assert _deliver_with(rabbitmq_url, exchange, forged, tmp_path) == 41


def test_changed_token_is_41(beskedfordeler, rabbitmq_url, exchange, tokens, tmp_path):
    text = tokens.token_for(AUTHORITY)
    changed = text.replace(f">{AUTHORITY}<", f">{OTHER_AUTHORITY}<")
    assert changed != text
    assert _deliver_with(rabbitmq_url, exchange, _FixedToken(changed), tmp_path) == 41


def test_missing_token_is_41(beskedfordeler, rabbitmq_url, exchange, tmp_path):
    assert _deliver_with(rabbitmq_url, exchange, _FixedToken(""), tmp_path) == 41


def test_sandbox_tokens_are_cached_until_shortly_before_expiry(pki):
    now = [datetime(2026, 1, 5, 8, 0, tzinfo=UTC)]
    source = SandboxStsTokenSource(
        load_key(pki.sts_key),
        x509.load_pem_x509_certificate(pki.sts_cert.read_bytes()),
        STS_ISSUER,
        AUDIENCE,
        ttl=timedelta(hours=1),
        clock=lambda: now[0],
    )
    first = source.token_for(AUTHORITY)
    assert source.token_for(AUTHORITY) is first
    assert source.token_for(OTHER_AUTHORITY) != first
    now[0] += timedelta(minutes=54)
    assert source.token_for(AUTHORITY) is first
    now[0] += timedelta(minutes=1)
    assert source.token_for(AUTHORITY) != first


# --- losing the broker ----------------------------------------------------------------------


def test_unreachable_broker_is_unavailable(rabbitmq_url, exchange, tokens, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    settings = amqp_settings(with_port(rabbitmq_url, free_port), exchange)
    with (
        AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor,
        pytest.raises(DistributorUnavailable, match=f"127.0.0.1:{free_port}/BF"),
    ):
        distributor.deliver(message())


def test_broker_gone_then_back(beskedfordeler, rabbitmq_url, exchange, tokens, tmp_path):
    proxy = TcpProxy(broker_address(rabbitmq_url)).start()
    settings = amqp_settings(with_port(rabbitmq_url, proxy.port), exchange)
    try:
        with AmqpDistributor(settings, tokens, base_dir=tmp_path) as distributor:
            distributor.deliver(message())
            proxy.stop()
            with pytest.raises(DistributorUnavailable):
                distributor.deliver(message())
            proxy.start()
            sent = message()
            distributor.deliver(sent)
            assert beskedfordeler.received[-1].besked_id == sent.besked_id
            assert distributor.connections_opened == 2
    finally:
        proxy.stop()


def test_connection_closed_by_the_broker_is_replaced(beskedfordeler, distributor):
    ctl = rabbitmqctl()
    # make test (tests/servers.sh) runs the broker beside the tests; its CLI must be there.
    assert ctl is not None, "rabbitmqctl is not on PATH: install rabbitmq-server beside the tests"
    distributor.deliver(message())
    # Only this process's distributor connection: other runs on the same broker go on.
    listing = subprocess.run(
        [ctl, "-q", "list_connections", "pid", "client_properties", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    ours = [
        line.split("\t", 1)[0]
        for line in listing.splitlines()
        if f'{{"connection_name","{connection_name()}"}}' in line
    ]
    assert len(ours) == 1, listing
    subprocess.run(
        [ctl, "-q", "close_connection", ours[0], "test: connection closed under the distributor"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    time.sleep(0.2)
    sent = message()
    distributor.deliver(sent)
    assert beskedfordeler.received[-1].besked_id == sent.besked_id
    assert distributor.connections_opened == 2


def test_simulator_reconnects_after_losing_the_broker(
    rabbitmq_url, exchange, pki, tokens, tmp_path
):
    proxy = TcpProxy(broker_address(rabbitmq_url)).start()
    simulator_url = with_port(rabbitmq_url, proxy.port)
    try:
        with SimulatedBeskedfordeler(
            simulator_url, exchange=exchange, trusted_sts_cert=pki.sts_cert, delete_on_stop=True
        ) as beskedfordeler:
            proxy.stop()
            proxy.start()
            deadline = time.monotonic() + 10
            while beskedfordeler.connections_opened < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert beskedfordeler.connections_opened == 2
            with AmqpDistributor(
                amqp_settings(rabbitmq_url, exchange), tokens, base_dir=tmp_path
            ) as distributor:
                distributor.deliver(message())
            assert len(beskedfordeler.received) == 1
    finally:
        proxy.stop()


# --- TLS --------------------------------------------------------------------------------------


def test_amqps_with_the_configured_ca(
    beskedfordeler, rabbitmq_url, exchange, pki, tokens, tmp_path
):
    front = server_tls_context(pki.nemsms_server_cert, pki.nemsms_server_key, None)
    proxy = TcpProxy(broker_address(rabbitmq_url), tls=front).start()
    try:
        url = with_port(rabbitmq_url, proxy.port, scheme="amqps")
        trusted = amqp_settings(url, exchange, ca_cert=str(pki.ca_cert))
        with AmqpDistributor(trusted, tokens, base_dir=tmp_path) as distributor:
            sent = message()
            distributor.deliver(sent)
        assert beskedfordeler.received[-1].besked_id == sent.besked_id
        # A broker certificate from another CA (here: the STS certificate as the only anchor).
        wrong = amqp_settings(url, exchange, ca_cert=str(pki.sts_cert))
        with (
            AmqpDistributor(wrong, tokens, base_dir=tmp_path) as distributor,
            pytest.raises(DistributorUnavailable),
        ):
            distributor.deliver(message())
    finally:
        proxy.stop()


# --- from settings --------------------------------------------------------------------------


def test_factory_with_sandbox_sts(beskedfordeler, rabbitmq_url, exchange, pki, tmp_path):
    amqp = amqp_settings(
        rabbitmq_url,
        exchange,
        token_source="sandbox-sts",
        sts_key=str(pki.sts_key),
        sts_cert=str(pki.sts_cert),
        sts_issuer=STS_ISSUER,
    )
    settings = Settings(
        distributor=DistributorSettings(transport="amqp", amqp=amqp), base_dir=str(tmp_path)
    )
    with make_distributor(settings) as distributor:
        distributor.deliver(message())
    assert len(beskedfordeler.received) == 1


def test_standard_retur_shape():
    root = etree.fromstring(standard_retur(42, "forkert myndighed"))
    assert root.tag == f"{{{SAGDOK_NS}}}StandardRetur"
    assert root.findtext(f"{{{SAGDOK_NS}}}StatusKode") == "42"
    assert root.findtext(f"{{{SAGDOK_NS}}}FejlbeskedTekst") == "forkert myndighed"
    assert copy.deepcopy(root).prefix is None


def test_simulator_without_a_broker_fails_to_start():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    simulator = SimulatedBeskedfordeler(f"amqp://guest:guest@127.0.0.1:{free_port}/%2F")
    with pytest.raises(ConfigurationError, match="cannot consume"):
        simulator.start()

"""The AMQP transport: hand a message to Beskedfordeler and wait for its ``StandardRetur``.

The conversation (AMQP 0-9-1, pika's ``BlockingConnection``):

1. one connection and channel, opened on first use and kept for later messages; the channel
   has publisher confirms on and consumes RabbitMQ's direct reply-to pseudo-queue
   ``amq.rabbitmq.reply-to`` (auto-ack), which must happen before the first publish;
2. per message: publish to the exchange (``mandatory``, persistent, ``application/xml``) with
   ``reply_to``, ``correlation_id`` and ``message_id`` set to the BeskedId and the SAML token
   (XML text) in the ``token`` header; the broker's confirm says it took the message;
3. wait up to ``reply_timeout_seconds`` for the reply with that correlation id, a
   ``StandardRetur`` whose ``StatusKode`` 20 means accepted.

A batch (``deliver_batch``) is spread over ``publishers`` connections, each going through the
same conversation for one message at a time, so that many messages are in flight; every
message still has its confirm and its reply before it counts as delivered.

Errors: no answer in time, an unroutable or refused publish, and every pika, socket or TLS
failure become ``DistributorUnavailable``; a ``StatusKode`` other than 20 becomes
``DistributorRejected`` with ``.status``. A connection that failed (or timed out, which is
what a silently dead connection looks like) is dropped, so the next message reconnects; an
idle connection the broker closed meanwhile is noticed and replaced before publishing.

``amqps://`` URLs use TLS with ``ca_cert`` as the only trust anchor, never the machine's CA
bundle. Neither the token nor the BeskedId (derived from a CPR number by the callers) is
logged or put in an error text.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import pika.spec
from lxml import etree

from serviceplatform.config import AmqpDistributorSettings
from serviceplatform.distribution.base import (
    SAGDOK_NS,
    STATUS_OK,
    BatchOutcome,
    DistributorBase,
    OutgoingMessage,
)
from serviceplatform.distribution.tokens import TokenSource
from serviceplatform.errors import (
    ConfigurationError,
    DistributorRejected,
    DistributorUnavailable,
    ServicePlatformError,
)
from serviceplatform.logmask import mask_cpr_numbers

if TYPE_CHECKING:
    from pika.adapters.blocking_connection import BlockingChannel
    from pika.spec import Basic, BasicProperties

log = logging.getLogger(__name__)

#: RabbitMQ's direct reply-to pseudo-queue.
REPLY_TO: Final = "amq.rabbitmq.reply-to"
#: The AMQP message header that carries the SAML token.
TOKEN_HEADER: Final = "token"
#: The connection name shown by ``rabbitmqctl list_connections client_properties``; the
#: process id is appended, so an operator can tell the workers' connections apart.
CONNECTION_NAME: Final = "serviceplatform-distributor"

_STATUS_KODE: Final = (f"{{{SAGDOK_NS}}}StatusKode", "StatusKode")
_FEJLBESKED: Final = (f"{{{SAGDOK_NS}}}FejlbeskedTekst", "FejlbeskedTekst")
# The failures that mean "the connection or channel is no longer usable".
_BROKEN: Final = (pika.exceptions.AMQPError, OSError)


# --- connection settings --------------------------------------------------------------------


def tls_context(ca_cert: Path) -> ssl.SSLContext:
    """A client context trusting only ``ca_cert``, checking the host name, TLS 1.2 or later."""
    # PROTOCOL_TLS_CLIENT verifies the certificate and host name and loads no CA by itself.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(ca_cert))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"the broker CA file {ca_cert} cannot be used: {exc}") from exc
    return context


def connection_parameters(
    settings: AmqpDistributorSettings, base_dir: Path
) -> pika.ConnectionParameters:
    """pika's parameters for ``settings``; raises ConfigurationError for a bad URL or CA."""
    parts = urlsplit(settings.url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ConfigurationError("[distributor.amqp] url must start with amqp:// or amqps://")
    if parts.path not in ("", "/"):
        raise ConfigurationError(
            "[distributor.amqp] url must not name a virtual host; set virtual_host instead"
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError("[distributor.amqp] url has an invalid port") from None
    host = parts.hostname
    if not host:
        raise ConfigurationError("[distributor.amqp] url has no host")
    tls = parts.scheme == "amqps"
    ssl_options = None
    if tls:
        if not settings.ca_cert:
            raise ConfigurationError("an amqps:// url needs [distributor.amqp] ca_cert")
        ca_cert = Path(settings.ca_cert)
        ca_cert = ca_cert if ca_cert.is_absolute() else base_dir / ca_cert
        ssl_options = pika.SSLOptions(tls_context(ca_cert), server_hostname=host)
    credentials = (
        pika.PlainCredentials(unquote(parts.username), unquote(parts.password or ""))
        if parts.username
        else pika.ConnectionParameters.DEFAULT_CREDENTIALS
    )
    return pika.ConnectionParameters(
        host=host,
        port=port or (5671 if tls else 5672),
        virtual_host=settings.virtual_host,
        credentials=credentials,
        ssl_options=ssl_options,
        # One attempt: the caller's retry schedule decides when to try again.
        connection_attempts=1,
        socket_timeout=settings.connect_timeout_seconds,
        stack_timeout=settings.connect_timeout_seconds,
        # A broker under a resource alarm blocks publishers; give up rather than hang.
        blocked_connection_timeout=max(settings.reply_timeout_seconds, 1.0),
        client_properties={"connection_name": connection_name()},
    )


def connection_name() -> str:
    """The AMQP connection name of this process's distributor."""
    return f"{CONNECTION_NAME} pid {os.getpid()}"


class _WithholdContent(logging.Filter):
    """Replaces message properties and bodies in pika's log arguments by a placeholder."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(map(_is_content, record.args)):
            record.args = tuple("<withheld>" if _is_content(a) else a for a in record.args)
        return True


def _is_content(value: object) -> bool:
    return isinstance(value, pika.spec.BasicProperties | bytes | bytearray)


def protect_pika_logging() -> None:
    """Keep the token header and message bodies out of pika's log records.

    pika logs a returned (unroutable) message with its properties, the ``token`` header
    included, and the start of its body, at WARNING; at DEBUG it prints properties in more
    places. Every ``pika`` logger gets a filter that withholds such arguments, and the level of
    ``pika`` goes to WARNING (INFO is connection chatter) unless someone set it on purpose.
    """
    pika_log = logging.getLogger("pika")
    if pika_log.level == logging.NOTSET:
        pika_log.setLevel(logging.WARNING)
    # A filter on a logger sees only the records logged on that very logger, so each of
    # pika's module loggers (created when pika was imported) gets one.
    names = [n for n in logging.Logger.manager.loggerDict if n == "pika" or n.startswith("pika.")]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithholdContent) for f in logger.filters):
            logger.addFilter(_WithholdContent())


# --- the reply ------------------------------------------------------------------------------


def parse_standard_retur(body: bytes) -> tuple[int, str | None]:
    """``(StatusKode, FejlbeskedTekst)`` of a ``StandardRetur``, with or without namespace.

    Raises ValueError when ``body`` is not XML or carries no integer ``StatusKode``.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"the reply is not XML: {exc}") from exc
    status_text = next((e.text for e in root.iter(*_STATUS_KODE)), None)
    try:
        status = int((status_text or "").strip())
    except ValueError:
        raise ValueError("the reply has no integer StatusKode") from None
    fejl = next((e.text for e in root.iter(*_FEJLBESKED)), None)
    return status, (fejl.strip() or None) if fejl else None


# --- the distributor ------------------------------------------------------------------------


class _NoReply(Exception):
    """No reply arrived in time (internal)."""


class AmqpDistributor(DistributorBase):
    """Delivers messages to Beskedfordeler over AMQP; see the module docstring.

    One connection, used by one delivery at a time (pika connections are not thread-safe);
    it is opened on the first delivery, so a broker that is down at start-up does not stop
    the platform from starting.
    """

    def __init__(
        self,
        settings: AmqpDistributorSettings,
        token_source: TokenSource,
        *,
        base_dir: Path | str,
    ) -> None:
        protect_pika_logging()
        self.settings = settings
        self._tokens = token_source
        self._base_dir = Path(base_dir)
        self._parameters = connection_parameters(settings, Path(base_dir))
        #: The other connections of a batch (this one is the first), made on first use.
        self._lanes: list[AmqpDistributor] = []
        self._pool: ThreadPoolExecutor | None = None
        self._where = f"{self._parameters.host}:{self._parameters.port}/{settings.virtual_host}"
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._waiting_for: str | None = None
        self._reply: bytes | None = None
        self._closed = False
        #: Connections opened so far (tests read it to see a reconnect).
        self.connections_opened = 0

    def deliver(self, message: OutgoingMessage) -> None:
        # Outside the pika error handling: a missing token is a configuration error.
        token = self._tokens.token_for(message.authority_cvr)
        with self._lock:
            if self._closed:
                raise DistributorUnavailable("the AMQP distributor is closed")
            try:
                reply = self._converse(message, token)
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                # The channel is fine; the broker refused this one message.
                log.warning("the broker refused a message at %s: %s", self._where, exc)
                raise DistributorUnavailable(
                    f"the broker did not route the message to exchange "
                    f"{self.settings.exchange!r}: {exc}"
                ) from exc
            except _NoReply:
                self._drop()
                timeout = self.settings.reply_timeout_seconds
                log.warning("no StandardRetur from %s within %s s", self._where, timeout)
                raise DistributorUnavailable(f"no reply within {timeout} s") from None
            except _BROKEN as exc:
                self._drop()
                log.warning("AMQP failure at %s: %s", self._where, _reason(exc))
                raise DistributorUnavailable(f"AMQP at {self._where}: {_reason(exc)}") from exc
            finally:
                self._waiting_for = None
                self._reply = None
        try:
            status, text = parse_standard_retur(reply)
        except ValueError as exc:
            raise DistributorUnavailable(f"unreadable reply: {exc}") from exc
        if status != STATUS_OK:
            detail = f"StatusKode {status}" + (
                f": {mask_cpr_numbers(text, touching_letters=True)}" if text else ""
            )
            raise DistributorRejected(detail, status=status)

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        try:
            lanes = self._ready_lanes(len(messages))
        except DistributorUnavailable as error:
            return {0: error} if messages else {}
        if len(lanes) == 1:
            return super().deliver_batch(messages)
        outcome: BatchOutcome = {}
        unavailable = threading.Event()
        cursor = iter(range(len(messages)))
        cursor_lock = threading.Lock()

        def work(lane: AmqpDistributor) -> None:
            while not unavailable.is_set():
                with cursor_lock:
                    index = next(cursor, None)
                if index is None:
                    return
                try:
                    lane.deliver(messages[index])
                except DistributorUnavailable as error:
                    outcome[index] = error
                    unavailable.set()
                except ServicePlatformError as error:
                    outcome[index] = error
                else:
                    outcome[index] = None

        assert self._pool is not None
        for future in [self._pool.submit(work, lane) for lane in lanes]:
            future.result()
        return outcome

    def _ready_lanes(self, size: int) -> list[AmqpDistributor]:
        wanted = max(1, min(self.settings.publishers, size))
        with self._lock:
            if self._closed:
                raise DistributorUnavailable("the AMQP distributor is closed")
            while len(self._lanes) < self.settings.publishers - 1:
                self._lanes.append(
                    AmqpDistributor(self.settings, self._tokens, base_dir=self._base_dir)
                )
            if self._pool is None and self.settings.publishers > 1:
                self._pool = ThreadPoolExecutor(
                    self.settings.publishers, thread_name_prefix="amqp-publisher"
                )
        return [self, *self._lanes][:wanted]

    def _converse(self, message: OutgoingMessage, token: str) -> bytes:
        channel = self._ready_channel()
        assert self._connection is not None
        self._waiting_for = message.besked_id
        self._reply = None
        properties = pika.BasicProperties(
            content_type="application/xml",
            delivery_mode=pika.DeliveryMode.Persistent,
            correlation_id=message.besked_id,
            message_id=message.besked_id,
            reply_to=REPLY_TO,
            headers={TOKEN_HEADER: token},
        )
        # With confirms on, this returns once the broker took the message, and raises
        # UnroutableError (mandatory, no queue bound) or NackError otherwise.
        channel.basic_publish(
            exchange=self.settings.exchange,
            routing_key=self.settings.routing_key,
            body=message.body,
            properties=properties,
            mandatory=True,
        )
        deadline = time.monotonic() + self.settings.reply_timeout_seconds
        while self._reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _NoReply
            # pika takes seconds as a float; types-pika-ts says int.
            self._connection.process_data_events(time_limit=remaining)  # type: ignore[arg-type]
        return self._reply

    def _ready_channel(self) -> BlockingChannel:
        if self._connection is not None and self._channel is not None:
            try:
                # Reads what arrived while idle: a close by the broker (or a lost socket)
                # shows up here, and is replaced instead of failing this message.
                self._connection.process_data_events(time_limit=0)
            except _BROKEN as exc:
                log.info("AMQP connection to %s was lost while idle: %s", self._where, exc)
                self._drop()
            else:
                if self._channel.is_open:
                    return self._channel
                self._drop()
        # Named now, not at construction: a process forked since then has another pid.
        self._parameters.client_properties = {"connection_name": connection_name()}
        connection = pika.BlockingConnection(self._parameters)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            # Direct reply-to: the consumer must exist before anything is published.
            channel.basic_consume(REPLY_TO, self._on_reply, auto_ack=True)
        except BaseException:
            _close_quietly(connection)
            raise
        self._connection, self._channel = connection, channel
        self.connections_opened += 1
        log.info("AMQP connection to %s opened", self._where)
        return channel

    def _on_reply(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        if self._waiting_for is not None and properties.correlation_id == self._waiting_for:
            self._reply = body
        else:
            # A reply to a message given up on earlier: its sender already reported SP-430.
            log.info("dropped a reply that came after its sender gave up")

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            _close_quietly(connection)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()
            lanes, self._lanes, pool, self._pool = self._lanes, [], self._pool, None
        for lane in lanes:
            lane.close()
        if pool is not None:
            pool.shutdown(wait=True)


def _close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except _BROKEN as exc:
        log.debug("closing a broken AMQP connection: %s", exc)


def _reason(exc: BaseException) -> str:
    """A short text for an error: never the message or its headers, only what failed."""
    if isinstance(exc, pika.exceptions.ConnectionClosed | pika.exceptions.ChannelClosed):
        return f"{type(exc).__name__} {exc.reply_code} {exc.reply_text}"
    # pika's connection failures have an empty str(); the cause is in their args' repr().
    text = str(exc) or ", ".join(repr(arg) for arg in exc.args)
    return f"{type(exc).__name__}: {text}"

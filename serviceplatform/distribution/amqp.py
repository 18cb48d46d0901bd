"""The AMQP transport: hand messages to Beskedfordeler and collect their ``StandardRetur``.

The conversation (AMQP 0-9-1, pika's asynchronous ``SelectConnection`` whose I/O loop the
delivering thread drives, as pika's own ``BlockingConnection`` does inside):

1. one connection and channel, opened on first use and kept for later messages; the channel
   has publisher confirms on and consumes RabbitMQ's direct reply-to pseudo-queue
   ``amq.rabbitmq.reply-to`` (auto-ack), which must happen before the first publish;
2. per message: publish to the exchange (``mandatory``, persistent, ``application/xml``) with
   ``reply_to``, ``correlation_id`` and ``message_id`` set to the BeskedId and the SAML token
   (XML text) in the ``token`` header; the broker's confirm says it took the message;
3. the reply with that correlation id, a ``StandardRetur`` whose ``StatusKode`` 20 means
   accepted, must come within ``reply_timeout_seconds`` of the publish.

A batch (``deliver_batch``) is pipelined: up to ``in_flight`` messages are published ahead
on the one channel, the broker's confirms are matched by delivery tag (one ``multiple`` ack
may confirm many) and the replies by correlation id, in whatever order they come. A message
counts as delivered only with both its confirm and a reply with StatusKode 20; one message
refused by the broker (returned as unroutable, or nacked) or answered with another StatusKode
fails alone, and nothing new is published after a refusal. When the connection is lost or a
reply is overdue the batch ends: the first message without an answer carries the error and
the others published with it are left out of the answer, so they stay pending and go again
(at least once; the BeskedId lets receivers drop a repeat). A stream of batches
(``deliver_stream``) with ``overlap`` takes the next batch as soon as the last one is all
published, so the window stays full across batches (two at most are open; each batch's outcome
is yielded, in order, once all of it is done); a failure then ends the stream, and the first
unanswered message of the oldest open batch carries it. One connection suffices: the
pipeline, not more connections, keeps many messages in flight (each blocking round trip
used to cost about 0.6 ms of CPU per message). Per message the pipeline does as little as it
can: the properties are pika's encoding made once per token and batch with the BeskedId
spliced in (``PropertiesTemplate``), the frames queued meanwhile leave in a few large writes
(``coalesce_output``; pika writes each frame on its own), and a ``StandardRetur`` body seen
before is not parsed again.

Errors: no answer in time, an unroutable or refused publish, and every pika, socket or TLS
failure become ``DistributorUnavailable``; a ``StatusKode`` other than 20 becomes
``DistributorRejected`` with ``.status``. A connection that failed (or timed out, which is
what a silently dead connection looks like) is dropped, so the next delivery reconnects; an
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
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

import pika
import pika.connection
import pika.exceptions
import pika.frame
import pika.spec
from lxml import etree
from pika.adapters.select_connection import IOLoop

from serviceplatform.config import AmqpDistributorSettings
from serviceplatform.distribution.base import (
    SAGDOK_NS,
    STATUS_OK,
    BatchOutcome,
    DistributorBase,
    OutgoingMessage,
)
from serviceplatform.distribution.choices import amqp_url_problem
from serviceplatform.distribution.tokens import TokenSource
from serviceplatform.errors import (
    ConfigurationError,
    DistributorRejected,
    DistributorUnavailable,
    ServicePlatformError,
)
from serviceplatform.logmask import mask_cpr_numbers

if TYPE_CHECKING:
    from pika.channel import Channel
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
# The largest write ``coalesce_output`` makes of queued frames.
_WRITE_CHUNK: Final = 256 * 1024


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
    problem = amqp_url_problem(settings.url)
    parts = urlsplit(settings.url)
    host = parts.hostname
    if problem is not None or host is None:
        raise ConfigurationError(f"[distributor.amqp] url {problem or 'has no host'}")
    port = parts.port
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


class _ThreadParser(threading.local):
    """One hardened parser per thread: making one per reply cost more than parsing it."""

    def __init__(self) -> None:
        self.parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


_PARSERS = _ThreadParser()


def parse_standard_retur(body: bytes) -> tuple[int, str | None]:
    """``(StatusKode, FejlbeskedTekst)`` of a ``StandardRetur``, with or without namespace.

    Raises ValueError when ``body`` is not XML or carries no integer ``StatusKode``. The
    answer for a short body is remembered: Beskedfordeler answers most messages with the very
    same bytes, and the same bytes always read the same.
    """
    known = _RETUR_SEEN.get(body)
    if known is not None:
        return known
    answer = _parse_standard_retur(body)
    if len(body) <= _RETUR_REMEMBERED_SIZE:
        if len(_RETUR_SEEN) >= _RETUR_REMEMBERED:
            _RETUR_SEEN.clear()
        _RETUR_SEEN[body] = answer
    return answer


#: Replies remembered by ``parse_standard_retur``, and the longest body remembered.
_RETUR_REMEMBERED: Final = 64
_RETUR_REMEMBERED_SIZE: Final = 1024
_RETUR_SEEN: dict[bytes, tuple[int, str | None]] = {}


def _parse_standard_retur(body: bytes) -> tuple[int, str | None]:
    try:
        root = etree.fromstring(body, _PARSERS.parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"the reply is not XML: {exc}") from exc
    status_text = next((e.text for e in root.iter(*_STATUS_KODE)), None)
    try:
        status = int((status_text or "").strip())
    except ValueError:
        raise ValueError("the reply has no integer StatusKode") from None
    fejl = next((e.text for e in root.iter(*_FEJLBESKED)), None)
    return status, (fejl.strip() or None) if fejl else None


# --- the properties of a publish --------------------------------------------------------------

#: Stands for the BeskedId in a template's encoding; a BeskedId is always a 36-character UUID.
_ID_PLACEHOLDER: Final = "00000000-0000-0000-0000-000000000000"


def publish_properties(
    besked_id: str, token: str, kind: type[pika.BasicProperties] = pika.BasicProperties
) -> pika.BasicProperties:
    """The properties of a message (see the module docstring), as pika would build them."""
    return kind(
        content_type="application/xml",
        delivery_mode=pika.DeliveryMode.Persistent,
        correlation_id=besked_id,
        message_id=besked_id,
        reply_to=REPLY_TO,
        headers={TOKEN_HEADER: token},
    )


class PropertiesTemplate:
    """pika's encoding of one token's properties, made once, with each message's id spliced in.

    The properties differ between a token's messages only in the BeskedId (correlation and
    message id), yet pika encodes every field, the 6 KB token header among them, for each
    publish: a third of the platform's CPU a message. The template is pika's own encoding
    with a placeholder id; ``properties(besked_id)`` puts the id where the placeholder was.
    When the placeholder is not found where it belongs (another pika), each message is
    encoded by pika as before.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        encoded = b"".join(publish_properties(_ID_PLACEHOLDER, token).encode())
        field = bytes([len(_ID_PLACEHOLDER)]) + _ID_PLACEHOLDER.encode("ascii")
        reply_to = bytes([len(REPLY_TO)]) + REPLY_TO.encode("ascii")
        # The last fields, in AMQP's order: correlation_id, reply_to, message_id.
        tail = field + reply_to + field
        self._head: bytes | None = None
        if encoded.endswith(tail):
            self._head = encoded[: -len(tail)] + field[:1]
            self._middle = reply_to + field[:1]

    def properties(self, besked_id: str) -> pika.BasicProperties:
        if self._head is None or len(besked_id) != len(_ID_PLACEHOLDER):
            return publish_properties(besked_id, self.token)
        id_bytes = besked_id.encode("ascii")
        properties = publish_properties(besked_id, self.token, _EncodedProperties)
        assert isinstance(properties, _EncodedProperties)
        properties.encoded = b"".join((self._head, id_bytes, self._middle, id_bytes))
        return properties


class _EncodedProperties(pika.BasicProperties):
    """Properties with their encoding made beforehand (see ``PropertiesTemplate``)."""

    encoded: bytes = b""

    def encode(self) -> list[bytes]:
        return [self.encoded]


# --- the distributor ------------------------------------------------------------------------


class _Window:
    """The state of one batch's messages on their way (internal).

    A message is done when the broker confirmed it and its reply arrived (either order), or
    when the broker refused it; ``outcome`` holds the answer of every message that is done.
    """

    def __init__(self, messages: Sequence[OutgoingMessage]) -> None:
        self.messages = messages
        self.outcome: BatchOutcome = {}
        #: The index of the next message to publish.
        self.following = 0
        #: Delivery tag -> message index, until the broker confirmed or refused it.
        self.by_tag: dict[int, int] = {}
        #: The tags in publishing order (entries already confirmed are skipped lazily).
        self.tags: deque[int] = deque()
        #: Correlation id (the BeskedId) -> message index, until its reply came.
        self.by_id: dict[str, int] = {}
        self.confirmed: set[int] = set()
        self.replies: dict[int, bytes] = {}
        #: (deadline, index) in publishing order, for the reply timeout.
        self.deadlines: deque[tuple[float, int]] = deque()
        #: The properties' encoding per authority: tokens are read once per batch.
        self.templates: dict[str, PropertiesTemplate] = {}
        self.in_flight = 0
        #: Set once a message was refused by the broker: nothing new is published.
        self.halted = False
        #: The failure that ends the stream (a publish on a broken channel).
        self.failure: DistributorUnavailable | None = None

    @property
    def published(self) -> bool:
        """Every message was published, or nothing more will be."""
        return self.following == len(self.messages) or self.halted

    @property
    def finished(self) -> bool:
        return self.in_flight == 0 and self.published

    def next_deadline(self) -> float | None:
        while self.deadlines and self.deadlines[0][1] in self.outcome:
            self.deadlines.popleft()
        return self.deadlines[0][0] if self.deadlines else None

    def done(self, index: int, error: ServicePlatformError | None) -> None:
        if index in self.outcome:
            return
        self.outcome[index] = error
        self.in_flight -= 1
        if isinstance(error, DistributorUnavailable):
            self.halted = True


class AmqpDistributor(DistributorBase):
    """Delivers messages to Beskedfordeler over AMQP; see the module docstring.

    One connection (pika's ``SelectConnection``, its I/O loop driven by the delivering
    thread), used by one delivery or stream of batches at a time; it is opened on the first
    delivery, so a broker that is down at start-up does not stop the platform from starting.
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
        self._parameters = connection_parameters(settings, Path(base_dir))
        self._where = f"{self._parameters.host}:{self._parameters.port}/{settings.virtual_host}"
        self._lock = threading.Lock()
        self._ioloop: IOLoop | None = None
        self._connection: pika.SelectConnection | None = None
        self._channel: Channel | None = None
        #: Why the connection or channel ended (set by pika's callbacks).
        self._lost: BaseException | None = None
        self._ready = False
        self._next_tag = 1
        #: The batches on their way, oldest first (at most two; none between deliveries).
        self._windows: deque[_Window] = deque()
        self._closed = False
        #: Connections opened so far (tests read it to see a reconnect).
        self.connections_opened = 0
        #: Batches taken while an earlier one was still on its way (``overlap``; tests read it).
        self.batches_overlapped = 0

    # --- the seam -----------------------------------------------------------------------------

    def deliver(self, message: OutgoingMessage) -> None:
        # Outside the batch: a missing token is a configuration error, raised as such.
        self._tokens.token_for(message.authority_cvr)
        error = self.deliver_batch([message]).get(0)
        if error is not None:
            raise error

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        if not messages:
            return {}
        stream = self.deliver_stream([messages])
        try:
            return next(stream)
        finally:
            stream.close()

    def deliver_stream(
        self, batches: Iterable[Sequence[OutgoingMessage]], *, overlap: bool = False
    ) -> Generator[BatchOutcome, None, None]:
        source = iter(batches)
        with self._lock:
            failure: DistributorUnavailable | None = None
            if self._closed:
                failure = DistributorUnavailable("the AMQP distributor is closed")
            else:
                try:
                    self._ready_channel()
                except DistributorUnavailable as error:
                    failure = error
            if failure is not None:
                first = next(source, None)
                if first is not None:
                    yield {0: failure} if first else {}
                return
            try:
                yield from self._pipeline(source, overlap)
            finally:
                # Abandoned (the caller stopped, or taking a batch failed): late confirms
                # and replies find no window and are dropped.
                self._windows.clear()

    def _pipeline(
        self, source: Iterator[Sequence[OutgoingMessage]], overlap: bool
    ) -> Generator[BatchOutcome, None, None]:
        """Publish up to ``in_flight`` messages ahead, batch after batch, until each is done
        or the stream fails; yield each batch's outcome as soon as all of it is done."""
        windows, limit = self._windows, max(1, self.settings.in_flight)
        exhausted = halted = False
        while True:
            if halted or any(w.halted for w in windows):
                # A refusal: nothing new is published, in its batch or a later one.
                halted = True
                for window in windows:
                    window.halted = True
            # The next batch: when nothing is open, or (overlap) when the newest is published.
            if (
                not exhausted
                and not halted
                and (not windows or (overlap and len(windows) < 2 and windows[-1].published))
            ):
                batch = next(source, None)
                if batch is None:
                    exhausted = True
                else:
                    self.batches_overlapped += 1 if windows else 0
                    windows.append(_Window(batch))
            if windows and not halted:
                newest = windows[-1]
                self._fill(newest, limit - sum(w.in_flight for w in windows))
                if newest.failure is not None:
                    yield from self._fail(newest.failure)
                    return
            while windows and windows[0].finished:
                window = windows.popleft()
                halted = halted or window.halted
                yield window.outcome
            if not windows:
                if exhausted or halted:
                    return
                continue
            pending = [d for d in (w.next_deadline() for w in windows) if d is not None]
            deadline = min(pending) if pending else time.monotonic()
            if time.monotonic() >= deadline:
                timeout = self.settings.reply_timeout_seconds
                log.warning("no StandardRetur from %s within %s s", self._where, timeout)
                # A silently dead connection looks like this: the next delivery starts afresh.
                self._drop()
                yield from self._fail(DistributorUnavailable(f"no reply within {timeout} s"))
                return
            self._pump(deadline)
            if self._lost is not None:
                log.warning("AMQP failure at %s: %s", self._where, _reason(self._lost))
                failure = DistributorUnavailable(f"AMQP at {self._where}: {_reason(self._lost)}")
                self._drop()
                yield from self._fail(failure)
                return

    def _fill(self, window: _Window, room: int) -> None:
        """Publish the window's next messages while the pipeline has ``room``."""
        messages = window.messages
        while room > 0 and window.following < len(messages) and not window.halted:
            message = messages[window.following]
            if any(message.besked_id in w.by_id for w in self._windows):
                break  # the same BeskedId twice: the second waits for the first's reply
            try:
                # Read once per authority and batch (a file source reads its file).
                template = window.templates.get(message.authority_cvr)
                if template is None:
                    token = self._tokens.token_for(message.authority_cvr)
                    template = PropertiesTemplate(token)
                    window.templates[message.authority_cvr] = template
            except ServicePlatformError as error:
                window.outcome[window.following] = error
            else:
                self._publish(window, window.following, template)
                room -= 1
            window.following += 1

    def _fail(self, failure: DistributorUnavailable) -> Iterator[BatchOutcome]:
        """The open batches' outcomes after ``failure``, which ends the stream.

        The first message without an answer carries the failure; the others sent with it are
        left out (unknown: the broker or Beskedfordeler may have them), so they stay pending
        and go again: at least once.
        """
        windows, carried = self._windows, False
        while windows:
            window = windows.popleft()
            outcome = window.outcome
            if not carried:
                first = next((i for i in range(len(window.messages)) if i not in outcome), None)
                if first is not None:
                    outcome[first] = failure
                    carried = True
            yield outcome

    def _publish(self, window: _Window, index: int, template: PropertiesTemplate) -> None:
        assert self._channel is not None
        message = window.messages[index]
        properties = template.properties(message.besked_id)
        try:
            self._channel.basic_publish(
                exchange=self.settings.exchange,
                routing_key=self.settings.routing_key,
                body=message.body,
                properties=properties,
                mandatory=True,
            )
        except _BROKEN as exc:
            # The channel closed under us (the callbacks say why at the next pump).
            self._lost = self._lost or exc
            window.failure = DistributorUnavailable(f"AMQP at {self._where}: {_reason(exc)}")
            window.halted = True
            return
        tag, self._next_tag = self._next_tag, self._next_tag + 1
        window.by_tag[tag] = index
        window.tags.append(tag)
        window.by_id[message.besked_id] = index
        window.deadlines.append((time.monotonic() + self.settings.reply_timeout_seconds, index))
        window.in_flight += 1

    def _by_id(self, correlation_id: str | None) -> tuple[_Window, int] | None:
        """The open batch and index of the message with this BeskedId (forgotten now)."""
        for window in self._windows:
            index = window.by_id.pop(correlation_id or "", None)
            if index is not None:
                return window, index
        return None

    # --- pika's callbacks (run inside _pump, in the delivering thread) -----------------------

    def _on_confirm(self, frame: pika.frame.Method[Any]) -> None:
        method = frame.method
        tag, multiple = method.delivery_tag, method.multiple
        nacked = isinstance(method, pika.spec.Basic.Nack)
        for window in self._windows:
            if multiple:
                indexes = []
                while window.tags and window.tags[0] <= tag:
                    index = window.by_tag.pop(window.tags.popleft(), None)
                    if index is not None:
                        indexes.append(index)
            else:
                one = window.by_tag.pop(tag, None)
                indexes = [] if one is None else [one]
            for index in indexes:
                if nacked:
                    window.by_id.pop(window.messages[index].besked_id, None)
                    log.warning("the broker refused a message at %s (nack)", self._where)
                    window.done(
                        index,
                        DistributorUnavailable(
                            f"the broker did not take the message for exchange "
                            f"{self.settings.exchange!r} (nack)"
                        ),
                    )
                elif index not in window.outcome:
                    window.confirmed.add(index)
                    if index in window.replies:
                        self._answered(window, index)

    def _on_return(
        self,
        channel: Channel,
        method: Basic.Return,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        found = self._by_id(properties.correlation_id)
        if found is None:
            return
        window, index = found
        # RabbitMQ sends the return before the confirm; the message is done now.
        log.warning("the broker returned a message at %s: %s", self._where, method.reply_text)
        window.done(
            index,
            DistributorUnavailable(
                f"the broker did not route the message to exchange "
                f"{self.settings.exchange!r}: {method.reply_code} {method.reply_text}"
            ),
        )

    def _on_reply(
        self,
        channel: Channel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        found = self._by_id(properties.correlation_id)
        if found is None:
            # A reply to a message given up on earlier: its sender already reported SP-430.
            log.info("dropped a reply that came after its sender gave up")
            return
        window, index = found
        window.replies[index] = body
        if index in window.confirmed:
            self._answered(window, index)

    @staticmethod
    def _answered(window: _Window, index: int) -> None:
        """Both the confirm and the reply are here: the message is done."""
        body = window.replies.pop(index)
        window.confirmed.discard(index)
        try:
            status, text = parse_standard_retur(body)
        except ValueError as exc:
            window.done(index, DistributorUnavailable(f"unreadable reply: {exc}"))
            return
        if status == STATUS_OK:
            window.done(index, None)
            return
        detail = f"StatusKode {status}" + (
            f": {mask_cpr_numbers(text, touching_letters=True)}" if text else ""
        )
        window.done(index, DistributorRejected(detail, status=status))

    def _on_lost(self, _what: object, reason: BaseException) -> None:
        self._lost = self._lost or reason
        self._ready = False

    # --- the connection -----------------------------------------------------------------------

    def _pump(self, deadline: float) -> None:
        """Handle what arrived (waiting for it until ``deadline`` at most)."""
        assert self._ioloop is not None
        try:
            coalesce_output(self._connection)
            poll_once(self._ioloop, deadline)
        except _BROKEN as exc:
            # pika reports most failures through the close callbacks; this is the rest.
            self._lost = self._lost or exc

    def _ready_channel(self) -> None:
        """An open channel with confirms and the reply consumer, or DistributorUnavailable."""
        if self._connection is not None:
            # Reads what arrived while idle: a close by the broker (or a lost socket) shows up
            # here, and is replaced instead of failing this batch.
            self._pump(time.monotonic())
            if self._ready and self._lost is None:
                return
            log.info(
                "AMQP connection to %s was lost while idle: %s",
                self._where,
                _reason(self._lost) if self._lost else "closed",
            )
            self._drop()
        # Named now, not at construction: a process forked since then has another pid.
        self._parameters.client_properties = {"connection_name": connection_name()}
        ioloop = IOLoop()
        ioloop.activate_poller()
        self._ioloop, self._lost, self._ready, self._next_tag = ioloop, None, False, 1
        self._connection = pika.SelectConnection(
            self._parameters,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_lost,
            on_close_callback=self._on_lost,
            custom_ioloop=ioloop,
        )
        deadline = time.monotonic() + self.settings.connect_timeout_seconds
        while not self._ready and self._lost is None and time.monotonic() < deadline:
            self._pump(deadline)
        if not self._ready:
            reason = _reason(self._lost) if self._lost else "no answer in time"
            self._drop()
            log.warning("AMQP failure at %s: %s", self._where, reason)
            raise DistributorUnavailable(f"AMQP at {self._where}: {reason}")
        self.connections_opened += 1
        log.info("AMQP connection to %s opened", self._where)

    def _on_connection_open(self, connection: pika.connection.Connection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_lost)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=self._on_confirm_select)

    def _on_confirm_select(self, _frame: object) -> None:
        assert self._channel is not None
        # Direct reply-to: the consumer must exist before anything is published.
        self._channel.basic_consume(
            REPLY_TO, self._on_reply, auto_ack=True, callback=self._on_consuming
        )

    def _on_consuming(self, _frame: object) -> None:
        self._ready = True

    def _drop(self) -> None:
        """Close the connection (briefly waiting for the broker's answer) and forget it."""
        connection, ioloop = self._connection, self._ioloop
        self._connection, self._channel, self._ioloop, self._ready = None, None, None, False
        if connection is None or ioloop is None:
            return
        try:
            if not (connection.is_closing or connection.is_closed):
                connection.close()
            deadline = time.monotonic() + min(1.0, self.settings.connect_timeout_seconds)
            while not connection.is_closed and time.monotonic() < deadline:
                poll_once(ioloop, deadline)
        except _BROKEN as exc:
            log.debug("closing a broken AMQP connection: %s", exc)
        finally:
            ioloop.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()


def coalesce_output(connection: object) -> None:
    """Join the frames pika queued for sending, so they leave in a few large writes.

    pika sends each frame it queued with a ``send`` of its own: three a message (method,
    header, body), and on the loopback each write costs the kernel, and the broker's reading
    of it, about as much as the message's whole handling in Python. Joined, the frames of a
    window leave together. The first buffer is never touched: after a TLS write that wants to
    be retried, OpenSSL needs the same bytes again.
    """
    transport = getattr(connection, "_transport", None)
    buffers = getattr(transport, "_tx_buffers", None)
    if not isinstance(buffers, deque) or len(buffers) <= 2:
        return
    head = buffers.popleft()
    joined: list[bytes] = []
    group: list[bytes] = []
    size = 0
    for data in buffers:
        group.append(data)
        size += len(data)
        # Bounded chunks: a partial send copies the rest of its chunk.
        if size >= _WRITE_CHUNK:
            joined.append(b"".join(group))
            group, size = [], 0
    if group:
        joined.append(b"".join(group))
    buffers.clear()
    buffers.append(head)
    buffers.extend(joined)


def poll_once(ioloop: IOLoop, deadline: float) -> None:
    """Run the I/O loop once: handle what arrived, waiting for it until ``deadline`` at most."""
    # The poller waits until the next timer: this one bounds the wait.
    wake = ioloop.call_later(  # type: ignore[no-untyped-call]  # untyped in types-pika-ts
        max(0.0, deadline - time.monotonic()), _nothing
    )
    try:
        ioloop.poll()
        ioloop.process_timeouts()
    finally:
        ioloop.remove_timeout(wake)


def _nothing() -> None:
    """A timer callback that only wakes the poller."""


def _reason(exc: BaseException) -> str:
    """A short text for an error: never the message or its headers, only what failed."""
    if isinstance(exc, pika.exceptions.ConnectionClosed | pika.exceptions.ChannelClosed):
        return f"{type(exc).__name__} {exc.reply_code} {exc.reply_text}"
    # pika's connection failures have an empty str(); the cause is in their args' repr().
    text = str(exc) or ", ".join(repr(arg) for arg in exc.args)
    return f"{type(exc).__name__}: {text}"

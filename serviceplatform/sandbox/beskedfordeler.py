"""A simulated Beskedfordeler: consumes ``Haendelsesbesked`` messages over AMQP and answers.

It runs in a thread with its own pika connection (the asynchronous ``SelectConnection``, so
that answers leave in bulk) to a real broker (RabbitMQ). It declares the
exchange (durable, ``direct`` by default) and a durable queue bound to it, and for each
message checks, in this order, what the real distributor checks:

======  =================================================================================
status  meaning (``StandardRetur/StatusKode``)
======  =================================================================================
20      accepted: the message is recorded
40      the body is not well-formed XML, not a ``{urn:oio:besked:kuvert:1.0}Haendelsesbesked``
        or has no ``BeskedId``
41      the ``token`` header is missing, is not a readable SAML assertion, has expired, or
        (with ``trusted_sts_cert``) is not signed by that STS; or it names no authority CVR
42      an ``ObjektAnsvarligMyndighed`` is missing or differs from ``urn:oio:cvr-nr:<CVR>``
        of the token
======  =================================================================================

The reply, a ``StandardRetur`` (namespace ``urn:oio:sagdok:3.0.0``), goes to the message's
``reply_to`` (RabbitMQ direct reply-to) with the same ``correlation_id``; the message is acked
after the reply is published (one ``multiple`` ack for the messages answered in one turn of
the I/O loop; up to 256 unacked). A token is verified in full once and remembered (the
platform reuses one per authority); later messages with the same text have only its expiry
checked again, and their record shares the remembered text. The replies and acks of one turn
leave in a few writes (``coalesce_output``). ``fail_next(status, count)`` makes the next
replies carry ``status`` without recording anything. When the broker connection is lost the thread
reconnects (messages wait in the durable queue meanwhile); ``stop()`` ends it.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

import pika
import pika.exceptions
from cryptography import x509
from lxml import etree
from pika.adapters.select_connection import IOLoop

from serviceplatform.distribution.amqp import coalesce_output, poll_once, protect_pika_logging
from serviceplatform.distribution.base import KUVERT_NS, SAGDOK_NS, STATUS_OK
from serviceplatform.errors import ConfigurationError, SecurityError
from serviceplatform.security.certs import KnownCert, known_cert
from serviceplatform.security.token import AssertionFacts, read_assertion
from serviceplatform.security.xmldsig_verify import (
    SignatureFormatError,
    digest_matches,
    parse_signature,
    signature_value_valid,
)

if TYPE_CHECKING:
    from pika.channel import Channel
    from pika.spec import Basic, BasicProperties

log = logging.getLogger(__name__)

#: Accepted tokens remembered (one per authority and token lifetime in practice).
_TOKENS_REMEMBERED = 1024

STATUS_MALFORMED: Final = 40
STATUS_TOKEN: Final = 41
STATUS_AUTHORITY: Final = 42

_HAENDELSESBESKED: Final = f"{{{KUVERT_NS}}}Haendelsesbesked"
_NAMESPACES: Final = {"k": KUVERT_NS, "s": SAGDOK_NS}
_BESKED_ID_PATH: Final = "k:BeskedId/s:UUIDIdentifikator"
_AUTHORITY_PATH: Final = (
    "k:Beskedkuvert/k:Filtreringsdata/k:ObjektRegistrering/k:ObjektAnsvarligMyndighed"
    "/s:URNIdentifikator"
)
_CVR: Final = re.compile(r"[0-9]{8}")
_BROKEN: Final = (pika.exceptions.AMQPError, OSError)
#: Seconds between reconnection attempts after the broker connection was lost.
RECONNECT_DELAY: Final = 0.5
# How often the consumer loop looks at the stop flag.
_POLL_SECONDS: Final = 0.1
#: Messages the broker hands over before their acks: enough for a publisher's whole window.
_PREFETCH: Final = 256


class _ThreadParser(threading.local):
    """One hardened parser per thread: making one per message cost more than parsing it.

    The paths are compiled XPath, evaluated by libxml2: ``findtext``/``iterfind`` walked the
    tree in Python, an object per element on the way, which cost half as much as parsing.
    Like the parser, they are kept per thread.
    """

    def __init__(self) -> None:
        self.parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        self.besked_id = etree.XPath(_BESKED_ID_PATH, namespaces=_NAMESPACES)
        self.authorities = etree.XPath(_AUTHORITY_PATH, namespaces=_NAMESPACES)


_PARSERS = _ThreadParser()


def _elements(path: etree.XPath, root: etree._Element) -> list[etree._Element]:
    """The elements a compiled path selects under ``root``."""
    found = path(root)
    return [e for e in found if isinstance(e, etree._Element)] if isinstance(found, list) else []


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the simulated distributor accepted (StatusKode 20)."""

    besked_id: str
    authority_cvr: str
    body: bytes
    #: The AMQP message headers as received (``token`` among them).
    headers: Mapping[str, object] = field(default_factory=dict)


class Refusal(Exception):
    """Why a message is refused: the ``StatusKode`` and ``FejlbeskedTekst`` of the reply."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text}")
        self.status = status
        self.text = text


def standard_retur(status: int, text: str | None = None) -> bytes:
    """A ``StandardRetur`` document with ``status`` and, when given, ``FejlbeskedTekst``."""
    # Parsed from text to get the default namespace of the real replies (lxml-stubs type
    # nsmap keys as str, so {None: ...} would need a cast).
    root = etree.fromstring(f'<StandardRetur xmlns="{SAGDOK_NS}"/>')
    etree.SubElement(root, f"{{{SAGDOK_NS}}}StatusKode").text = str(status)
    if text:
        etree.SubElement(root, f"{{{SAGDOK_NS}}}FejlbeskedTekst").text = text
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


class SimulatedBeskedfordeler:
    """The simulated distributor; a context manager (``start()`` on enter, ``stop()`` on exit).

    ``delete_on_stop`` removes the queue and the exchange when stopping (for tests that use
    names of their own). Thread-safe accessors: ``received``, ``clear()``, ``fail_next()``.
    """

    def __init__(
        self,
        amqp_url: str,
        *,
        virtual_host: str = "BF",
        exchange: str = "AFSEND_BESKED_EXCHANGE",
        trusted_sts_cert: Path | None = None,
        queue: str | None = None,
        exchange_type: str = "direct",
        routing_key: str = "",
        delete_on_stop: bool = False,
        connect_timeout: float = 10.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if exchange_type not in ("direct", "fanout"):
            raise ConfigurationError(f"exchange type {exchange_type!r} is not direct or fanout")
        protect_pika_logging()
        self.exchange = exchange
        self.queue = queue or f"{exchange}.beskedfordeler"
        self.exchange_type = exchange_type
        self.routing_key = routing_key
        self.delete_on_stop = delete_on_stop
        self.connect_timeout = connect_timeout
        self._clock = clock
        self._parameters = pika.URLParameters(amqp_url)
        self._parameters.virtual_host = virtual_host
        self._parameters.connection_attempts = 1
        self._parameters.client_properties = {"connection_name": "simulated-beskedfordeler"}
        self._trusted = _load_trusted(trusted_sts_cert) if trusted_sts_cert else None
        #: Accepted token text -> (authority CVR, NotOnOrAfter, the text); see ``_token_cvr``.
        self._tokens_seen: dict[str, tuple[str, datetime, str]] = {}
        self._lock = threading.Lock()
        self._received: list[ReceivedMessage] = []
        self._forced: list[int] = []
        self._stopping = threading.Event()
        self._connected = threading.Event()
        # Set once the first connection attempt has either consumed or failed.
        self._first_attempt = threading.Event()
        self._first_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._connections_opened = 0

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Start the consumer thread; returns once it consumes, or raises ConfigurationError."""
        if self._thread is not None:
            return self
        if self._stopping.is_set():
            raise ConfigurationError("a stopped simulated Beskedfordeler cannot start again")
        self._thread = threading.Thread(
            target=self._run, name="simulated-beskedfordeler", daemon=True
        )
        self._thread.start()
        if not self._first_attempt.wait(self.connect_timeout) or self._first_error is not None:
            error = self._first_error or "no answer in time"
            self.stop()
            raise ConfigurationError(
                f"the simulated Beskedfordeler cannot consume from the broker: {error}"
            )
        return self

    def stop(self) -> None:
        """Stop consuming, close the connection (deleting queue and exchange if asked)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.connect_timeout + 5)

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the thread consumes (again, after a lost connection)."""
        return self._connected.wait(timeout)

    @property
    def connections_opened(self) -> int:
        with self._lock:
            return self._connections_opened

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- test hooks -----------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedMessage]:
        """The accepted messages, oldest first (a copy)."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget the recorded messages and pending forced replies."""
        with self._lock:
            self._received.clear()
            self._forced.clear()

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` messages with ``status``, without recording them."""
        with self._lock:
            self._forced.extend([status] * count)

    # --- judging a message (no I/O) -------------------------------------------------------

    def judge(self, body: bytes, headers: Mapping[str, object]) -> ReceivedMessage:
        """The record of an acceptable message; raises :class:`Refusal` otherwise."""
        local = _PARSERS
        try:
            root = etree.fromstring(body, local.parser)
        except etree.XMLSyntaxError as exc:
            raise Refusal(STATUS_MALFORMED, f"the message is not well-formed XML: {exc}") from exc
        if root.tag != _HAENDELSESBESKED:
            raise Refusal(STATUS_MALFORMED, f"the message is not a {_HAENDELSESBESKED}")
        found = _elements(local.besked_id, root)
        besked_id = (found[0].text or "").strip() if found else ""
        if not besked_id:
            raise Refusal(STATUS_MALFORMED, "the message has no BeskedId/UUIDIdentifikator")
        cvr, token = self._token_cvr(headers.get("token"))
        expected = f"urn:oio:cvr-nr:{cvr}"
        named = [(e.text or "").strip() for e in _elements(local.authorities, root)]
        if not named:
            raise Refusal(STATUS_AUTHORITY, "the message names no ObjektAnsvarligMyndighed")
        wrong = [urn for urn in named if urn != expected]
        if wrong:
            raise Refusal(
                STATUS_AUTHORITY,
                f"ObjektAnsvarligMyndighed {wrong[0]} is not the token's authority {expected}",
            )
        recorded = dict(headers)
        if isinstance(recorded.get("token"), str):
            # The remembered text, not this message's copy: a night's messages share one.
            recorded["token"] = token
        return ReceivedMessage(besked_id, cvr, body, recorded)

    def _token_cvr(self, header: object) -> tuple[str, str]:
        """The authority CVR of an acceptable token header, and its text (one per token)."""
        if isinstance(header, bytes):
            header = header.decode("utf-8", "replace")
        if not isinstance(header, str) or not header.strip():
            raise Refusal(STATUS_TOKEN, "the message has no token header")
        # A token is reused for many messages; the same text was judged the same way before,
        # so only its expiry is checked again (a night's delivery would otherwise be bounded
        # by this simulator's signature checks).
        known = self._tokens_seen.get(header)
        if known is not None:
            cvr, not_on_or_after, text = known
            if self._clock() >= not_on_or_after:
                raise Refusal(STATUS_TOKEN, f"the token expired at {not_on_or_after}")
            return cvr, text
        parser = _PARSERS.parser
        try:
            facts = read_assertion(etree.fromstring(header.strip().encode("utf-8"), parser))
        except etree.XMLSyntaxError as exc:
            raise Refusal(STATUS_TOKEN, "the token is not XML") from exc
        except SecurityError as exc:
            raise Refusal(STATUS_TOKEN, f"the token is malformed: {exc.error_text}") from exc
        if self._clock() >= facts.not_on_or_after:
            raise Refusal(STATUS_TOKEN, f"the token expired at {facts.not_on_or_after}")
        if self._trusted is not None and not _signed_by(facts, self._trusted):
            raise Refusal(STATUS_TOKEN, "the token is not signed by the trusted STS")
        if len(facts.cvr_values) != 1 or not _CVR.fullmatch(facts.cvr_values[0]):
            raise Refusal(STATUS_TOKEN, "the token names no authority CVR")
        if len(self._tokens_seen) >= _TOKENS_REMEMBERED:
            self._tokens_seen.clear()
        self._tokens_seen[header] = (facts.cvr_values[0], facts.not_on_or_after, header)
        return facts.cvr_values[0], header

    # --- the consumer thread --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._serve()
            except _BROKEN as exc:
                if not self._first_attempt.is_set():
                    self._first_error = exc
                    self._first_attempt.set()
                    return
                if not self._stopping.is_set():
                    log.warning("simulated Beskedfordeler lost the broker: %s; reconnecting", exc)
                    self._stopping.wait(RECONNECT_DELAY)

    def _serve(self) -> None:
        """One connection's life: declare, consume and answer until stopping or lost.

        pika's asynchronous ``SelectConnection``, its I/O loop driven here: a reply and an
        ack are queued, not flushed one by one, so the answers to many messages leave in
        one write (the blocking adapter's flush per call capped this simulator at a few
        hundred messages a second).
        """
        ioloop = IOLoop()
        ioloop.activate_poller()
        session = _Session(self, ioloop)
        try:
            session.open()
            with self._lock:
                self._connections_opened += 1
            self._connected.set()
            self._first_attempt.set()
            while not self._stopping.is_set():
                session.pump(time.monotonic() + _POLL_SECONDS)
            session.finish(delete=self.delete_on_stop)
        finally:
            self._connected.clear()
            session.close()
            ioloop.close()

    def _on_message(
        self,
        channel: Channel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        status, text = self._answer(body, dict(properties.headers or {}))
        if properties.reply_to:
            channel.basic_publish(
                exchange="",
                routing_key=properties.reply_to,
                body=_reply(status, text),
                properties=pika.BasicProperties(
                    correlation_id=properties.correlation_id, content_type="application/xml"
                ),
            )
        else:
            log.warning("a message without reply_to was consumed; answered nothing")
        # The ack follows (see _Session.pump), after the reply on the same connection.

    def _answer(self, body: bytes, headers: dict[str, object]) -> tuple[int, str | None]:
        with self._lock:
            forced = self._forced.pop(0) if self._forced else None
        if forced is not None:
            return forced, "simulated failure (fail_next)"
        try:
            record = self.judge(body, headers)
        except Refusal as refusal:
            return refusal.status, refusal.text
        except Exception:
            # A bug here must not leave the message unacked and redelivered forever.
            log.exception("the simulated Beskedfordeler failed to judge a message")
            return STATUS_MALFORMED, "the simulated Beskedfordeler could not read the message"
        with self._lock:
            self._received.append(record)
        return STATUS_OK, None


class _Session:
    """One broker connection of the simulator: its set-up, I/O loop and orderly end."""

    def __init__(self, owner: SimulatedBeskedfordeler, ioloop: IOLoop) -> None:
        self.owner = owner
        self.ioloop = ioloop
        self.connection: pika.SelectConnection | None = None
        self.channel: Channel | None = None
        self.consumer_tag: str | None = None
        self.lost: BaseException | None = None
        #: Set by the callback of the step awaited (declare, bind, consume, delete, ...).
        self.step_done = False
        #: The delivery tag of the last message answered and not yet acked.
        self.ack_due: int | None = None

    def pump(self, deadline: float) -> None:
        if self.ack_due is not None and self.channel is not None:
            # One ack for every message answered in the last round (their replies were queued
            # first): an ack per message cost the broker and this simulator as much as the
            # reply.
            self.channel.basic_ack(delivery_tag=self.ack_due, multiple=True)
            self.ack_due = None
        # The round's replies and the ack leave in a few writes, not three per reply.
        coalesce_output(self.connection)
        poll_once(self.ioloop, deadline)
        if self.lost is not None:
            raise self.lost

    def _on_delivery(
        self,
        channel: Channel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        self.owner._on_message(channel, method, properties, body)
        self.ack_due = method.delivery_tag

    def step(self, start: Callable[[Callable[[object], None]], object]) -> None:
        """Start one asynchronous step and wait for its callback (or the time-out)."""
        self.step_done = False
        start(self._done)
        self.wait()

    def wait(self) -> None:
        deadline = time.monotonic() + self.owner.connect_timeout
        while not self.step_done:
            if time.monotonic() >= deadline:
                raise pika.exceptions.AMQPConnectionError("the broker did not answer in time")
            self.pump(deadline)

    def _done(self, _frame: object) -> None:
        self.step_done = True

    def _on_lost(self, _what: object, reason: BaseException) -> None:
        self.lost = self.lost or reason

    def _on_channel(self, channel: Channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._on_lost)
        self.step_done = True

    def open(self) -> None:
        owner = self.owner
        self.step_done = False
        self.connection = connection = pika.SelectConnection(
            owner._parameters,
            on_open_callback=self._done,
            on_open_error_callback=self._on_lost,
            on_close_callback=self._on_lost,
            custom_ioloop=self.ioloop,
        )
        self.wait()
        self.step(lambda done: connection.channel(on_open_callback=self._on_channel))
        channel = self.channel
        assert channel is not None
        self.step(
            lambda done: channel.exchange_declare(
                owner.exchange, exchange_type=owner.exchange_type, durable=True, callback=done
            )
        )
        self.step(lambda done: channel.queue_declare(owner.queue, durable=True, callback=done))
        self.step(
            lambda done: channel.queue_bind(
                owner.queue, owner.exchange, routing_key=owner.routing_key, callback=done
            )
        )
        self.step(lambda done: channel.basic_qos(prefetch_count=_PREFETCH, callback=done))
        self.step_done = False
        self.consumer_tag = channel.basic_consume(
            owner.queue, self._on_delivery, callback=self._done
        )
        self.wait()

    def finish(self, *, delete: bool) -> None:
        """Stop consuming and, when asked, delete the queue and the exchange."""
        channel = self.channel
        assert channel is not None and self.consumer_tag is not None
        tag = self.consumer_tag
        # Cancelled first: a queue deleted under its consumer makes pika warn at close.
        self.step(lambda done: channel.basic_cancel(tag, callback=done))
        self.pump(time.monotonic())  # the last ack
        if delete:
            owner = self.owner
            self.step(lambda done: channel.queue_delete(owner.queue, callback=done))
            self.step(lambda done: channel.exchange_delete(owner.exchange, callback=done))

    def close(self) -> None:
        connection = self.connection
        if connection is None:
            return
        try:
            if not (connection.is_closing or connection.is_closed):
                connection.close()
            deadline = time.monotonic() + 2.0
            while not connection.is_closed and time.monotonic() < deadline:
                poll_once(self.ioloop, deadline)
        except _BROKEN as exc:
            log.debug("closing the simulated Beskedfordeler's connection: %s", exc)


@functools.lru_cache(maxsize=64)
def _reply(status: int, text: str | None) -> bytes:
    """``standard_retur`` of an answer; the same few answers recur, so each is built once."""
    return standard_retur(status, text)


def _load_trusted(path: Path) -> KnownCert:
    try:
        return known_cert(x509.load_pem_x509_certificate(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"the trusted STS certificate {path}: {exc}") from exc


def _signed_by(facts: AssertionFacts, trusted: KnownCert) -> bool:
    """Whether the assertion carries an intact enveloped signature by ``trusted``'s key."""
    try:
        signature = parse_signature(facts.signature, allow_enveloped=True)
        references = signature.references
        if len(references) != 1 or references[0].target_id != facts.assertion_id:
            return False
        if not references[0].enveloped:
            return False
        if not digest_matches(references[0], facts.element, facts.signature):
            return False
    except SignatureFormatError:
        return False
    return trusted.rsa_key is not None and signature_value_valid(signature, trusted.rsa_key)

"""The seam between the platform and the message distributor (Beskedfordeler).

A ``Distributor`` hands one finished ``Haendelsesbesked`` (``OutgoingMessage``) to the
distributor and returns only once the distributor has it: it raises ``DistributorUnavailable``
(SP-430) when the distributor cannot be reached or did not answer, and ``DistributorRejected``
(SP-431) when it answered with a ``StandardRetur`` other than 20. Both are retryable: the
caller keeps the message and tries again later (at least once; the ``BeskedId`` lets the
receivers drop a repeat).

``deliver_batch`` hands over many messages at once, so a transport can make them durable
together (the file drop) or have several in flight (AMQP); it answers per message index:
None when the distributor has it, else the error. Once the distributor is unavailable the
messages not yet tried are left out of the answer (they wait for the next round), and so are
messages handed over whose fate is unknown (AMQP: published, not yet confirmed and answered).

``deliver_stream`` hands over a stream of batches and yields each batch's outcome (as
``deliver_batch`` answers it) in the batches' order. It takes the next batch from the iterable
only when it can use it: by default once the previous outcome was taken (the implementations'
common base), so the caller may finish with one batch before it makes the next. With
``overlap`` a transport that keeps messages in flight (AMQP) takes the next batch while the
previous one's answers are still coming, so its pipeline does not empty between batches; at
most two batches are then open at once. Once the distributor is unavailable no further batch
is taken: the batches already taken get their outcomes, and the stream ends.

Implementations: :class:`~serviceplatform.distribution.file_drop.FileDropDistributor` (one
file per message, for a pick-up process or the embedded default),
:class:`~serviceplatform.distribution.amqp.AmqpDistributor` (the real Beskedfordeler) and
:class:`MemoryDistributor` here, the fake for unit tests.
:func:`~serviceplatform.distribution.factory.distributor_from_settings` picks one by
configuration; this module names no implementation, so they can all import it.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Protocol, Self

from serviceplatform.closing import Closing
from serviceplatform.errors import DistributorUnavailable, ServicePlatformError

#: What ``deliver_batch`` answers: message index -> None (delivered) or the error.
BatchOutcome = dict[int, ServicePlatformError | None]

#: The envelope namespace of a ``Haendelsesbesked``.
KUVERT_NS: Final = "urn:oio:besked:kuvert:1.0"
#: The namespace of ``StandardRetur`` and of the identifiers inside the envelope.
SAGDOK_NS: Final = "urn:oio:sagdok:3.0.0"
#: ``StandardRetur/StatusKode`` of a message the distributor accepted.
STATUS_OK: Final = 20

# Canonical hyphenated UUID text; the BeskedId becomes a file name, so nothing else may pass.
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_CVR: Final = re.compile(r"[0-9]{8}")


@dataclass(frozen=True)
class OutgoingMessage:
    """One ``Haendelsesbesked`` ready for the distributor.

    ``besked_id`` is the message's ``BeskedId`` (a UUID in its hyphenated text form),
    ``authority_cvr`` the authority the message is sent for (its ``ObjektAnsvarligMyndighed``,
    and the CVR the token must carry), ``body`` the XML document as bytes.
    """

    besked_id: str
    authority_cvr: str
    body: bytes

    def __post_init__(self) -> None:
        if not _UUID.fullmatch(self.besked_id):
            raise ValueError(f"BeskedId {self.besked_id!r} is not a UUID")
        if not _CVR.fullmatch(self.authority_cvr):
            raise ValueError(f"authority CVR {self.authority_cvr!r} is not 8 digits")
        if not isinstance(self.body, bytes) or not self.body:
            raise ValueError("the message body must be non-empty bytes")


class Distributor(Protocol):
    """Hands messages to the message distributor; see the module docstring."""

    def deliver(self, message: OutgoingMessage) -> None: ...

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome: ...

    def deliver_stream(
        self, batches: Iterable[Sequence[OutgoingMessage]], *, overlap: bool = False
    ) -> Generator[BatchOutcome, None, None]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class DistributorBase(Closing):
    """The implementations' common base: ``with`` closes them; batches one by one."""

    def deliver(self, message: OutgoingMessage) -> None:
        raise NotImplementedError

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        outcome: BatchOutcome = {}
        for index, message in enumerate(messages):
            try:
                self.deliver(message)
            except DistributorUnavailable as error:
                outcome[index] = error
                break
            except ServicePlatformError as error:
                outcome[index] = error
            else:
                outcome[index] = None
        return outcome

    def deliver_stream(
        self, batches: Iterable[Sequence[OutgoingMessage]], *, overlap: bool = False
    ) -> Generator[BatchOutcome, None, None]:
        # One batch after the other: nothing is in flight between two batches to overlap.
        for batch in batches:
            outcome = self.deliver_batch(batch)
            yield outcome
            if any(isinstance(error, DistributorUnavailable) for error in outcome.values()):
                return


class MemoryDistributor(DistributorBase):
    """Records delivered messages in memory; can be told to fail. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delivered: list[OutgoingMessage] = []
        self._failures: deque[ServicePlatformError] = deque()
        self.closed = False

    @property
    def delivered(self) -> list[OutgoingMessage]:
        """The messages delivered so far, oldest first (a copy)."""
        with self._lock:
            return list(self._delivered)

    def fail_next(self, error: ServicePlatformError, count: int = 1) -> None:
        """Raise ``error`` from the next ``count`` deliveries instead of recording them."""
        with self._lock:
            self._failures.extend([error] * count)

    def clear(self) -> None:
        """Forget recorded messages and pending failures."""
        with self._lock:
            self._delivered.clear()
            self._failures.clear()

    def deliver(self, message: OutgoingMessage) -> None:
        with self._lock:
            if self._failures:
                raise self._failures.popleft()
            self._delivered.append(message)

    def close(self) -> None:
        self.closed = True

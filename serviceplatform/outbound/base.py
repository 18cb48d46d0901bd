"""The outbound transport seam: one request in, one response (or one platform error) out.

Integrations build an ``OutboundRequest`` (method, path below the peer's base URL, body,
headers) and hand it to a ``Transport`` of the peer with the ``Credential`` the call shows
(``credentials.py``: a client certificate of the store, a plugin user, ...). Every
implementation keeps the same promise:

- a 2xx answer comes back as an ``OutboundResponse``;
- every other outcome raises exactly one error of the SP-4xx tree, chosen in
  ``translate.py`` (the request's ``answer_check`` first, then ``error_for_status``), so
  handlers never see a library exception or have to interpret a status code themselves;
- except for a request marked ``any_status``: a peer whose non-2xx answers carry what the
  caller must read (an AS4 partner's ``eb:Error`` signal in an HTTP 500) gets every HTTP answer
  back as it is; failures without an answer still raise the one translated error.

Which class implements a peer is chosen by the peer's kind (``kinds.py``).

``MemoryTransport`` is the in-memory reference implementation: it records what was sent and
answers from a queue or a callable, so handlers are unit-tested without sockets.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from serviceplatform.closing import Closing
from serviceplatform.errors import ConfigurationError, ServicePlatformError
from serviceplatform.outbound.credentials import Credential
from serviceplatform.outbound.translate import AnswerCheck, answer_error


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    #: Path (and query) below the peer's base URL, starting with ``/``.
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Overrides the peer's ``budget_seconds`` for this call (an operation with another SLA).
    budget_seconds: float | None = None
    #: False for a request that must not reach the peer twice: it goes on a fresh connection
    #: and is repeated only after a failure that proves it never left (``never_sent``).
    idempotent: bool = True
    #: The peer's own reading of an answer (a fault body, a ``dkal:Fejl``), supplied by the
    #: integration that knows the peer; None: the status classes alone.
    answer_check: AnswerCheck | None = None
    #: Overrides the peer's ``read_timeout_seconds`` per attempt (a slow kind of request).
    read_timeout_seconds: float | None = None
    #: True: every HTTP answer comes back as an ``OutboundResponse`` whatever its status, for
    #: the caller to read (an AS4 partner answers an ``eb:Error`` signal with HTTP 500); only
    #: a failure without an answer raises, and an answer is never repeated.
    any_status: bool = False


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    body: bytes
    headers: Mapping[str, str]
    #: Seconds the whole call took, retries included.
    elapsed: float
    #: How many times the request was sent (1 when the first attempt answered).
    attempts: int = 1


class Transport(Protocol):
    """What every outbound transport offers; close it (or use ``with``) to free connections."""

    def send(self, request: OutboundRequest, *, credential: Credential) -> OutboundResponse: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class TransportBase(Closing):
    """The implementations' common base: ``with`` closes them."""


@dataclass(frozen=True)
class SentRequest:
    request: OutboundRequest
    credential: Credential


#: What a ``MemoryTransport`` answers with: a response, or an error to raise.
Reply = OutboundResponse | ServicePlatformError
Responder = Callable[[OutboundRequest, Credential], Reply]


class MemoryTransport(TransportBase):
    """In-memory transport: records requests, answers from ``queue()`` then ``responder``.

    Answers are turned into errors by ``translate.answer_error`` exactly as the real
    transports do (the request's ``answer_check`` included), so a handler test with
    ``reply(status=404)`` sees ``UpstreamNotFound``. With nothing queued and no responder
    every request gets an empty 200.
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder
        self.sent: list[SentRequest] = []
        self.closed = False
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[OutboundRequest]:
        return [sent.request for sent in self.sent]

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self._replies.extend(replies)

    def reply(
        self, status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        """Queue one HTTP answer."""
        self.queue(OutboundResponse(status, body, dict(headers or {}), elapsed=0.0))

    def send(self, request: OutboundRequest, *, credential: Credential) -> OutboundResponse:
        with self._lock:
            if self.closed:
                raise ConfigurationError("the outbound transport is closed")
            self.sent.append(SentRequest(request, credential))
            queued = self._replies.popleft() if self._replies else None
        reply = queued
        if reply is None:
            reply = (
                self.responder(request, credential)
                if self.responder is not None
                else OutboundResponse(200, b"", {}, elapsed=0.0)
            )
        if isinstance(reply, ServicePlatformError):
            raise reply
        if request.any_status:
            return reply
        error = answer_error(reply.status, reply.headers, reply.body, request.answer_check)
        if error is not None:
            raise error
        return reply

    def close(self) -> None:
        self.closed = True

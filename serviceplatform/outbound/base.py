"""The outbound transport seam: one request in, one response (or one platform error) out.

Integrations build an ``OutboundRequest`` (method, path below the peer's base URL, body,
headers) and hand it to a ``Transport`` of the peer, naming the client certificate alias the
agreement chose. Every implementation keeps the same promise:

- a 2xx answer comes back as an ``OutboundResponse``;
- every other outcome raises exactly one error of the SP-4xx tree, chosen by
  ``error_for_status`` for HTTP answers, so handlers never see a library exception or have
  to interpret a status code themselves.

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
from serviceplatform.errors import (
    ConfigurationError,
    ServicePlatformError,
    UpstreamAuthRefused,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from serviceplatform.logmask import mask_cpr_numbers

#: Turns a peer's error body into a short human text (None when it cannot be read).
ErrorParser = Callable[[bytes], "str | None"]

_DETAIL_LIMIT = 300


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    #: Path (and query) below the peer's base URL, starting with ``/``.
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Overrides the peer's ``budget_seconds`` for this call (an operation with another SLA).
    budget_seconds: float | None = None
    #: Overrides the peer's ``read_timeout_seconds`` per attempt (a slow kind of request).
    read_timeout_seconds: float | None = None


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

    def send(self, request: OutboundRequest, *, cert_alias: str | None) -> OutboundResponse: ...

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


def raw_error_text(body: bytes) -> str | None:
    """The default ``ErrorParser``: the body as text, whitespace collapsed and trimmed."""
    text = " ".join(body[: _DETAIL_LIMIT * 4].decode("utf-8", "replace").split())
    return text[:_DETAIL_LIMIT] or None


def error_for_status(
    status: int, body: bytes, parse_error: ErrorParser = raw_error_text
) -> UpstreamError | None:
    """The platform error for a final HTTP answer, or None for 2xx.

    ======================  ===========================
    status                  error
    ======================  ===========================
    2xx                     none
    401, 403                UpstreamAuthRefused
    404                     UpstreamNotFound
    other 4xx               UpstreamRejected
    5xx                     UpstreamUnavailable
    1xx, 3xx, other         UpstreamBadResponse
    ======================  ===========================
    """
    if 200 <= status < 300:
        return None
    try:
        parsed = parse_error(body) if body else None
    except Exception:
        # A detail parser must never turn a clear upstream error into an internal one.
        parsed = None
    text = f"HTTP {status}"
    if parsed:
        text = f"{text}: {mask_cpr_numbers(parsed, touching_letters=True)[:_DETAIL_LIMIT]}"
    if status in (401, 403):
        return UpstreamAuthRefused(text, status=status)
    if status == 404:
        return UpstreamNotFound(text, status=status)
    if 400 <= status < 500:
        return UpstreamRejected(text, status=status)
    if 500 <= status < 600:
        return UpstreamUnavailable(text, status=status)
    return UpstreamBadResponse(f"unexpected {text}", status=status)


@dataclass(frozen=True)
class SentRequest:
    request: OutboundRequest
    cert_alias: str | None


#: What a ``MemoryTransport`` answers with: a response, or an error to raise.
Reply = OutboundResponse | ServicePlatformError
Responder = Callable[[OutboundRequest, "str | None"], Reply]


class MemoryTransport(TransportBase):
    """In-memory transport: records requests, answers from ``queue()`` then ``responder``.

    Non-2xx responses are turned into errors by ``error_for_status`` exactly as the real
    transports do, so a handler test with ``reply(status=404)`` sees ``UpstreamNotFound``.
    With nothing queued and no responder every request gets an empty 200.
    """

    def __init__(
        self, responder: Responder | None = None, *, parse_error: ErrorParser = raw_error_text
    ) -> None:
        self.responder = responder
        self.parse_error = parse_error
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

    def send(self, request: OutboundRequest, *, cert_alias: str | None) -> OutboundResponse:
        with self._lock:
            if self.closed:
                raise ConfigurationError("the outbound transport is closed")
            self.sent.append(SentRequest(request, cert_alias))
            queued = self._replies.popleft() if self._replies else None
        reply = queued
        if reply is None:
            reply = (
                self.responder(request, cert_alias)
                if self.responder is not None
                else OutboundResponse(200, b"", {}, elapsed=0.0)
            )
        if isinstance(reply, ServicePlatformError):
            raise reply
        error = error_for_status(reply.status, reply.body, self.parse_error)
        if error is not None:
            raise error
        return reply

    def close(self) -> None:
        self.closed = True

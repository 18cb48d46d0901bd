"""One SOAP call as it passes through the platform, and what its audit record will say.

The SOAP front creates a ``PlatformCall`` for every request, puts it into the WSGI environ
under ``ENVIRON_KEY``, and writes exactly one audit record from it when the response is known.
Integration handlers fill in what only they know (subject, SysID, upstream status).

A call's error is recorded in one place each: the front for what it refuses itself, and the
SOAP layer (:func:`record_error`, from the spyne protocol's fault rendering) for everything
spyne or a service method raised. Handlers just raise platform errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from serviceplatform.errors import ConfigurationError, ServicePlatformError
from serviceplatform.security.context import SecurityContext

ENVIRON_KEY = "serviceplatform.call"


@dataclass
class PlatformCall:
    service: str
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    operation: str | None = None
    security: SecurityContext | None = None
    message_id: str | None = None
    consumer_system: str | None = None
    subject: str | None = None
    sysid: str | None = None
    upstream_status: int | None = None
    error: ServicePlatformError | None = None
    #: A note for the audit record (a fault's text is used when this is None).
    detail: str | None = None

    @property
    def authority_cvr(self) -> str | None:
        return self.security.authority_cvr if self.security else None

    def fail(self, error: ServicePlatformError) -> ServicePlatformError:
        """Remember ``error`` as the call's outcome and hand it back for raising."""
        self.error = error
        status = getattr(error, "status", None)
        if isinstance(status, int):
            self.upstream_status = status
        return error

    def latency_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0


def record_error(environ: dict[str, Any], error: ServicePlatformError) -> None:
    """Record ``error`` as the outcome of the request's call, if it came through the front."""
    call = environ.get(ENVIRON_KEY)
    if isinstance(call, PlatformCall):
        call.fail(error)


def drop_tracebacks(error: BaseException | None) -> None:
    """Forget the tracebacks of ``error``, of its causes and of a wrapped platform error.

    A traceback holds the frames the error passed through, and those frames hold the call
    (its environ, its parsed request): a reference cycle through the call's own ``error``,
    which only Python's cyclic collector would free. Once the answer is complete and logged
    nothing reads the traceback, so the call is freed as soon as it is released.
    """
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending.extend((current.__cause__, current.__context__))
        wrapped = getattr(current, "error", None)  # spyne's PlatformFault carries one
        if isinstance(wrapped, BaseException):
            pending.append(wrapped)


def current_call(environ: dict[str, Any]) -> PlatformCall:
    """The call of this request; only the SOAP front creates it."""
    call = environ.get(ENVIRON_KEY)
    if not isinstance(call, PlatformCall):
        raise ConfigurationError("request did not pass through the platform's SOAP front")
    return call

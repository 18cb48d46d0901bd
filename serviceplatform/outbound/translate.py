"""The one translation of outward HTTP outcomes into the platform's SP-4xx errors.

Every peer call ends in a 2xx answer or in exactly one platform error; ``requests``,
``urllib3``, ``ssl`` and socket exceptions never pass the seam. This module is where that
is decided, for every peer:

- ``translate_exception``: a library or socket failure (unreachable, timeout, TLS, ...);
- ``error_for_status``: a final HTTP answer by its status class, with a short detail from the
  body (``ErrorParser``);
- ``AnswerCheck``: a peer's own reading of an answer (a SOAP fault, a ``dkal:Fejl``), supplied
  by the integration that knows the peer; it runs before the status classes;
- ``never_sent``: whether a failure proves the request did not leave (what a non-idempotent
  request may be repeated for).

Details never quote the URL (requests' messages do, and paths hold CPR numbers) and have
every run of ten digits masked.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator, Mapping
from http.client import RemoteDisconnected
from socket import gaierror
from typing import Final

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from serviceplatform.errors import (
    ConfigurationError,
    ServicePlatformError,
    UpstreamAuthRefused,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamTlsError,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.logmask import mask_cpr_numbers
from serviceplatform.outbound.bounded import AnswerOverdue, AnswerTooLarge

#: Turns a peer's error body into a short human text (None when it cannot be read).
ErrorParser = Callable[[bytes], "str | None"]
#: A peer's own reading of an answer (status, headers, body): the error it means, or None to
#: let the status classes decide. Called for every answer, 2xx included.
AnswerCheck = Callable[[int, Mapping[str, str], bytes], "UpstreamError | None"]

#: What a transport repeats (within its budget): the peer may answer the next attempt.
RETRIED: Final = (UpstreamUnreachable, UpstreamTimeout, UpstreamUnavailable)

_DETAIL_LIMIT: Final = 300
# An abrupt close of a TLS connection surfaces as one of these: a dropped connection, not a
# failed handshake, so it is retried like any other connection loss.
_TLS_EOF = (ssl.SSLEOFError, ssl.SSLZeroReturnError)


# --- answers ------------------------------------------------------------------------------------


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


def answer_error(
    status: int, headers: Mapping[str, str], body: bytes, check: AnswerCheck | None
) -> UpstreamError | None:
    """The error an answer means: the peer's ``check`` first, then the status classes."""
    if check is not None:
        found = check(status, headers, body)
        if found is not None:
            return found
    return error_for_status(status, body)


# --- failures -----------------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (cause, context, urllib3 ``reason``, args)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        stack.extend(e for e in linked if isinstance(e, BaseException))


def _reason(exc: BaseException) -> str:
    """A short cause without the URL: requests' messages quote the path, which holds CPRs."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            message = getattr(cause, "verify_message", None) or "untrusted certificate"
            return f"certificate verification failed ({message})"
    for cause in causes:
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _TLS_EOF):
            # ``reason`` is an OpenSSL code such as TLSV13_ALERT_CERTIFICATE_REQUIRED.
            return f"TLS error {getattr(cause, 'reason', None) or 'unknown'}"
    for kind, text in (
        (ConnectionRefusedError, "connection refused"),
        # Before ConnectionResetError, of which it is a subclass.
        (RemoteDisconnected, "connection closed without a response"),
        (ConnectionResetError, "connection reset by peer"),
        (_TLS_EOF, "connection closed during TLS"),
        ((gaierror, NameResolutionError), "host name cannot be resolved"),
        (TimeoutError, "timed out"),
    ):
        if any(isinstance(cause, kind) for cause in causes):
            return text
    return type(exc).__name__


def translate_exception(exc: BaseException, peer: str) -> ServicePlatformError:
    """The platform error for a ``requests`` (or socket/ssl) failure talking to ``peer``."""
    if isinstance(exc, AnswerTooLarge):
        return UpstreamBadResponse(f"{peer}: {exc}")
    if isinstance(exc, AnswerOverdue):
        return UpstreamTimeout(f"{peer}: {exc}")
    detail = mask_cpr_numbers(f"{peer}: {_reason(exc)}", touching_letters=True)
    causes = list(_causes(exc))
    if isinstance(exc, requests.Timeout):
        return UpstreamTimeout(detail)
    if isinstance(exc, requests.exceptions.SSLError):
        if any(isinstance(c, TimeoutError) for c in causes):
            return UpstreamTimeout(detail)
        return UpstreamTlsError(detail)
    if isinstance(exc, requests.ConnectionError):
        if any(isinstance(c, ssl.SSLError) and not isinstance(c, _TLS_EOF) for c in causes):
            # TLS 1.3 reports a refused client certificate on the first read, not in the
            # handshake; it is still a TLS failure that no retry can fix.
            return UpstreamTlsError(detail)
        return UpstreamUnreachable(detail)
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidHeader,
    ):
        return ConfigurationError(f"request to {detail} is invalid")
    if isinstance(exc, requests.RequestException):
        return UpstreamBadResponse(detail)
    if isinstance(exc, OSError):
        # requests checks certificate and CA files itself and raises a bare OSError.
        return ConfigurationError(f"TLS files for {peer} cannot be read")
    return UpstreamBadResponse(detail)


def never_sent(exc: BaseException) -> bool:
    """True when ``exc`` proves the request did not reach the server (connect phase)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    return any(
        isinstance(cause, NewConnectionError | ConnectionRefusedError) for cause in _causes(exc)
    )

"""``DomibusWsClient``: the platform's calls to the authority's Domibus WS plugin.

Five operations of ``WebServicePlugin.wsdl`` (SOAP 1.2, document/literal, one endpoint):

- ``submit(message)`` -> ``submitMessage``: the OOTS request with its ebMS header; returns the
  MessageId Domibus answers (the one the platform set: Domibus keeps a submitted MessageId);
- ``pending(final_recipient)`` -> ``listPendingMessages``: MessageIds received and not yet
  downloaded (Domibus replaces the ``finalRecipient`` filter by the authenticated user when the
  plugin runs with authentication: each plugin user sees its own messages);
- ``retrieve(message_id)`` -> ``retrieveMessage`` with ``markAsDownloaded="false"``: the message
  stays pending until the platform has stored it;
- ``status(message_id)`` -> ``getStatus``: whether the access point has a message at all
  (``NOT_FOUND``), which settles a submission whose outcome was not seen;
- ``acknowledge(message_id)`` -> ``markMessageAsDownloaded``: takes it off the pending list
  (Domibus sets it ``DOWNLOADED``). On a message that is not pending (any more) Domibus faults
  ``WS_PLUGIN:0009``, raised as ``UpstreamNotFound``: callers treat that as "already done".

The plugin is protected by HTTP basic authentication (a Domibus plugin user), so ``username``
and ``password`` go into every call. The ``requests.Session`` ignores the environment
(``trust_env = False``: no proxy variables, no ``REQUESTS_CA_BUNDLE``) and verifies TLS against
``ca_cert`` when given, else the public trust store; redirects are not followed (they would
carry the credentials elsewhere).

Every failure is one SP-4xx error (``serviceplatform.errors``), never a library exception:
connection and TLS problems through ``outbound.oiorest.translate_exception``, HTTP statuses
through ``outbound.base.error_for_status``, SOAP faults through ``ws_plugin.fault_error``
(Domibus answers faults with HTTP 500, so the body is read before the status), unreadable
answers as ``UpstreamBadResponse``.

Retries (``retries`` more attempts, exponential backoff from ``backoff_seconds``) only where a
repetition cannot do harm:

- ``pending``, ``retrieve`` (markAsDownloaded false: reading changes nothing), ``status`` and
  ``acknowledge`` (a repeated mark answers ``UpstreamNotFound``, which means done): every
  retryable error (unreachable, timeout, dropped connection, 5xx, ``WS_PLUGIN:0001``);
- ``submit``: only failures that prove the request never left: connection refused, name not
  resolved, connect timeout. A read timeout, a dropped connection or a 5xx after the request
  was sent are ambiguous (Domibus may have accepted it) and raised. A submit always goes on a
  fresh connection (idle keep-alive connections are dropped first), so a connection the server
  closed while idle cannot make a submission look ambiguous. Submitting the same
  ``OutgoingAs4`` again is safe anyway: Domibus refuses a known MessageId ("Message identifiers
  must be unique"), which surfaces as ``UpstreamRejected``, and cannot send it twice.

A client holds one ``requests.Session``: use one client per thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from integrations.oots.as4.model import OutgoingAs4, ReceivedAs4
from integrations.oots.as4.soap import SOAP12_CONTENT_TYPE
from integrations.oots.domibus.ws_plugin import (
    build_list_pending_request,
    build_mark_as_downloaded_request,
    build_retrieve_request,
    build_status_request,
    build_submit_request,
    fault_error,
    find_fault,
    parse_list_pending_response,
    parse_mark_as_downloaded_response,
    parse_retrieve_response,
    parse_status_response,
    parse_submit_response,
)
from serviceplatform.closing import Closing
from serviceplatform.errors import (
    ConfigurationError,
    ServicePlatformError,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.outbound.base import error_for_status
from serviceplatform.outbound.bounded import AnswerTooLarge, read_bounded
from serviceplatform.outbound.oiorest import translate_exception
from serviceplatform.outbound.retry import backoff_pause

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Evidence attachments travel base64 inside the answer: room for a few tens of MB of PDF.
DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
_RETRIED: Final = (UpstreamUnreachable, UpstreamTimeout, UpstreamUnavailable)


def _never_sent(exc: BaseException) -> bool:
    """True when ``exc`` proves the request did not reach the server (connect phase)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectionRefusedError):
            return True
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        stack.extend(e for e in linked if isinstance(e, BaseException))
    return False


class DomibusWsClient(Closing):
    """The WS plugin of one Domibus access point (``base_url``: its ``.../services/wsplugin``)."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        session_factory: Callable[[], requests.Session] = requests.Session,
        sleep: Callable[[float], None] = time.sleep,
        peer: str = "domibus",
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"peer {peer}: base_url {base_url!r} is not an http(s) URL")
        if ca_cert is not None and not Path(ca_cert).is_file():
            raise ConfigurationError(f"peer {peer}: ca_cert {ca_cert} does not exist")
        if (username is None) != (password is None):
            raise ConfigurationError(f"peer {peer}: give both username and password, or neither")
        if timeout <= 0 or connect_timeout <= 0 or retries < 0 or max_response_bytes <= 0:
            raise ConfigurationError(f"peer {peer}: timeouts, retries or size limit out of range")
        self.base_url = base_url
        self.peer = peer
        self._timeout = (connect_timeout, timeout)
        self._retries = retries
        self._backoff = backoff_seconds
        self._max_bytes = max_response_bytes
        self._sleep = sleep
        # Without ca_cert the public trust store applies (certifi, since trust_env is off).
        self._verify: str | bool = ca_cert or True
        session = session_factory()
        session.trust_env = False
        session.verify = self._verify
        if username is not None and password is not None:
            session.auth = (username, password)
        self._session = session

    # --- the operations ---------------------------------------------------------------------

    def submit(self, message: OutgoingAs4) -> str:
        """``submitMessage``; the MessageId of the submitted message."""
        envelope = build_submit_request(message)
        # A fresh connection: an idle one the server dropped would make a failure ambiguous.
        self._session.close()
        return self._call(
            "submitMessage", envelope, parse_submit_response, retry_sent=False, fresh=True
        )

    def pending(
        self, final_recipient: str | None = None, *, conversation_id: str | None = None
    ) -> list[str]:
        """``listPendingMessages``: the MessageIds waiting to be downloaded."""
        envelope = build_list_pending_request(
            final_recipient=final_recipient, conversation_id=conversation_id
        )
        return self._call("listPendingMessages", envelope, parse_list_pending_response)

    def retrieve(self, message_id: str) -> ReceivedAs4:
        """``retrieveMessage`` without marking it downloaded (see ``acknowledge``)."""
        envelope = build_retrieve_request(message_id, mark_as_downloaded=False)
        return self._call("retrieveMessage", envelope, parse_retrieve_response)

    def status(self, message_id: str) -> str:
        """``getStatus``: the access point's status of a message; ``NOT_FOUND`` if unknown."""
        envelope = build_status_request(message_id)
        return self._call("getStatus", envelope, parse_status_response)

    def acknowledge(self, message_id: str) -> None:
        """``markMessageAsDownloaded``; ``UpstreamNotFound`` when it is not pending (any more)."""
        envelope = build_mark_as_downloaded_request(message_id)
        self._call("markMessageAsDownloaded", envelope, parse_mark_as_downloaded_response)

    # --- plumbing --------------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        envelope: bytes,
        parse: Callable[[bytes], T],
        *,
        retry_sent: bool = True,
        fresh: bool = False,
    ) -> T:
        headers = {"Content-Type": SOAP12_CONTENT_TYPE, "Accept": "application/soap+xml"}
        if fresh:
            headers["Connection"] = "close"
        attempt = 0
        while True:
            attempt += 1
            cause: BaseException | None = None
            error: ServicePlatformError
            never_sent = False
            try:
                status, content_type, body = self._post(envelope, headers)
            except AnswerTooLarge as exc:
                cause, error = exc, UpstreamBadResponse(f"{operation}: {exc}")
            except (requests.RequestException, OSError) as exc:
                cause, error = exc, translate_exception(exc, self.peer)
                never_sent = _never_sent(exc)
            else:
                fault = find_fault(body) if body else None
                if fault is not None:
                    error = fault_error(fault, operation, status)
                elif not 200 <= status < 300:
                    error = error_for_status(status, body) or UpstreamBadResponse(
                        f"{operation}: HTTP {status}", status=status
                    )
                elif content_type.startswith("multipart/"):
                    error = UpstreamBadResponse(
                        f"{operation}: a multipart (MTOM) answer; set wsplugin.mtom.enabled=false",
                        status=status,
                    )
                else:
                    return parse(body)
            if not self._retry(error, attempt, retry_sent or never_sent):
                raise error from cause
            log.info(
                "%s %s: attempt %d failed (%s); retrying", self.peer, operation, attempt, error
            )
            self._sleep(backoff_pause(self._backoff, attempt))

    def _post(self, envelope: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        response = self._session.post(
            self.base_url,
            data=envelope,
            headers=headers,
            timeout=self._timeout,
            verify=self._verify,
            allow_redirects=False,
            stream=True,
        )
        try:
            body = read_bounded(response, self._max_bytes)
            content_type = response.headers.get("Content-Type", "").lower()
            return response.status_code, content_type, body
        finally:
            response.close()

    def _retry(self, error: ServicePlatformError, attempt: int, allowed: bool) -> bool:
        return allowed and isinstance(error, _RETRIED) and attempt <= self._retries

    def close(self) -> None:
        self._session.close()

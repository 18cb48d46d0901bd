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

The client speaks through the outbound seam: an ``HttpTransport`` of the ``domibus-ws``
peer kind (``open_transport``; URL, CA, timeouts, retries and pool in its ``PeerSettings``,
built by ``peer_settings``), which ignores the environment (no proxy variables, no
``REQUESTS_CA_BUNDLE``) and follows no redirect (it would carry the credentials elsewhere).
The plugin is protected by HTTP basic authentication (a Domibus plugin user): the client's
``credential`` (``BasicAuth``) goes with every call.

Every failure is one SP-4xx error (``serviceplatform.errors``), never a library exception:
connection, TLS and HTTP status problems are translated by the seam (``outbound/translate``);
SOAP faults by this client's ``answer_check`` (``ws_plugin.fault_error``: Domibus answers
faults with HTTP 500, so the body is read before the status); unreadable answers raise
``UpstreamBadResponse``.

Retries (``retries`` more attempts, exponential backoff from ``backoff_seconds``) only where a
repetition cannot do harm:

- ``pending``, ``retrieve`` (markAsDownloaded false: reading changes nothing), ``status`` and
  ``acknowledge`` (a repeated mark answers ``UpstreamNotFound``, which means done): every
  retryable error (unreachable, timeout, dropped connection, 5xx, ``WS_PLUGIN:0001``);
- ``submit``: only failures that prove the request never left: connection refused, name not
  resolved, connect timeout. A read timeout, a dropped connection or a 5xx after the request
  was sent are ambiguous (Domibus may have accepted it) and raised. A submit is sent as not
  idempotent, so it always goes on a fresh connection: a connection the server closed while
  idle cannot make a submission look ambiguous. Submitting the same ``OutgoingAs4`` again is
  safe anyway: Domibus refuses a known MessageId ("Message identifiers must be unique"), which
  surfaces as ``UpstreamRejected``, and cannot send it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final, Self, TypeVar

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
from serviceplatform.config import PeerSettings
from serviceplatform.errors import ConfigurationError, UpstreamBadResponse, UpstreamError
from serviceplatform.outbound.base import OutboundRequest, Transport
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import NO_CREDENTIAL, BasicAuth, Credential
from serviceplatform.outbound.translate import AnswerCheck
from serviceplatform.outbound.transport import HttpTransport

T = TypeVar("T")

#: Evidence attachments travel base64 inside the answer: room for a few tens of MB of PDF.
DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
_HEADERS: Final = {"Content-Type": SOAP12_CONTENT_TYPE, "Accept": "application/soap+xml"}


def peer_settings(
    base_url: str,
    *,
    ca_cert: str | None = None,
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
    retries: int = 2,
    backoff_seconds: float = 0.5,
) -> PeerSettings:
    """A WS plugin's peer settings: each attempt may take ``connect_timeout`` plus ``timeout``
    (a retrieve carries megabytes), and the budget leaves room for every attempt and pause."""
    pauses = sum(backoff_seconds * 2**attempt for attempt in range(max(retries, 0)))
    return PeerSettings(
        kind="domibus-ws",
        base_url=base_url,
        ca_cert=ca_cert or "",
        connect_timeout_seconds=connect_timeout,
        read_timeout_seconds=timeout,
        budget_seconds=(max(retries, 0) + 1) * (connect_timeout + timeout) + pauses,
        max_retries=retries,
        backoff_seconds=backoff_seconds,
        pool_size=4,
    )


def open_transport(
    name: str,
    settings: PeerSettings,
    certificates: CertificateStore | None,
    *,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpTransport:
    """The transport of a ``domibus-ws`` peer (the OOTS integration's peer kind)."""
    return HttpTransport(
        settings, certificates, sleep=sleep, peer=name, max_response_bytes=max_response_bytes
    )


def answer_check(operation: str) -> AnswerCheck:
    """How the plugin's answers to ``operation`` read: a SOAP fault is its own error whatever
    the status; an MTOM answer is refused; otherwise the status classes decide."""

    def check(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError | None:
        fault = find_fault(body) if body else None
        if fault is not None:
            return fault_error(fault, operation, status)
        content_type = headers.get("Content-Type", "").lower()
        if 200 <= status < 300 and content_type.startswith("multipart/"):
            return UpstreamBadResponse(
                f"{operation}: a multipart (MTOM) answer; set wsplugin.mtom.enabled=false",
                status=status,
            )
        return None

    return check


class DomibusWsClient(Closing):
    """The WS plugin of one Domibus access point, over the seam's ``transport`` (its
    ``base_url``: the plugin's ``.../services/wsplugin``); closing it closes the transport."""

    def __init__(
        self, transport: Transport, credential: Credential = NO_CREDENTIAL, *, peer: str
    ) -> None:
        self.transport = transport
        self.credential = credential
        self.peer = peer

    @classmethod
    def connect(
        cls,
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
        sleep: Callable[[float], None] = time.sleep,
        peer: str = "domibus",
    ) -> Self:
        """A client with a transport of its own, from the plugin's URL and settings."""
        if (username is None) != (password is None):
            raise ConfigurationError(f"peer {peer}: give both username and password, or neither")
        settings = peer_settings(
            base_url,
            ca_cert=ca_cert,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            backoff_seconds=backoff_seconds,
        )
        transport = open_transport(
            peer, settings, None, max_response_bytes=max_response_bytes, sleep=sleep
        )
        credential: Credential = NO_CREDENTIAL
        if username is not None and password is not None:
            credential = BasicAuth(username, password)
        return cls(transport, credential, peer=peer)

    # --- the operations ---------------------------------------------------------------------

    def submit(self, message: OutgoingAs4) -> str:
        """``submitMessage``; the MessageId of the submitted message."""
        envelope = build_submit_request(message)
        return self._call("submitMessage", envelope, parse_submit_response, idempotent=False)

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
        idempotent: bool = True,
    ) -> T:
        request = OutboundRequest(
            "POST",
            "",
            envelope,
            _HEADERS,
            idempotent=idempotent,
            answer_check=answer_check(operation),
        )
        return parse(self.transport.send(request, credential=self.credential).body)

    def close(self) -> None:
        self.transport.close()

"""The backend endpoint Domibus pushes to (``BackendService.wsdl``, namespace ``eu.domibus``).

With ``wsplugin.push.enabled=true`` and a rule (``wsplugin.push.rules.<name>.endpoint`` = this
app's URL, ``.type`` = the notifications wanted; see ``domibus/ws-plugin/ws-plugin.properties``)
the WS plugin calls one of these SOAP 1.2 operations per event:

======================  =====================================  =============================
operation (rule type)   carries                                what this app does
======================  =====================================  =============================
``submitRequest``       the whole message: ``Messaging`` in    stores it through the inbox,
(``SUBMIT_MESSAGE``)    ``soap:Header``, payloads base64 in    *then* answers success
                        the body (``payloadId``, ``mimeType``)
``receiveSuccess``      the MessageId only                     with a client: retrieve ->
(``RECEIVE_SUCCESS``)                                          store -> acknowledge, then
                                                               success; without: success (the
                                                               message stays pending for
                                                               ``DomibusInbox.collect``)
``receiveFailure``,     the MessageId (``messageStatusChange``  logs it and answers success
``sendSuccess``,        also the new status; ``deleteBatch``
``sendFailure``,        several ids)
``messageStatusChange``,
``delete``,
``deleteBatch``
======================  =====================================  =============================

Success is an empty SOAP body (every output message of the WSDL is empty). Anything that
fails before the message is stored is a SOAP 1.2 fault with ``BackendFaultDetail{code,
message}``: HTTP 400 (``soap:Sender``) for a malformed call, 500 (``soap:Receiver``) when the
platform could not store or fetch it, so Domibus retries the push (``.retry`` of the rule).
After a ``SUBMIT_MESSAGE`` push succeeds, Domibus marks the message downloaded
(``wsplugin.push.markAsDownloaded``, default true); with ``false`` it stays pending and
``collect`` stores nothing new and acknowledges it.

Optional HTTP basic authentication (``wsplugin.push.auth.username``/``password``): when the app
is given credentials it requires them. Domibus sends ``Authorization: Basic`` even with the
properties unset (encoding ``null:null``), so an app without credentials ignores the header.

The app is not mounted anywhere by this module; the integration owner mounts
``backend_push_app(...)`` where Domibus can reach it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from integrations.oots.as4.soap import SOAP12_CONTENT_TYPE
from integrations.oots.domibus.backend_service import (
    PushCall,
    build_push_fault,
    build_push_success,
    parse_push_request,
)
from integrations.oots.domibus.inbox import DomibusInbox, acknowledge
from integrations.oots.gateway import AnswerSource
from serviceplatform.errors import (
    RequestTooLarge,
    SchemaViolation,
    SecurityError,
    ServicePlatformError,
    UpstreamNotFound,
)
from serviceplatform.soap.envelope import read_request_body

if TYPE_CHECKING:
    from serviceplatform.platform import Platform

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

#: Evidence attachments arrive base64 inside the push: room for a few tens of MB of PDF.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024


class BackendPushApp:
    """WSGI application serving Domibus' push calls; see the module docstring."""

    def __init__(
        self,
        inbox: DomibusInbox,
        *,
        client: AnswerSource | None = None,
        username: str | None = None,
        password: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.inbox = inbox
        self.client = client
        self._credentials = (
            f"{username}:{password}".encode()
            if username is not None and password is not None
            else None
        )
        self._max_body = max_body_bytes
        # One gateway for the pushes: their calls through it go one at a time.
        self._client_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            body = b"POST a SOAP 1.2 BackendService request\n"
            start_response(
                "405 Method Not Allowed",
                [("Allow", "POST"), ("Content-Type", "text/plain"), _length(body)],
            )
            return [body]
        if not self._authenticated(environ):
            error = SecurityError("HTTP basic authentication of the push failed")
            challenge = ("WWW-Authenticate", 'Basic realm="domibus-push"')
            return self._fault(error, "401 Unauthorized", start_response, challenge)
        try:
            call = parse_push_request(self._read_body(environ))
        except RequestTooLarge as error:
            return self._fault(error, "413 Content Too Large", start_response)
        except ServicePlatformError as error:
            status = "400 Bad Request" if error.client_fault else "500 Internal Server Error"
            return self._fault(error, status, start_response)
        try:
            self._handle(call)
        except ServicePlatformError as error:
            # Not stored (or not fetched): our failure, whatever its class; Domibus retries.
            return self._fault(error, "500 Internal Server Error", start_response, sender=False)
        body = build_push_success()
        start_response("200 OK", [("Content-Type", SOAP12_CONTENT_TYPE), _length(body)])
        return [body]

    def _authenticated(self, environ: dict[str, Any]) -> bool:
        if self._credentials is None:
            return True
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        scheme, _, encoded = header.partition(" ")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return scheme.lower() == "basic" and hmac.compare_digest(given, self._credentials)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        content_type = str(environ.get("CONTENT_TYPE", "")).lower()
        if content_type.startswith("multipart/"):
            raise SchemaViolation("multipart (MTOM) pushes are not read; disable MTOM")
        return read_request_body(environ, self._max_body)

    def _handle(self, call: PushCall) -> None:
        ids = ", ".join(call.message_ids)
        if call.operation == "submitRequest":
            if call.message is None:
                raise SchemaViolation("submitRequest without a message")
            self.inbox.store(call.message)
            return
        if call.operation == "receiveSuccess":
            if self.client is None:
                log.info("oots push: %s received; left pending for collect", ids)
                return
            with self._client_lock:
                for message_id in call.message_ids:
                    self._fetch(self.client, message_id)
            return
        if call.operation in ("sendFailure", "receiveFailure"):
            log.warning("oots push: %s for %s", call.operation, ids)
            return
        status = f" -> {call.status}" if call.status else ""
        log.info("oots push: %s for %s%s", call.operation, ids, status)

    def _fetch(self, client: AnswerSource, message_id: str) -> None:
        """Retrieve -> store -> acknowledge; a failure before storing propagates (a fault
        makes Domibus push the notification again), a failed acknowledgement does not."""
        try:
            message = client.retrieve(message_id)
        except UpstreamNotFound:
            if self.inbox.state(message_id) is not None:
                log.info("oots push: %s is gone from Domibus and stored here", message_id)
                return
            raise
        self.inbox.store(message)
        acknowledge(client, message_id)

    def _fault(
        self,
        error: ServicePlatformError,
        status: str,
        start_response: StartResponse,
        *extra: tuple[str, str],
        sender: bool | None = None,
    ) -> list[bytes]:
        if status.startswith("5"):
            log.error("oots push failed: %s %s", error.code, error)
        else:
            log.warning("oots push refused: %s %s", error.code, error)
        body = build_push_fault(error, sender=sender)
        start_response(status, [("Content-Type", SOAP12_CONTENT_TYPE), _length(body), *extra])
        return [body]


def _length(body: bytes) -> tuple[str, str]:
    return ("Content-Length", str(len(body)))


def backend_push_app(
    target: DomibusInbox | Platform,
    *,
    client: AnswerSource | None = None,
    username: str | None = None,
    password: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clock: Callable[[], datetime] | None = None,
) -> BackendPushApp:
    """The push endpoint storing into ``target``: an inbox, or the platform's database."""
    if isinstance(target, DomibusInbox):
        inbox = target
    else:
        inbox = DomibusInbox(target.db, clock=clock or target.clock)
    return BackendPushApp(
        inbox, client=client, username=username, password=password, max_body_bytes=max_body_bytes
    )

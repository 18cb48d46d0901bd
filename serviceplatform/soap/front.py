"""The SOAP front of one service: the steps every call takes before and after the integration.

For a POST: bound the body size, parse the envelope with the hardened parser, check the SOAP
version, validate the security headers and token, then hand the request to the service's
spyne application with a ``PlatformCall`` in the environ. Whatever happens, exactly one audit
record is written. A refused request never reaches the integration, so it can make no
outward call. GET requests (``?wsdl``, ``?xsd=``) go straight to the inner application.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any

from lxml import etree

from serviceplatform.call import ENVIRON_KEY, PlatformCall, drop_tracebacks
from serviceplatform.errors import (
    NotSoapEnvelope,
    ServicePlatformError,
    StorageError,
)
from serviceplatform.integration import SoapService, WsgiApp
from serviceplatform.logmask import mask_cpr
from serviceplatform.platform import Platform
from serviceplatform.soap.envelope import (
    ENVELOPE_ENVIRON_KEY,
    ParsedEnvelope,
    check_envelope,
    parse_xml,
    read_request_body,
)
from serviceplatform.soap.fault_version import fault_version
from serviceplatform.soap.faults import fault_response
from serviceplatform.soap.must_understand import check_must_understand

log = logging.getLogger(__name__)

_WSA = "http://www.w3.org/2005/08/addressing"

StartResponse = Callable[..., Any]


class SoapEndpoint:
    """WSGI application for one ``SoapService``: the platform's checks around its spyne app."""

    def __init__(self, platform: Platform, service: SoapService, inner: WsgiApp) -> None:
        self.platform = platform
        self.service = service
        self.inner = inner
        self.audience = (
            platform.settings.service(service.key).entity_id or service.default_entity_id
        )
        self.max_bytes = platform.settings.soap.max_body_bytes
        #: Where callers address this endpoint; a signed ``wsa:To`` elsewhere is refused.
        #: None without ``soap.public_base_url`` (which ``serve`` requires): then the address
        #: the request itself was sent to, so the check is never off.
        self.address = platform.settings.soap.public_url(service.path)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD"):
            return self.inner(environ, start_response)
        if method != "POST":
            start_response("405 Method Not Allowed", [("Allow", "GET, POST")])
            return [b""]
        return self._post(environ, start_response)

    def _post(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        call = PlatformCall(service=self.service.key, received_at=self.platform.clock())
        body = b""
        root: etree._Element | None = None
        parsed: ParsedEnvelope | None = None
        try:
            body = read_request_body(environ, self.max_bytes)
            root = parse_xml(body, max_bytes=self.max_bytes)
            parsed = check_envelope(root)
            call.operation = self.service.operations.get(etree.QName(parsed.body_child).localname)
            if parsed.soap_version not in self.service.soap_versions:
                raise NotSoapEnvelope(f"SOAP {parsed.soap_version / 10:.1f} is not offered here")
            check_must_understand(parsed)
            call.security = self.platform.validator.validate(
                parsed.root,
                self.audience,
                address=self.address or _request_address(environ, self.service.path),
            )
            call.message_id = call.security.message_id
        except ServicePlatformError as error:
            if parsed is not None:
                # Looked up only for a refusal: a validated call's comes from its security.
                call.message_id = _unverified_message_id(parsed.root)
            call.fail(error)
            version = fault_version(
                self.service.soap_versions,
                root=root,
                content_type=environ.get("CONTENT_TYPE", ""),
                body=body,
            )
            answer = fault_response(error, version)
            self._finish(call)
            start_response(answer.status, answer.headers)
            return [answer.body]
        finally:
            # The error's traceback holds this frame, which holds the call: a cycle.
            drop_tracebacks(call.error)

        environ[ENVIRON_KEY] = call
        # The spyne glue reuses the parsed envelope instead of parsing the body a second time.
        environ[ENVELOPE_ENVIRON_KEY] = parsed
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            return start_response(status, headers, exc_info)

        chunks = b"".join(self.inner(environ, capture))
        if not captured.get("status", "").startswith("200") and call.error is None:
            # The SOAP layer records every fault it renders (``call.record_error``); a fault
            # that reached the caller unrecorded is a bug, and the audit must not say "ok".
            log.error("a %s fault left the service unrecorded", captured.get("status"))
            call.fail(ServicePlatformError("a fault was answered without its error recorded"))
        # The spyne glue has cut the cycles of what it ran (release_spyne_contexts), the
        # tracebacks of the error it recorded in ``call`` included.
        self._finish(call)
        return [chunks]

    def _finish(self, call: PlatformCall) -> None:
        outcome = "ok" if call.error is None else f"fault {call.error.code}"
        log.info(
            "%s %s authority=%s subject=%s sysid=%s upstream=%s -> %s in %.1f ms",
            call.service,
            call.operation or "-",
            call.authority_cvr or "-",
            mask_cpr(call.subject) if call.subject else "-",
            call.sysid or "-",
            call.upstream_status or "-",
            outcome,
            call.latency_ms(),
        )
        # Imported here, not with the module: prometheus_client must be imported only after
        # ``serve`` has set PROMETHEUS_MULTIPROC_DIR (it picks its mode on import).
        from serviceplatform.observability.metrics import observe_call

        observe_call(call)  # never raises
        try:
            self.platform.record(call)
        except StorageError:
            # The caller's answer is already decided; losing its audit row must be loud.
            log.exception("audit record for MessageID %s could not be written", call.message_id)


def _request_address(environ: dict[str, Any], path: str) -> str:
    """The endpoint address this request was sent to: its scheme, ``Host`` and the path."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or (
        f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    )
    return f"{scheme}://{host}{path}"


def _unverified_message_id(root: etree._Element) -> str | None:
    """The MessageID as sent, for the audit trail of requests refused before validation."""
    found = root.find(f"./{{*}}Header/{{{_WSA}}}MessageID")
    text = found.text if found is not None else None
    return text.strip()[:200] if text else None

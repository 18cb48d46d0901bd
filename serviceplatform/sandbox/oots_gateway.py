"""A simulated OOTS gateway: the Domibus WS plugin over real HTTP, providers behind it.

``SimulatedOotsGateway`` runs three servers in background threads:

- the gateway (HTTP, ``host:port``): the WS plugin endpoint ``/domibus/services/wsplugin``
  (SOAP 1.2, HTTP basic authentication; ``oots_wsplugin``) and the common services
  ``/rest/search`` (also ``/eb/rest/search`` and ``/dsd/rest/search``; no authentication;
  ``oots_common_services``);
- the preview space (HTTPS, ``host:preview_port``): ``/preview/<token>`` pages
  (``oots_preview``). ``PreviewLocation`` must be an ``https://`` URL, so this one is TLS, with
  a certificate from the sandbox CA of ``tls_dir`` (``pki.ensure_pki``) or, without one, from a
  throw-away CA made for this gateway; trust ``preview_ca_cert``;
- the test hooks (HTTP, loopback, ``control_port``): ``/_sandbox/...`` (``oots_hooks``);
- the providers' AS4 access points (HTTPS, ``host:as4_port``, ``POST /as4``; ``oots_as4``):
  the platform's own AS4 access point sends an authority's requests there directly, and the
  answers are pushed back to its receiving endpoint once ``connect_as4`` named it. The
  signing and decryption key (one for ``AP_FI_01`` and ``AP_SE_01``) is ``as4_cert`` /
  ``as4_key``, from the same CA as the preview server's TLS certificate, which this server
  uses too.

The network behind it (countries, access points, providers and their behaviour, EDM versions)
is ``oots_network.DEFAULT_NETWORK``; ``version_by_country``/``version_by_provider`` change the
EDM version providers speak (and the DSD publishes). ``docs/oots-gateway.md`` is the overview.

WS plugin operations: ``submitMessage``, ``listPendingMessages``, ``retrieveMessage``,
``markMessageAsDownloaded``, ``getStatus`` (and ``...WithAccessPointRole``),
``getMessageErrors`` (and ``...WithAccessPointRole``; always empty), ``listPushFailedMessages``
(empty) and ``rePushFailedMessages`` (nothing to do); anything else is a ``soap:Sender`` fault.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import shutil
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.serialization import Encoding

from integrations.oots.edm import EdmVersion
from serviceplatform.sandbox.httpserver import (
    QuietHandler,
    ServerGroup,
    ServerThread,
    ThreadedServer,
    server_tls_context,
)
from serviceplatform.sandbox.oots_as4 import (
    AS4_PATH,
    As4Pusher,
    PlatformPeer,
    SimulatedAs4AccessPoint,
    as4_handler,
    read_key_pair,
)
from serviceplatform.sandbox.oots_common_services import (
    EBRS_MEDIA_TYPE,
    Service,
    digest_header,
    search,
)
from serviceplatform.sandbox.oots_hooks import hooks_handler
from serviceplatform.sandbox.oots_network import (
    DEFAULT_NETWORK,
    GATEWAY_ROLE,
    OOTS_PARTY_TYPE,
    REQUESTER_ACCESS_POINT,
    Network,
)
from serviceplatform.sandbox.oots_preview import PREVIEW_PATH, PreviewStore, preview_handler
from serviceplatform.sandbox.oots_providers import providers_of
from serviceplatform.sandbox.oots_state import GatewayState
from serviceplatform.sandbox.oots_wsplugin import (
    SOAP_CONTENT_TYPE,
    SoapRequest,
    WsPluginFault,
    child_text,
    empty_body,
    empty_response,
    fault_envelope,
    mark_downloaded_response,
    message_ids_response,
    parse_request,
    retrieve_response,
    status_response,
    submit_response,
    validate_submission,
)
from serviceplatform.sandbox.pki import (
    CertificateAuthority,
    ensure_pki,
    issue_certificate,
    load_ca,
    new_ca,
)

WSPLUGIN_PATH = "/domibus/services/wsplugin"
SEARCH_PATHS: dict[str, Service] = {
    "/rest/search": None,
    "/eb/rest/search": "eb",
    "/dsd/rest/search": "dsd",
}
PREVIEW_SUBJECT = "CN=localhost,O=Sandbox OOTS Preview Space,C=DK"
#: The providers' access points' AS4 key (one for all of them).
AS4_SUBJECT = "CN=Sandbox OOTS AS4 access points,O=Serviceplatform Sandbox,C=DK"
#: The CA of a preview server without ``tls_dir``.
PREVIEW_CA_SUBJECT = "CN=Sandbox OOTS Preview CA,O=Serviceplatform Sandbox,C=DK"
#: listPendingMessagesRequest filters (webservicePlugin-body.xsd), in schema order.
PENDING_FILTERS = (
    "messageId",
    "conversationId",
    "refToMessageId",
    "fromPartyId",
    "finalRecipient",
    "originalSender",
    "receivedFrom",
    "receivedTo",
)


class SimulatedOotsGateway(ServerGroup):
    """The simulated gateway, its providers, preview space, common services and hooks."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int = 0,
        preview_port: int = 0,
        as4_port: int = 0,
        username: str = "admin",
        password: str = "123456",
        response_delay: float = 0.2,
        preview_timeout: float = 300.0,
        version_by_country: Mapping[str, EdmVersion | str] | None = None,
        version_by_provider: Mapping[str, EdmVersion | str] | None = None,
        party_id: str = REQUESTER_ACCESS_POINT,
        tls_dir: Path | None = None,
        public_host: str | None = None,
        network: Network = DEFAULT_NETWORK,
    ) -> None:
        """``response_delay``: seconds between a submission and its answer becoming pending;
        ``preview_timeout``: seconds a second request waits for the user's preview decision
        before ``EDM:ERR:0005``; ``party_id``: the platform's own access point (the ``From``
        party it must submit as); ``public_host``: the host written into preview locations
        (default ``host``, ``localhost`` when ``host`` is a wildcard)."""
        self.network = network.with_versions(version_by_country, version_by_provider)
        self._tmp: Path | None = None
        self._host = public_host or (host if host not in ("", "0.0.0.0", "::") else "localhost")
        cert, key, self.preview_ca_cert, ca, prefix = self._preview_tls(tls_dir)
        self.as4_cert, self.as4_key = _as4_key_pair(ca, prefix.with_name("oots-as4-partner"))
        self.previews = PreviewStore(clock=time.monotonic)
        self.state = GatewayState(
            network=self.network,
            providers=providers_of(self.network, self.previews),
            party_id=party_id,
            response_delay=response_delay,
            preview_timeout=preview_timeout,
        )
        as4_key, as4_certificate = read_key_pair(self.as4_cert, self.as4_key)
        self.as4 = SimulatedAs4AccessPoint(
            self.state, as4_key, as4_certificate, access_points=self.network.access_points()
        )
        self._pusher = As4Pusher(self.as4.push_due)
        gateway = type(
            "OotsGatewayHandler",
            (_GatewayHandler,),
            {"state": self.state, "credentials": (username, password)},
        )
        state = self.state
        servers: list[ThreadedServer] = []
        try:
            servers.append(ThreadedServer((host, port), gateway))
            servers.append(
                ThreadedServer(
                    (host, preview_port),
                    preview_handler(self.previews, lambda: state.take_fault("preview")),
                    ssl_context=server_tls_context(cert, key, None),
                )
            )
            servers.append(
                ThreadedServer(("127.0.0.1", control_port), hooks_handler(state, self.previews))
            )
            servers.append(
                ThreadedServer(
                    (host, as4_port),
                    as4_handler(self.as4),
                    ssl_context=server_tls_context(cert, key, None),
                )
            )
        except BaseException:
            for server in servers:
                server.server_close()
            self._remove_tmp()
            raise
        self._gateway = ServerThread(servers[0], "oots-gateway")
        self._preview = ServerThread(servers[1], "oots-preview")
        self._control = ServerThread(servers[2], "oots-gateway-hooks")
        self._as4 = ServerThread(servers[3], "oots-gateway-as4")
        super().__init__(self._gateway, self._preview, self._control, self._as4)
        self.previews.base_url = self.preview_base_url

    # --- addresses -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The WS plugin endpoint (HTTP basic authentication)."""
        return f"http://{self._host}:{self._gateway.port}{WSPLUGIN_PATH}"

    @property
    def common_services_url(self) -> str:
        """``/rest/search``: Evidence Broker and Data Service Directory queries alike."""
        return f"http://{self._host}:{self._gateway.port}/rest/search"

    @property
    def evidence_broker_url(self) -> str:
        return f"http://{self._host}:{self._gateway.port}/eb/rest/search"

    @property
    def data_service_directory_url(self) -> str:
        return f"http://{self._host}:{self._gateway.port}/dsd/rest/search"

    @property
    def preview_base_url(self) -> str:
        return f"https://{self._host}:{self._preview.port}{PREVIEW_PATH}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self._control.port}/_sandbox"

    @property
    def as4_endpoint_url(self) -> str:
        """The providers' AS4 access points (HTTPS; trust ``preview_ca_cert``)."""
        return f"https://{self._host}:{self._as4.port}{AS4_PATH}"

    @property
    def as4_party_ids(self) -> list[str]:
        """The party ids the AS4 endpoint answers for (the providers' access points)."""
        return sorted(self.as4.access_points)

    def connect_as4(self, platform: PlatformPeer) -> None:
        """Name the platform's AS4 access point: requests are taken from it, answers pushed
        to its receiving endpoint."""
        self.as4.connect(platform)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if not self._started:
            super().start()
            self._pusher.start()

    def stop(self) -> None:
        self._pusher.stop()
        super().stop()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _preview_tls(
        self, tls_dir: Path | None
    ) -> tuple[Path, Path, Path, CertificateAuthority, Path]:
        """(certificate, key, CA certificate) of the preview server, its CA and file prefix."""
        if tls_dir is not None:
            pki = ensure_pki(tls_dir)
            ca = load_ca(pki.ca_cert, pki.ca_key)
            prefix = pki.directory / "oots-preview"
            ca_path = pki.ca_cert
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix="oots-preview-"))
            ca = new_ca(PREVIEW_CA_SUBJECT)  # lives as long as this gateway
            prefix = self._tmp / "oots-preview"
            ca_path = self._tmp / "ca.crt"
            ca_path.write_bytes(ca.cert.public_bytes(Encoding.PEM))
        cert, key = prefix.with_suffix(".crt"), prefix.with_suffix(".key")
        if not (cert.is_file() and key.is_file()):
            now = datetime.now(UTC)
            cert, key = issue_certificate(
                ca,
                PREVIEW_SUBJECT,
                not_before=now - timedelta(hours=1),
                not_after=now + timedelta(days=3650),
                server=True,
                path_prefix=prefix,
            )
        return cert, key, ca_path, ca, prefix


def _as4_key_pair(ca: CertificateAuthority, prefix: Path) -> tuple[Path, Path]:
    """The simulated access points' AS4 signing and decryption pair, made once."""
    cert, key = prefix.with_suffix(".crt"), prefix.with_suffix(".key")
    if cert.is_file() and key.is_file():
        return cert, key
    now = datetime.now(UTC)
    return issue_certificate(
        ca,
        AS4_SUBJECT,
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=3650),
        path_prefix=prefix,
    )


class _GatewayHandler(QuietHandler):
    state: ClassVar[GatewayState]
    credentials: ClassVar[tuple[str, str]]

    # --- HTTP ----------------------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 - http.server dispatch name
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path.rstrip("/")
        if path != WSPLUGIN_PATH:
            self.send_body(404, b"no such endpoint\n", "text/plain")
            return
        if self._faulted("wsplugin"):
            return
        with self.state.lock:
            self.state.requests_received += 1
        if not self._authenticated():
            fault = WsPluginFault(
                "WS_PLUGIN:0002",
                "Authentication or Authorization error: HTTP basic "
                "authentication with the plugin user is required",
                status=401,
            )
            self._fault(fault, {"WWW-Authenticate": 'Basic realm="Domibus"'})
            return
        try:
            request = parse_request(body, self.headers.get("Content-Type", ""))
            answer = self._dispatch(request)
        except WsPluginFault as fault:
            self._fault(fault)
            return
        except Exception as exc:  # a bug of the simulation: say so, as a fault
            self._fault(WsPluginFault("WS_PLUGIN:0001", f"simulated gateway error: {exc!r}"))
            return
        self.send_body(200, answer, SOAP_CONTENT_TYPE)

    def do_GET(self) -> None:  # noqa: N802 - http.server dispatch name
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        if path in SEARCH_PATHS:
            if self._faulted("common-services"):
                return
            answer = search(
                self.state.network,
                parse_qs(parts.query),
                service=SEARCH_PATHS[path],
                accept_version=self.headers.get("Accept-Version"),
            )
            self.send_body(200, answer, EBRS_MEDIA_TYPE, {"digest": digest_header(answer)})
            return
        if path == WSPLUGIN_PATH:
            self.send_body(
                405,
                b"the WS plugin takes SOAP 1.2 requests (POST); the sandbox serves no WSDL\n",
                "text/plain",
                {"Allow": "POST"},
            )
            return
        self.send_body(404, b"no such endpoint\n", "text/plain")

    do_HEAD = do_GET  # noqa: N815 - dispatch name

    def _authenticated(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return False
        expected_user, expected_password = self.credentials
        return hmac.compare_digest(user.encode(), expected_user.encode()) & hmac.compare_digest(
            password.encode(), expected_password.encode()
        )

    def _faulted(self, endpoint: str) -> bool:
        return self.answer_injected(self.state.take_fault(endpoint))

    def _fault(self, fault: WsPluginFault, headers: dict[str, str] | None = None) -> None:
        self.send_body(fault.status, fault_envelope(fault), SOAP_CONTENT_TYPE, headers)

    # --- the operations --------------------------------------------------------------------------

    def _dispatch(self, request: SoapRequest) -> bytes:
        state, body = self.state, request.body
        name = request.operation
        if name == "submitRequest":
            submission = validate_submission(request, party_type=OOTS_PARTY_TYPE, role=GATEWAY_ROLE)
            message_id, entity = state.submit(submission)
            return submit_response(message_id, entity)
        if name == "listPendingMessagesRequest":
            filters = {f: v for f in PENDING_FILTERS if (v := child_text(body, f)) is not None}
            return message_ids_response("listPendingMessagesResponse", state.pending(filters))
        if name == "retrieveMessageRequest":
            mark = (body.get("markAsDownloaded") or "true").strip().lower() != "false"
            message = state.retrieve(_message_id(body), mark=mark)
            return retrieve_response(message)
        if name == "markMessageAsDownloadedRequest":
            return mark_downloaded_response(state.mark_downloaded(_message_id(body)))
        if name in ("statusRequest", "statusRequestWithAccessPointRole"):
            return status_response(state.status(_message_id(body)))
        if name in ("getErrorsRequest", "getErrorsRequestWithAccessPointRole"):
            _message_id(body)
            return empty_response("getMessageErrorsResponse")
        if name == "listPushFailedMessagesRequest":
            return message_ids_response("listPushFailedMessagesResponse", [])
        if name == "rePushFailedMessagesRequest":
            return empty_body()
        raise WsPluginFault(
            "WS_PLUGIN:0001",
            f"unknown operation: no WS plugin operation takes {body.tag}",
            sender=True,
        )


def _message_id(body: Any) -> str:
    value = child_text(body, "messageID")
    if value is None:
        raise WsPluginFault("WS_PLUGIN:0007", "Message ID is empty (messageID)")
    return value

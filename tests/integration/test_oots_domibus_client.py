"""``DomibusWsClient`` against a local HTTP server answering with the real Domibus captures.

Real sockets: the fake access point (``FakeDomibus``) is an ``http.server`` in a thread that
answers from ``incoming/reel/`` and keeps a pending list the way the WS plugin does, or
misbehaves on request (drops the connection, answers 500, a SOAP fault, too slowly, too much).
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import pytest
from lxml import etree

from integrations.oots.as4.soap import SOAP12_NS
from integrations.oots.domibus.client import DomibusWsClient
from integrations.oots.domibus.ws_plugin import (
    WSPLUGIN_NS,
    parse_retrieve_response,
    parse_submit_request,
)
from serviceplatform.errors import (
    ConfigurationError,
    UpstreamAuthRefused,
    UpstreamBadResponse,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamTlsError,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.outbound.credentials import BasicAuth
from tests.oots_domibus_material import (
    REEL,
    REEL_ANSWER,
    fault_envelope,
    mark_response,
    outgoing,
    ws_plugin_schema,
)

pytestmark = pytest.mark.integration

USER: Final = "platform_c1"
PASSWORD: Final = "s3cret-Pa55"
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

#: What a responder answers: (status, body, headers), ``DROP`` (close without answering), or a
#: number of seconds to stall before answering the next item.
Reply = tuple[int, bytes, dict[str, str]]
DROP: Final = "drop"


def soap(status: int, body: bytes) -> Reply:
    return status, body, {"Content-Type": "application/soap+xml; charset=UTF-8"}


def operation_of(body: bytes) -> str:
    root = etree.fromstring(body, _PARSER)
    element = root.find(f"{{{SOAP12_NS}}}Body")
    assert element is not None
    return etree.QName(element[0]).localname


@dataclass
class Seen:
    operation: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeDomibus:
    """A WS plugin endpoint: a pending list, retrieve, mark as downloaded, submit."""

    #: MessageId -> the retrieveMessage answer (a capture) for a pending message.
    pending: dict[str, bytes] = field(default_factory=dict)
    #: Messages received and already marked downloaded (retrievable, not pending).
    downloaded: dict[str, bytes] = field(default_factory=dict)
    submitted: list[bytes] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    #: Exceptions of the handler thread (a failed check there must fail the test).
    errors: list[BaseException] = field(default_factory=list)
    #: Per operation: replies to give instead of the normal answer, in order.
    script: dict[str, list[Reply | str | float]] = field(default_factory=dict)
    #: Replace the whole behaviour.
    responder: Callable[[str, bytes], Reply | str] | None = None
    require_auth: bool = True
    url: str = ""
    schema: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, capture: Path) -> str:
        document = capture.read_bytes()
        message_id = parse_retrieve_response(document).message_id
        self.pending[message_id] = document
        return message_id

    def handle(self, body: bytes, headers: dict[str, str]) -> Reply | str:
        operation = operation_of(body)
        with self.lock:
            self.seen.append(Seen(operation, body, headers))
            scripted = self.script.get(operation)
            while scripted:
                step = scripted.pop(0)
                if isinstance(step, float | int):
                    time.sleep(step)
                    continue
                return step
        if self.responder is not None:
            return self.responder(operation, body)
        if self.require_auth:
            expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if headers.get("authorization") != f"Basic {expected}":
                return 401, b"Unauthorized", {"WWW-Authenticate": 'Basic realm="domibus"'}
        assert headers.get("content-type", "").startswith("application/soap+xml")
        if self.schema is not None:
            assert self.schema.validate(etree.fromstring(body, _PARSER)), self.schema.error_log
        root = etree.fromstring(body, _PARSER)
        request = root.find(f"{{{SOAP12_NS}}}Body")
        assert request is not None
        message_id = request[0].findtext("messageID") or ""
        with self.lock:
            if operation == "listPendingMessagesRequest":
                ids = "".join(f"<messageID>{m}</messageID>" for m in self.pending)
                return soap(200, _ws("listPendingMessagesResponse", ids))
            if operation == "retrieveMessageRequest":
                assert request[0].get("markAsDownloaded") == "false"
                found = self.pending.get(message_id) or self.downloaded.get(message_id)
                if found is None:
                    return soap(500, fault_envelope("WS_PLUGIN:0009", f"Message [{message_id}]"))
                return soap(200, found)
            if operation == "markMessageAsDownloadedRequest":
                if message_id not in self.pending:
                    return soap(500, fault_envelope("WS_PLUGIN:0009", "No message found"))
                self.downloaded[message_id] = self.pending.pop(message_id)
                return soap(200, mark_response(message_id))
            if operation == "statusRequest":
                known = any(
                    parse_submit_request(b).message_id == message_id for b in self.submitted
                )
                status = "SEND_ENQUEUED" if known else "NOT_FOUND"
                return soap(200, _ws("getStatusResponse", status))
            if operation == "submitRequest":
                self.submitted.append(body)
                message = parse_submit_request(body)
                answer = (
                    f"<messageID>{message.message_id}</messageID>"
                    "<messageEntityID>874945832007903076</messageEntityID>"
                )
                return soap(200, _ws("submitResponse", answer))
        return soap(500, fault_envelope(None, "unknown operation", "Sender"))

    def operations(self) -> list[str]:
        return [s.operation for s in self.seen]


def _ws(local: str, content: str) -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body>'
        f'<ns2:{local} xmlns:ns2="{WSPLUGIN_NS}">{content}</ns2:{local}>'
        f"</soap:Body></soap:Envelope>"
    ).encode()


def _handler(fake: FakeDomibus) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                reply = fake.handle(body, headers)
            except BaseException as exc:
                fake.errors.append(exc)
                raise
            if reply == DROP:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            assert not isinstance(reply, str)
            status, content, extra = reply
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

    return Handler


@contextmanager
def running(fake: FakeDomibus, tls: ssl.SSLContext | None = None) -> Iterator[FakeDomibus]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    fake.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/domibus/services/wsplugin"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert fake.errors == []


@pytest.fixture(scope="module")
def schema() -> Any:
    return ws_plugin_schema()


@pytest.fixture
def domibus(schema: Any) -> Iterator[FakeDomibus]:
    with running(FakeDomibus(schema=schema)) as fake:
        yield fake


@dataclass
class Sleeps:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client_for(fake: FakeDomibus, sleeps: Sleeps | None = None, **options: Any) -> DomibusWsClient:
    values: dict[str, Any] = {"username": USER, "password": PASSWORD, "timeout": 5.0}
    values.update(options)
    return DomibusWsClient.connect(fake.url, sleep=sleeps or Sleeps(), **values)


# --- the conversation -------------------------------------------------------------------------


def test_submit_sends_the_envelope_and_returns_the_message_id(domibus: FakeDomibus) -> None:
    message = outgoing()
    with client_for(domibus) as client:
        assert client.submit(message) == message.message_id
    (seen,) = domibus.seen
    assert seen.headers["content-type"] == "application/soap+xml; charset=utf-8"
    assert seen.headers["connection"] == "close"
    read = parse_submit_request(domibus.submitted[0])
    assert (read.message_id, read.body) == (message.message_id, message.payload)


def test_pending_retrieve_and_acknowledge_with_the_real_captures(domibus: FakeDomibus) -> None:
    answer_id = domibus.add(REEL_ANSWER)
    request_id = domibus.add(REEL / "requete.xml")
    with client_for(domibus) as client:
        assert client.pending() == [answer_id, request_id]
        received = client.retrieve(answer_id)
        assert received == parse_retrieve_response(REEL_ANSWER.read_bytes())
        assert client.pending() == [answer_id, request_id]  # retrieving does not mark
        client.acknowledge(answer_id)
        assert client.pending() == [request_id]
        with pytest.raises(UpstreamNotFound):
            client.acknowledge(answer_id)
    assert domibus.operations().count("markMessageAsDownloadedRequest") == 2


def test_the_pending_filter_goes_to_domibus(domibus: FakeDomibus) -> None:
    with client_for(domibus) as client:
        assert client.pending("29189846", conversation_id="c-1") == []
    request = etree.fromstring(domibus.seen[0].body, _PARSER).find(f".//{{{WSPLUGIN_NS}}}*")
    assert request is not None
    assert [(c.tag, c.text) for c in request] == [
        ("conversationId", "c-1"),
        ("finalRecipient", "29189846"),
    ]


def test_the_captured_empty_list_and_submit_answers(domibus: FakeDomibus) -> None:
    domibus.script["listPendingMessagesRequest"] = [
        soap(200, (REEL / "listeMessagesEnAttente.vide.xml").read_bytes())
    ]
    domibus.script["submitRequest"] = [soap(200, (REEL / "soumissionMessage.xml").read_bytes())]
    with client_for(domibus) as client:
        assert client.pending() == []
        assert client.submit(outgoing()) == "45fa5345-5a18-4691-945f-531f9568729f@oots.eu"


def test_status_tells_a_taken_message_from_an_unknown_one(domibus: FakeDomibus) -> None:
    message = outgoing()
    with client_for(domibus) as client:
        assert client.status(message.message_id) == "NOT_FOUND"
        client.submit(message)
        assert client.status(message.message_id) == "SEND_ENQUEUED"
    assert domibus.operations().count("statusRequest") == 2


# --- failures ------------------------------------------------------------------------------


def test_a_dropped_connection_is_unreachable_and_reads_are_retried(domibus: FakeDomibus) -> None:
    domibus.script["listPendingMessagesRequest"] = [DROP, DROP]
    sleeps = Sleeps()
    with client_for(domibus, sleeps, retries=2, backoff_seconds=0.25) as client:
        assert client.pending() == []
    assert domibus.operations() == ["listPendingMessagesRequest"] * 3
    assert sleeps.calls == [0.25, 0.5]
    domibus.script["listPendingMessagesRequest"] = [DROP] * 3
    with client_for(domibus, retries=2) as client, pytest.raises(UpstreamUnreachable):
        client.pending()


def test_a_submit_dropped_after_sending_is_not_repeated(domibus: FakeDomibus) -> None:
    domibus.script["submitRequest"] = [DROP]
    with client_for(domibus, retries=3) as client, pytest.raises(UpstreamUnreachable):
        client.submit(outgoing())
    assert domibus.operations() == ["submitRequest"]


def test_a_submit_answered_500_is_not_repeated(domibus: FakeDomibus) -> None:
    domibus.script["submitRequest"] = [(500, b"<html>Internal error</html>", {})]
    with client_for(domibus, retries=3) as client, pytest.raises(UpstreamUnavailable) as caught:
        client.submit(outgoing())
    assert caught.value.status == 500
    assert domibus.operations() == ["submitRequest"]


def test_500_is_unavailable_and_retried_for_reads(domibus: FakeDomibus) -> None:
    domibus.script["retrieveMessageRequest"] = [(503, b"busy", {}), (500, b"<html/>", {})]
    domibus.add(REEL_ANSWER)
    with client_for(domibus, retries=1) as client, pytest.raises(UpstreamUnavailable):
        client.retrieve(next(iter(domibus.pending)))
    assert domibus.operations() == ["retrieveMessageRequest"] * 2


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("WS_PLUGIN:0009", UpstreamNotFound),
        ("EBMS:0010", UpstreamRejected),
        ("WS_PLUGIN_0005", UpstreamRejected),
        ("WS_PLUGIN:0002", UpstreamAuthRefused),
    ],
)
def test_soap_faults_become_their_errors_without_retry(
    domibus: FakeDomibus, code: str, expected: type[Exception]
) -> None:
    domibus.script["submitRequest"] = [soap(500, fault_envelope(code, "refused"))]
    domibus.script["retrieveMessageRequest"] = [soap(500, fault_envelope(code, "refused"))]
    with client_for(domibus, retries=3) as client:
        with pytest.raises(expected) as caught:
            client.submit(outgoing())
        assert getattr(caught.value, "status", None) == 500
        with pytest.raises(expected):
            client.retrieve("m@x")
    assert domibus.operations() == ["submitRequest", "retrieveMessageRequest"]


def test_a_generic_plugin_fault_is_retried_for_reads(domibus: FakeDomibus) -> None:
    domibus.script["listPendingMessagesRequest"] = [soap(500, fault_envelope("WS_PLUGIN:0001"))]
    with client_for(domibus, retries=1) as client:
        assert client.pending() == []
    assert domibus.operations() == ["listPendingMessagesRequest"] * 2


def test_wrong_credentials_are_refused(domibus: FakeDomibus) -> None:
    with client_for(domibus, password="wrong") as client, pytest.raises(UpstreamAuthRefused):
        client.pending()


def test_a_slow_answer_times_out_and_a_submit_is_not_repeated(domibus: FakeDomibus) -> None:
    domibus.script["submitRequest"] = [1.5]
    # UpstreamTimeout: it gave up before the 1.5 s answer, and did not send it again.
    with client_for(domibus, timeout=0.4, retries=2) as client, pytest.raises(UpstreamTimeout):
        client.submit(outgoing())
    assert domibus.operations() == ["submitRequest"]


def test_connection_refused_is_retried_even_for_submit() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    client = DomibusWsClient.connect(f"http://127.0.0.1:{port}/ws", retries=2, sleep=sleeps)
    with client, pytest.raises(UpstreamUnreachable) as caught:
        client.submit(outgoing())
    assert "connection refused" in caught.value.error_text
    assert len(sleeps.calls) == 2  # never sent: safe to repeat


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (soap(200, b"<html>not soap</html>"), "SOAP 1.2"),
        (soap(200, b""), "well-formed"),
        ((200, b"--x\r\n", {"Content-Type": "multipart/related; boundary=x"}), "MTOM"),
        ((302, b"", {"Location": "http://elsewhere/"}), "302"),
    ],
    ids=["html", "empty", "mtom", "redirect"],
)
def test_unreadable_answers_are_bad_responses(
    domibus: FakeDomibus, reply: Reply, problem: str
) -> None:
    domibus.script["listPendingMessagesRequest"] = [reply]
    with client_for(domibus) as client, pytest.raises(UpstreamBadResponse) as caught:
        client.pending()
    assert problem in caught.value.error_text


def test_an_answer_larger_than_the_limit_is_refused(domibus: FakeDomibus) -> None:
    domibus.add(REEL_ANSWER)
    client = client_for(domibus, max_response_bytes=4096)
    with client, pytest.raises(UpstreamBadResponse) as caught:
        client.retrieve(next(iter(domibus.pending)))
    assert "larger than the limit" in caught.value.error_text


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    for kwargs in (
        {"base_url": "ftp://x/"},
        {"base_url": "http://x/", "ca_cert": str(tmp_path / "none.pem")},
        {"base_url": "http://x/", "username": "u"},
        {"base_url": "http://x/", "retries": -1},
    ):
        with pytest.raises(ConfigurationError):
            DomibusWsClient.connect(**kwargs)


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return context, path


def test_tls_with_the_configured_ca(
    tls: tuple[ssl.SSLContext, Path], schema: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    context, ca_path = tls
    with running(FakeDomibus(schema=schema), tls=context) as fake:
        with client_for(fake, ca_cert=str(ca_path)) as client:
            assert client.pending() == []
        # The environment's CA bundle is ignored (trust_env is off): only ca_cert counts.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_path))
        with client_for(fake, retries=0) as client, pytest.raises(UpstreamTlsError):
            client.pending()


def test_the_transport_ignores_the_environment(
    domibus: FakeDomibus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that does not exist: a client honouring the environment could not connect.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with client_for(domibus, retries=0) as client:
        assert client.pending() == []
        assert client.credential == BasicAuth(USER, PASSWORD)
        assert PASSWORD not in repr(client.credential)
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert domibus.seen[0].headers["authorization"] == f"Basic {expected}"

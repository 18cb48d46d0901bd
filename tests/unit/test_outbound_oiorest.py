"""HttpTransport without sockets: exception translation, Fejl parsing, the retry budget."""

from __future__ import annotations

import io
import ssl
from dataclasses import dataclass, field
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util import Timeout

from integrations.sf2250.register_errors import parse_fejl
from serviceplatform.config import PeerSettings
from serviceplatform.errors import (
    ConfigurationError,
    UpstreamBadResponse,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamTlsError,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import NO_CREDENTIAL
from serviceplatform.outbound.retry import MIN_ATTEMPT_SECONDS
from serviceplatform.outbound.translate import translate_exception
from serviceplatform.outbound.transport import ContextAdapter, HttpTransport, prepare_request

URL = "https://register.test/register/S/boks/0101901234"


def wrapped(reason: BaseException) -> MaxRetryError:
    return MaxRetryError(None, URL, reason=reason)  # type: ignore[arg-type]


def refused() -> NewConnectionError:
    error = NewConnectionError(None, f"{URL}: Failed to establish a new connection")  # type: ignore[arg-type]
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


@pytest.mark.parametrize(
    ("exc", "expected", "reason"),
    [
        (requests.ConnectTimeout(wrapped(TimeoutError())), UpstreamTimeout, "timed out"),
        (requests.ReadTimeout(f"read timed out {URL}"), UpstreamTimeout, ""),
        (requests.ConnectionError(wrapped(refused())), UpstreamUnreachable, "connection refused"),
        (
            requests.ConnectionError(ProtocolError("aborted", RemoteDisconnected("closed"))),
            UpstreamUnreachable,
            "without a response",
        ),
        (
            requests.ConnectionError(ProtocolError("aborted", ConnectionResetError(104, "reset"))),
            UpstreamUnreachable,
            "reset by peer",
        ),
        (
            requests.ConnectionError(ProtocolError("aborted", ssl.SSLEOFError(8, "EOF"))),
            UpstreamUnreachable,
            "closed during TLS",
        ),
        (
            requests.ConnectionError(ProtocolError("aborted", ssl.SSLError(1, "alert"))),
            UpstreamTlsError,
            "TLS error",
        ),
        (
            requests.exceptions.SSLError(
                wrapped(Urllib3SSLError(ssl.SSLCertVerificationError(1, "verify failed")))
            ),
            UpstreamTlsError,
            "certificate verification failed",
        ),
        (
            requests.exceptions.SSLError(wrapped(Urllib3SSLError(TimeoutError("handshake")))),
            UpstreamTimeout,
            "",
        ),
        (requests.exceptions.ChunkedEncodingError("broken"), UpstreamBadResponse, ""),
        (requests.exceptions.InvalidURL(URL), ConfigurationError, ""),
        (OSError("Could not find the TLS certificate file"), ConfigurationError, ""),
    ],
)
def test_translate_exception_table(exc, expected, reason):
    error = translate_exception(exc, "nemsms")
    assert type(error) is expected
    assert reason in error.error_text
    assert "0101901234" not in error.error_text


def test_parse_fejl_reads_code_and_text_in_any_namespace():
    body = (
        b'<f:Fejl xmlns:f="urn:oio:dkal:1.0.0"><f:FejlKode>3001</f:FejlKode>'
        b"<f:FejlTekst>ukendt slutbruger</f:FejlTekst></f:Fejl>"
    )
    assert parse_fejl(body) == "FejlKode 3001: ukendt slutbruger"
    assert parse_fejl(b"<Fejl><FejlKode>7</FejlKode></Fejl>") == "FejlKode 7"


def test_parse_fejl_falls_back_to_text():
    assert parse_fejl(b"<html><body>Bad gateway</body></html>") == (
        "<html><body>Bad gateway</body></html>"
    )
    assert parse_fejl(b"plain  text") == "plain text"


# --- the retry loop, on a fake clock --------------------------------------------------------


@dataclass
class FakeClock:
    now: float = 100.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeResponse:
    status_code: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def iter_content(self, chunk_size: int) -> list[bytes]:
        return [self.content] if self.content else []

    def close(self) -> None:
        pass


class FakeAdapter:
    """Answers from a script; each step takes ``duration`` seconds of the fake clock."""

    def __init__(self, clock: FakeClock, script: list[tuple[float, int | BaseException]]) -> None:
        self.clock = clock
        self.script = script
        self.timeouts: list[Timeout] = []
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: Any, **kwargs: Any) -> FakeResponse:
        timeout: Timeout = kwargs["timeout"]
        self.timeouts.append(timeout)
        self.requests.append(request)
        duration, outcome = self.script.pop(0) if self.script else self.script_end()
        assert isinstance(timeout.total, float)
        self.clock.now += min(duration, timeout.total)
        if isinstance(outcome, BaseException):
            raise outcome
        return FakeResponse(outcome)

    def script_end(self) -> tuple[float, int]:
        raise AssertionError("more attempts than scripted")

    def close(self) -> None:
        pass


def make(
    tmp_path: Path,
    script: list[tuple[float, int | BaseException]],
    base_url: str = "https://register.test",
    **settings: Any,
) -> tuple[HttpTransport, FakeClock, FakeAdapter]:
    clock = FakeClock()
    peer = PeerSettings(base_url=base_url, **settings)
    adapter = FakeAdapter(clock, script)
    transport = HttpTransport(
        peer,
        CertificateStore(tmp_path),
        clock,
        sleep=clock.sleep,
        adapter_factory=lambda context, size: adapter,  # type: ignore[arg-type,return-value]
    )
    return transport, clock, adapter


REQUEST = OutboundRequest("PUT", "/register/S/boks/0101901234", b"<a/>")


def test_5xx_is_retried_with_growing_backoff(tmp_path):
    transport, clock, _ = make(tmp_path, [(0.01, 503), (0.01, 502), (0.01, 200)])
    response = transport.send(REQUEST, credential=NO_CREDENTIAL)
    assert response.status == 200
    assert response.attempts == 3
    assert clock.sleeps == [0.05, 0.1]
    assert response.elapsed == pytest.approx(0.18)


def test_4xx_is_never_retried(tmp_path):
    transport, _, session = make(tmp_path, [(0.01, 409)])
    with pytest.raises(UpstreamRejected):
        transport.send(REQUEST, credential=NO_CREDENTIAL)
    assert len(session.timeouts) == 1


def test_retries_are_bounded_by_max_retries(tmp_path):
    transport, _, session = make(tmp_path, [(0.01, 503)] * 2, max_retries=1)
    with pytest.raises(UpstreamUnavailable):
        transport.send(REQUEST, credential=NO_CREDENTIAL)
    assert len(session.timeouts) == 2


def test_every_attempt_is_capped_by_the_budget(tmp_path):
    slow = requests.ReadTimeout("slow")
    transport, clock, session = make(tmp_path, [(10.0, slow)] * 3)
    started = clock.now
    with pytest.raises(UpstreamTimeout):
        transport.send(REQUEST, credential=NO_CREDENTIAL)
    assert clock.now - started <= 1.0 + 1e-9
    first = session.timeouts[0]
    assert (first.connect_timeout, first.total) == (0.25, 1.0)
    for timeout in session.timeouts[1:]:
        assert isinstance(timeout.total, float) and timeout.total < 1.0


def test_no_retry_when_too_little_budget_is_left(tmp_path):
    transport, _, session = make(tmp_path, [(1.0 - MIN_ATTEMPT_SECONDS / 2, 503)])
    with pytest.raises(UpstreamUnavailable):
        transport.send(REQUEST, credential=NO_CREDENTIAL)
    assert len(session.timeouts) == 1


def test_tls_errors_are_not_retried(tmp_path):
    tls = requests.exceptions.SSLError(wrapped(Urllib3SSLError(ssl.SSLError(1, "bad"))))
    transport, _, session = make(tmp_path, [(0.01, tls)])
    with pytest.raises(UpstreamTlsError) as caught:
        transport.send(REQUEST, credential=NO_CREDENTIAL)
    assert caught.value.__cause__ is tls
    assert len(session.timeouts) == 1


@pytest.mark.parametrize(
    "base_url", ["register.test", "https://", "https://register.test:x", "https://r.test:70000"]
)
def test_bad_base_url_is_configuration_error(tmp_path, base_url):
    """config check's rule (``outbound/urls.py``): a port that is no number up to 65535 was
    let through here and failed at each call."""
    with pytest.raises(ConfigurationError, match="is not a URL"):
        HttpTransport(PeerSettings(base_url=base_url), CertificateStore(tmp_path))


@pytest.mark.parametrize(
    "request_",
    [
        OutboundRequest(
            "PUT",
            "/register/S/boks/0101901234?x=1 2",
            "<a>æ</a>".encode(),
            {"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml"},
        ),
        OutboundRequest("GET", "/register/S/liste"),
        OutboundRequest("DELETE", "/register/S/liste/ref-1", b""),
    ],
)
@pytest.mark.parametrize("base_url", ["https://register.test", "https://u:p%40ss@register.test"])
def test_the_wire_request_is_what_requests_would_prepare(tmp_path, request_, base_url):
    """Preparing without the cookie jar changes nothing that reaches the peer."""
    transport, _, adapter = make(tmp_path, [(0.01, 200)], base_url)
    transport.send(request_, credential=NO_CREDENTIAL)
    sent = adapter.requests[0]
    expected = requests.Request(
        request_.method,
        base_url + request_.path,
        data=request_.body,
        headers=dict(request_.headers),
    ).prepare()
    assert (sent.method, sent.url, sent.body) == (expected.method, expected.url, expected.body)
    assert dict(sent.headers) == dict(expected.headers)


@pytest.mark.parametrize(
    "url",
    [
        "https://register.test/register/S/boks/0101901234",  # the fast path
        "https://register.test:8443/a/b/",
        "https://register.test",
        "http://127.0.0.1:1234/x_y~z-1.2",
        "https://Register.TEST/a",  # not plain: requests lowercases the host
        "https://register.test/a/../b",  # not plain: urllib3 removes dot segments
        "https://register.test//a",
        "https://register.test:0443/a",
        "https://u:p@register.test/a",
        "https://register.test/a?x=1",
        "https://register.test/æ",
        "https://xn--rsk-7na.test/a",
    ],
)
def test_prepare_request_makes_every_url_as_requests_would(url):
    """The plain-URL shortcut of ``prepare_request`` yields requests' own URL and auth."""
    request_ = OutboundRequest("PUT", "", b"<a/>", {"Content-Type": "application/xml"})
    sent = prepare_request(request_, url, {"Authorization": "x"})
    expected = requests.Request(
        "PUT", url, data=b"<a/>", headers={"Content-Type": "application/xml", "Authorization": "x"}
    ).prepare()
    assert (sent.method, sent.url, sent.body) == (expected.method, expected.url, expected.body)
    assert dict(sent.headers) == dict(expected.headers)


def test_the_adapter_remembers_one_pool_per_origin():
    """Requests to one origin share the pool the pool manager gave the first of them."""
    adapter = ContextAdapter(ssl.create_default_context(), pool_connections=2, max_retries=0)
    pools = [
        adapter.get_connection_with_tls_context(
            requests.Request("GET", url).prepare(), verify=True, proxies={}
        )
        for url in (
            "https://a.test/x/0101901234",
            "https://a.test/y",
            "https://a.test:444/x",
            "https://b.test/x",
            "https://b.test",
        )
    ]
    assert pools[0] is pools[1]
    assert pools[2] is not pools[0] and pools[3] not in (pools[0], pools[2])
    assert pools[3] is pools[4]
    assert (pools[2].host, pools[2].port, pools[3].host) == ("a.test", 444, "b.test")
    adapter.close()


def test_the_adapter_builds_the_request_line_and_response_as_requests_does():
    """The lean ``request_url`` and ``build_response`` agree with ``HTTPAdapter``'s own."""
    from urllib3 import HTTPResponse

    adapter = ContextAdapter(ssl.create_default_context(), max_retries=0)
    plain = requests.adapters.HTTPAdapter()
    prepared = requests.Request("PUT", "https://a.test/r/S/boks/0101901234?x=1 2").prepare()
    assert adapter.request_url(prepared, {}) == plain.request_url(prepared, {})

    def answer() -> HTTPResponse:
        return HTTPResponse(
            body=io.BytesIO(b"<ok/>"),
            headers={"Content-Type": "application/xml; charset=latin-1", "X-A": "1"},
            status=201,
            reason="Created",
            preload_content=False,
        )

    ours, theirs = (
        adapter.build_response(prepared, answer()),
        plain.build_response(prepared, answer()),
    )
    for name in ("status_code", "headers", "encoding", "reason", "url", "request", "content"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.connection is adapter and not ours.cookies

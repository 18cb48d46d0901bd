"""Token credentials (issue 15), with in-memory transports and a fake issuer.

- the STS issue request (CVR as anvenderkontekst, the certificate as UseKey, the entity ID as
  AppliesTo) and the exchange (form field ``saml-token``), each over the scope's certificate;
- each failure its own code: STS down / refusing, exchange down / refusing, an expired or an
  unreadable token; no token value in a detail or a log line;
- the cache: one token for many calls, per (CVR, entity ID, certificate), refreshed before
  expiry, one refresh under 8 concurrent calls, a failed refresh shared by its waiters;
- the credential: ``Holder-of-key`` header, the certificate's TLS identity, a 401 drops the
  token shown and asks for one resend.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from requests.structures import CaseInsensitiveDict

from serviceplatform.config import PeerSettings
from serviceplatform.errors import (
    AccessTokenExpired,
    ServicePlatformError,
    TokenAnswerUnreadable,
    TokenExchangeRefused,
    TokenExchangeUnavailable,
    TokenRequestRefused,
    TokenServiceUnavailable,
    UpstreamAuthRefused,
    UpstreamUnreachable,
)
from serviceplatform.outbound.base import MemoryTransport, OutboundRequest, OutboundResponse
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import ClientCertificate
from serviceplatform.outbound.kombi_sts import (
    SAML_TOKEN_TYPE,
    AccessToken,
    TokenIssuer,
    TokenScope,
)
from serviceplatform.outbound.token_credential import TokenCache
from serviceplatform.outbound.transport import HttpTransport
from tests.certificates import make_cert

ENTITY = "http://entityid.kombit.dk/service/kombipostafsend/1"
SCOPE = TokenScope("29189846", ENTITY, "platform")
ASSERTION = base64.b64encode(b"<saml:Assertion>secret-saml</saml:Assertion>").decode()
ACCESS = "ACCESS-TOKEN-VALUE-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> CertificateStore:
    certs = CertificateStore(tmp_path / "certs")
    for alias in ("platform", "other"):
        made = make_cert(f"CN={alias},O=Platform,C=DK")
        key = made.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        certs.import_pem(alias, made.pem, key)
    return certs


def sts_answer(token: str = ASSERTION) -> OutboundResponse:
    body = json.dumps({"RequestedSecurityToken": {"Assertion": token}, "Lifetime": {}})
    return OutboundResponse(200, body.encode(), {}, 0.0)


def exchange_answer(value: str = ACCESS, expires_in: float = 3600) -> OutboundResponse:
    body = {"access_token": value, "token_type": "Holder-of-key", "expires_in": expires_in}
    return OutboundResponse(200, json.dumps(body).encode(), {}, 0.0)


def issuer_with(
    store: CertificateStore, sts: MemoryTransport, exchange: MemoryTransport
) -> TokenIssuer:
    return TokenIssuer(sts, lambda scope: exchange, store)


# --- the two requests ------------------------------------------------------------------------


def test_issue_request_and_exchange_carry_what_the_digest_names(store: CertificateStore) -> None:
    sts, exchange = MemoryTransport(), MemoryTransport()
    sts.queue(sts_answer())
    exchange.queue(exchange_answer())
    token = issuer_with(store, sts, exchange).issue(SCOPE)
    assert token.value == ACCESS and token.expires_in == 3600

    (issued,) = sts.sent
    assert issued.request.method == "POST"
    assert issued.request.path == "/runtime/api/rest/wstrust/v1/issue"
    assert issued.credential == ClientCertificate("platform")
    body = json.loads(issued.request.body)
    assert body["AnvenderKontekst"] == {"Cvr": "29189846"}
    assert body["AppliesTo"] == {"EndpointReference": {"Address": ENTITY}}
    assert body["TokenType"] == SAML_TOKEN_TYPE
    assert body["KeyType"].endswith("/PublicKey") and body["RequestType"].endswith("/Issue")
    assert body["OnBehalfOf"] is None
    der = store.certificate("platform").public_bytes(Encoding.DER)
    assert base64.b64decode(body["UseKey"]) == der and "\n" not in body["UseKey"]

    (swapped,) = exchange.sent
    assert swapped.request.path == "/service/AccessTokenService_1/token"
    assert swapped.credential == ClientCertificate("platform")
    assert swapped.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(swapped.request.body.decode()) == {"saml-token": [ASSERTION]}


@pytest.mark.parametrize(
    ("sts_reply", "exchange_reply", "expected"),
    [
        (UpstreamUnreachable("connection refused"), None, TokenServiceUnavailable),
        (OutboundResponse(503, b"busy", {}, 0.0), None, TokenServiceUnavailable),
        (OutboundResponse(400, b"CVR not allowed", {}, 0.0), None, TokenRequestRefused),
        (OutboundResponse(403, b"", {}, 0.0), None, TokenRequestRefused),
        (OutboundResponse(200, b"{}", {}, 0.0), None, TokenAnswerUnreadable),
        (sts_answer("not base64 !"), None, TokenAnswerUnreadable),
        (sts_answer(), UpstreamUnreachable("down"), TokenExchangeUnavailable),
        (sts_answer(), OutboundResponse(502, b"", {}, 0.0), TokenExchangeUnavailable),
        (sts_answer(), OutboundResponse(401, ASSERTION.encode(), {}, 0.0), TokenExchangeRefused),
        (sts_answer(), OutboundResponse(200, b"[1]", {}, 0.0), TokenAnswerUnreadable),
    ],
)
def test_each_failure_has_its_own_code(
    store: CertificateStore,
    sts_reply: OutboundResponse | ServicePlatformError,
    exchange_reply: OutboundResponse | ServicePlatformError | None,
    expected: type[ServicePlatformError],
) -> None:
    sts, exchange = MemoryTransport(), MemoryTransport()
    sts.queue(sts_reply)
    if exchange_reply is not None:
        exchange.queue(exchange_reply)
    with pytest.raises(expected) as caught:
        issuer_with(store, sts, exchange).issue(SCOPE)
    # The exchange's refusal may quote the SAML token: never into the detail.
    assert ASSERTION not in caught.value.error_text
    assert "29189846" in caught.value.error_text
    if exchange_reply is None:
        assert exchange.sent == []


def test_the_sts_refusal_quotes_the_sts(store: CertificateStore) -> None:
    sts = MemoryTransport()
    sts.queue(OutboundResponse(400, b"CVR not allowed", {}, 0.0))
    with pytest.raises(TokenRequestRefused, match=r"HTTP 400.*CVR not allowed"):
        issuer_with(store, sts, MemoryTransport()).issue(SCOPE)


def test_codes_are_distinct() -> None:
    classes = (
        TokenServiceUnavailable,
        TokenRequestRefused,
        TokenExchangeUnavailable,
        TokenExchangeRefused,
        AccessTokenExpired,
        TokenAnswerUnreadable,
    )
    assert len({cls.code for cls in classes}) == len(classes)
    assert TokenServiceUnavailable.retryable and not TokenRequestRefused.retryable


def test_no_token_in_any_log_line(
    store: CertificateStore, caplog: pytest.LogCaptureFixture
) -> None:
    sts, exchange = MemoryTransport(), MemoryTransport()
    sts.queue(sts_answer())
    exchange.queue(exchange_answer())
    caplog.set_level(logging.DEBUG)
    cache = TokenCache(issuer_with(store, sts, exchange), store)
    credential = cache.credential(SCOPE)
    credential.headers()
    credential.refused()
    assert caplog.records, "the flow logs what it does"
    text = caplog.text + repr(credential) + repr(AccessToken(ACCESS, 1))
    assert ACCESS not in text and ASSERTION not in text


# --- the cache ---------------------------------------------------------------------------------


class FakeIssuer:
    """Counts issues; tokens numbered; optional failure and delay."""

    def __init__(self, expires_in: float = 3600, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.calls = 0
        self.fail: ServicePlatformError | None = None
        self._lock = threading.Lock()

    def issue(self, scope: TokenScope) -> AccessToken:
        with self._lock:
            self.calls += 1
            number = self.calls
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return AccessToken(f"token-{number}-{scope.certificate_alias}", self.expires_in)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_token_for_many_calls_and_refresh_before_expiry(store: CertificateStore) -> None:
    issuer, clock = FakeIssuer(expires_in=3600), Clock()
    cache = TokenCache(issuer, store, refresh_margin=300, clock=clock)
    values = {cache.token(SCOPE) for _ in range(20)}
    assert values == {"token-1-platform"} and issuer.calls == 1
    clock.now += 3600 - 301
    assert cache.token(SCOPE) == "token-1-platform"
    clock.now += 2  # inside the margin: replaced before it expires
    assert cache.token(SCOPE) == "token-2-platform" and issuer.calls == 2


def test_short_lifetimes_keep_a_usable_window(store: CertificateStore) -> None:
    issuer, clock = FakeIssuer(expires_in=8), Clock()
    cache = TokenCache(issuer, store, refresh_margin=300, clock=clock)
    cache.token(SCOPE)
    clock.now += 5  # a quarter of 8 s is the margin: still in use
    cache.token(SCOPE)
    assert issuer.calls == 1
    clock.now += 1.5
    cache.token(SCOPE)
    assert issuer.calls == 2


def test_one_token_per_authority_entity_and_certificate(store: CertificateStore) -> None:
    issuer = FakeIssuer()
    cache = TokenCache(issuer, store)
    scopes = [
        SCOPE,
        TokenScope("11111111", ENTITY, "platform"),
        TokenScope("29189846", "http://entityid.kombit.dk/service/postforespoerg/1", "platform"),
        TokenScope("29189846", ENTITY, "other"),
    ]
    for scope in scopes * 3:
        cache.token(scope)
    assert issuer.calls == 4


def test_a_renewed_certificate_gets_a_new_token(store: CertificateStore) -> None:
    issuer = FakeIssuer()
    cache = TokenCache(issuer, store)
    cache.token(SCOPE)
    made = make_cert("CN=platform,O=Platform,C=DK")
    key = made.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    store.import_pem("platform", made.pem, key, replace=True)
    cache.token(SCOPE)
    assert issuer.calls == 2


def test_one_refresh_under_eight_concurrent_calls(store: CertificateStore) -> None:
    issuer = FakeIssuer(delay=0.2)
    cache = TokenCache(issuer, store)
    barrier = threading.Barrier(8)
    seen: list[str] = []

    def call() -> None:
        barrier.wait()
        seen.append(cache.token(SCOPE))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert issuer.calls == 1 and seen == ["token-1-platform"] * 8


def test_a_failed_refresh_is_shared_by_the_calls_that_waited(store: CertificateStore) -> None:
    issuer = FakeIssuer(delay=0.2)
    issuer.fail = TokenServiceUnavailable("STS down")
    cache = TokenCache(issuer, store)
    barrier = threading.Barrier(8)
    errors: list[str] = []

    def call() -> None:
        barrier.wait()
        try:
            cache.token(SCOPE)
        except TokenServiceUnavailable as exc:
            errors.append(exc.code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == ["SP-440"] * 8
    assert issuer.calls < 8  # the waiters shared the failure rather than each asking
    issuer.fail = None
    assert cache.token(SCOPE).startswith("token-")  # the next call tries again


def test_a_token_expired_on_arrival_is_its_own_error(store: CertificateStore) -> None:
    cache = TokenCache(FakeIssuer(expires_in=0), store)
    with pytest.raises(AccessTokenExpired):
        cache.token(SCOPE)


# --- the credential ----------------------------------------------------------------------------


def test_credential_shows_the_certificate_and_the_token(store: CertificateStore) -> None:
    cache = TokenCache(FakeIssuer(), store)
    credential = cache.credential(SCOPE)
    identity = credential.tls_identity(store)
    assert identity == ClientCertificate("platform").tls_identity(store)
    assert credential.headers() == {"Authorization": "Holder-of-key token-1-platform"}


class Scripted:
    """An adapter answering statuses in turn, recording the ``Authorization`` it was shown."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.shown: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.shown.append(str(request.headers["Authorization"]))
        response = requests.Response()
        response.status_code = self.statuses.pop(0)
        response.raw = io.BytesIO(b"")
        response.headers = CaseInsensitiveDict()
        return response

    def close(self) -> None:
        pass


def peer_with(adapter: Scripted, store: CertificateStore) -> HttpTransport:
    return HttpTransport(
        PeerSettings(base_url="https://sf1601.test"),
        store,
        sleep=lambda seconds: None,
        adapter_factory=lambda context, size: adapter,  # type: ignore[arg-type,return-value]
    )


def test_a_401_refreshes_once_and_resends_once(store: CertificateStore) -> None:
    issuer = FakeIssuer()
    cache = TokenCache(issuer, store)
    adapter = Scripted([401, 200])
    answer = peer_with(adapter, store).send(
        OutboundRequest("GET", "/x"), credential=cache.credential(SCOPE)
    )
    assert answer.attempts == 2 and issuer.calls == 2
    assert adapter.shown == ["Holder-of-key token-1-platform", "Holder-of-key token-2-platform"]
    # The renewed token is the cached one: the next call needs no new token.
    peer_with(Scripted([200]), store).send(
        OutboundRequest("GET", "/x"), credential=cache.credential(SCOPE)
    )
    assert issuer.calls == 2


def test_a_second_401_is_the_peers_refusal_never_a_loop(store: CertificateStore) -> None:
    issuer = FakeIssuer()
    cache = TokenCache(issuer, store)
    adapter = Scripted([401, 401, 200])
    with pytest.raises(UpstreamAuthRefused):
        peer_with(adapter, store).send(
            OutboundRequest("GET", "/x"), credential=cache.credential(SCOPE)
        )
    assert len(adapter.shown) == 2 and issuer.calls == 2


def test_refused_keeps_a_token_another_call_already_renewed(store: CertificateStore) -> None:
    issuer = FakeIssuer()
    cache = TokenCache(issuer, store)
    slow, quick = cache.credential(SCOPE), cache.credential(SCOPE)
    slow.headers()
    quick.headers()
    quick.refused()
    renewed = quick.headers()
    slow.refused()  # refuses token-1, which is no longer cached
    assert cache.credential(SCOPE).headers() == renewed and issuer.calls == 2


def test_refused_before_any_header_asks_for_no_resend(store: CertificateStore) -> None:
    assert TokenCache(FakeIssuer(), store).credential(SCOPE).refused() is False

"""The outbound seam: peer kinds by alias, credential objects, the one error translation.

- the alias table: the core's and the integrations' kinds, an integration-contributed kind
  opened by ``Platform.transport``, an unknown kind refused by ``config check`` and by the
  platform, the default kind of a section that names none;
- the credentials: what each contributes (TLS identity, headers), and a 401 reported to the
  credential once (one more attempt, never a loop);
- the translation: each library exception and HTTP status class -> its SP code, written once
  in ``outbound/translate.py``; a request marked not idempotent repeated only when it never
  left, on a connection of its own.
"""

from __future__ import annotations

import base64
import io
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import SSLError as Urllib3SSLError

from serviceplatform import registry
from serviceplatform.cli import cli
from serviceplatform.config import CertificateSettings, PeerSettings, Settings, load_settings
from serviceplatform.config_check import serving_problems
from serviceplatform.errors import (
    CertificateExpired,
    ConfigurationError,
    UpstreamAuthRefused,
    UpstreamNotFound,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.integration import Integration
from serviceplatform.outbound.base import MemoryTransport, OutboundRequest, Transport
from serviceplatform.outbound.bounded import AnswerOverdue, AnswerTooLarge
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import (
    NO_CREDENTIAL,
    BasicAuth,
    ClientCertificate,
    Credential,
    TlsIdentity,
)
from serviceplatform.outbound.kinds import CORE_PEER_KINDS, DEFAULT_PEER_KIND
from serviceplatform.outbound.translate import error_for_status, never_sent, translate_exception
from serviceplatform.outbound.transport import HttpTransport
from serviceplatform.platform import Platform
from serviceplatform.sandbox.pki import PLATFORM_REGISTER_SUBJECT, issue_certificate, load_ca
from serviceplatform.sandbox.pki import ensure_pki as make_pki
from serviceplatform.store.db import Database

URL = "https://peer.test/x/0101901234"

# --- the alias table -----------------------------------------------------------------------------

#: Peers the tiny integration below opened: (kind's factory called with) name and base URL.
OPENED: list[tuple[str, str]] = []


def open_echo(
    name: str, settings: PeerSettings, certificates: CertificateStore | None
) -> Transport:
    """The tiny integration's peer kind: an in-memory transport."""
    OPENED.append((name, settings.base_url))
    return MemoryTransport()


TINY = Integration(
    name="tiny",
    roles={},
    peer_kinds={"echo": f"{__name__}:open_echo"},
)


@pytest.fixture
def with_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry.integrations()
    monkeypatch.setattr(registry, "integrations", lambda: (*real, TINY))


def test_the_core_and_the_integrations_declare_their_kinds() -> None:
    kinds = registry.peer_kinds()
    assert kinds["oiorest"] == CORE_PEER_KINDS["oiorest"]
    # The OOTS integration's kinds come from its Integration, not from the core's table.
    assert {"domibus-ws", "common-services"} <= set(kinds)
    assert {"domibus-ws", "common-services"}.isdisjoint(CORE_PEER_KINDS)
    for kind in kinds:
        assert callable(registry.peer_factory(kind))


def test_an_integration_contributes_a_kind_the_platform_opens(
    with_tiny: None, tmp_path: Path
) -> None:
    settings = Settings(
        certificates=CertificateSettings(directory=str(tmp_path)),
        peers={"chatty": PeerSettings(kind="echo", base_url="https://echo.test")},
        base_dir=str(tmp_path),
    )
    assert [p for p in serving_problems(settings) if p.startswith("peers.")] == []
    platform = Platform(settings, database=Database(f"sqlite:///{tmp_path / 'p.sqlite'}"))
    try:
        transport = platform.transport("chatty")
        assert isinstance(transport, MemoryTransport)
        assert platform.transport("chatty") is transport  # opened once
        assert OPENED[-1] == ("chatty", "https://echo.test")
    finally:
        platform.close()


def test_a_kind_taken_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    twin = Integration(name="twin", roles={}, peer_kinds={"oiorest": f"{__name__}:open_echo"})
    monkeypatch.setattr(registry, "integrations", lambda: (twin,))
    with pytest.raises(ConfigurationError, match="'oiorest' of integration 'twin'"):
        registry.peer_kinds()


def test_an_unknown_kind_is_a_config_problem_and_never_opened(tmp_path: Path) -> None:
    settings = Settings(
        certificates=CertificateSettings(directory=str(tmp_path)),
        peers={"nemsms": PeerSettings(kind="soap-over-carrier-pigeon", base_url="https://r.test")},
        base_dir=str(tmp_path),
    )
    problems = [p for p in serving_problems(settings) if p.startswith("peers.")]
    assert problems == [
        "peers.nemsms.kind: unknown peer kind 'soap-over-carrier-pigeon' "
        "(known: as4, common-services, domibus-ws, oiorest)"
    ]
    platform = Platform(settings, database=Database(f"sqlite:///{tmp_path / 'p.sqlite'}"))
    try:
        with pytest.raises(ConfigurationError, match="unknown peer kind"):
            platform.transport("nemsms")
    finally:
        platform.close()


def test_config_check_names_the_unknown_kind(tmp_path: Path) -> None:
    config = tmp_path / "platform.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "p.sqlite"}"\n'
        '[peers.nemsms]\nkind = "oiorset"\nbase_url = "https://r.test"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(config)])
    assert result.exit_code != 0
    assert (
        "problem: peers.nemsms.kind: unknown peer kind 'oiorset' "
        "(known: as4, common-services, domibus-ws, oiorest)"
    ) in result.stderr.splitlines()


def test_a_section_without_kind_keeps_todays_transport(tmp_path: Path) -> None:
    config = tmp_path / "platform.toml"
    config.write_text('[peers.nemsms]\nbase_url = "https://r.test"\n', encoding="utf-8")
    settings = load_settings(config, {})
    assert settings.peer("nemsms").kind == DEFAULT_PEER_KIND == "oiorest"
    transport = registry.peer_factory("oiorest")("nemsms", settings.peer("nemsms"), None)
    with transport:
        assert isinstance(transport, HttpTransport)
        assert transport.peer == "nemsms"


# --- credentials -----------------------------------------------------------------------------


NOW = datetime.now(UTC)


def test_a_client_certificate_is_a_checked_tls_identity(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    ca = load_ca(pki.ca_cert, pki.ca_key)
    (tmp_path / "certs").mkdir(mode=0o700)
    for alias, start, end in (("good", -1, 30), ("old", -30, -1)):
        issue_certificate(
            ca,
            PLATFORM_REGISTER_SUBJECT,
            not_before=NOW + timedelta(days=start),
            not_after=NOW + timedelta(days=end),
            path_prefix=tmp_path / "certs" / alias,
        )
    store = CertificateStore(tmp_path / "certs")
    identity = ClientCertificate("good").tls_identity(store)
    serial = store.certificate("good").serial_number
    assert identity == TlsIdentity(
        ("good", serial), str(tmp_path / "certs/good.crt"), str(tmp_path / "certs/good.key")
    )
    assert ClientCertificate("good").headers() == {}
    assert ClientCertificate("good").refused() is False
    with pytest.raises(CertificateExpired):
        ClientCertificate("old").tls_identity(store)
    with pytest.raises(ConfigurationError, match="no certificate store"):
        ClientCertificate("good").tls_identity(None)


def test_basic_auth_and_no_credential() -> None:
    user = BasicAuth("plugin-user", "s3cret")
    assert user.tls_identity(None) is None
    token = base64.b64encode(b"plugin-user:s3cret").decode()
    assert user.headers() == {"Authorization": f"Basic {token}"}
    assert "s3cret" not in repr(user)
    assert user.refused() is False
    assert NO_CREDENTIAL.tls_identity(None) is None
    assert NO_CREDENTIAL.headers() == {}
    assert NO_CREDENTIAL.refused() is False


@dataclass
class Renewing:
    """A credential like a token's: headers from a counter, ``refused()`` renews it."""

    renew: bool = True
    generation: int = 1
    refusals: int = 0

    def tls_identity(self, certificates: CertificateStore | None) -> TlsIdentity | None:
        return None

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Holder-of-key token-{self.generation}"}

    def refused(self) -> bool:
        self.refusals += 1
        if self.renew:
            self.generation += 1
        return self.renew


@dataclass
class Scripted:
    """An adapter answering statuses in turn, recording the requests."""

    statuses: list[int]
    sent: list[requests.PreparedRequest] = field(default_factory=list)
    closed: int = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        outcome: int | BaseException = self.statuses.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        response = requests.Response()
        response.status_code = outcome
        response.raw = io.BytesIO(b"")
        response.headers = CaseInsensitiveDict()
        return response

    def close(self) -> None:
        self.closed += 1


def transport_with(adapter: Scripted, **settings: Any) -> tuple[HttpTransport, Callable[[], int]]:
    made: list[int] = []

    def factory(context: Callable[[], ssl.SSLContext], size: int) -> Scripted:
        made.append(1)
        return adapter

    peer = PeerSettings(base_url="https://peer.test", **settings)
    transport = HttpTransport(
        peer,
        None,
        sleep=lambda seconds: None,
        adapter_factory=factory,  # type: ignore[arg-type]
    )
    return transport, lambda: len(made)


def test_a_401_renews_the_credential_once_and_sends_again() -> None:
    adapter = Scripted([401, 200])
    credential = Renewing()
    transport, _ = transport_with(adapter)
    response = transport.send(OutboundRequest("GET", "/a"), credential=credential)
    assert response.status == 200 and response.attempts == 2
    assert [r.headers["Authorization"] for r in adapter.sent] == [
        "Holder-of-key token-1",
        "Holder-of-key token-2",
    ]


def test_a_second_401_is_an_error_never_a_loop() -> None:
    adapter = Scripted([401, 401, 200])
    credential = Renewing()
    transport, _ = transport_with(adapter)
    with pytest.raises(UpstreamAuthRefused):
        transport.send(OutboundRequest("GET", "/a"), credential=credential)
    assert len(adapter.sent) == 2 and credential.refusals == 1


def test_a_credential_that_cannot_renew_leaves_the_401() -> None:
    adapter = Scripted([401, 200])
    credential: Credential = Renewing(renew=False)
    transport, _ = transport_with(adapter)
    with pytest.raises(UpstreamAuthRefused):
        transport.send(OutboundRequest("GET", "/a"), credential=credential)
    assert len(adapter.sent) == 1


# --- the one translation -----------------------------------------------------------------------


def _wrapped(reason: BaseException) -> MaxRetryError:
    return MaxRetryError(None, URL, reason=reason)  # type: ignore[arg-type]


def _refused() -> NewConnectionError:
    error = NewConnectionError(None, f"{URL}: Failed to establish")  # type: ignore[arg-type]
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (requests.ConnectionError(_wrapped(_refused())), "SP-401"),
        (requests.ConnectionError(ProtocolError("aborted", ConnectionResetError())), "SP-401"),
        (requests.ConnectTimeout(_wrapped(TimeoutError())), "SP-402"),
        (requests.ReadTimeout("read timed out"), "SP-402"),
        (AnswerOverdue(), "SP-402"),
        (requests.exceptions.SSLError(_wrapped(Urllib3SSLError(ssl.SSLError(1, "x")))), "SP-403"),
        (requests.exceptions.ChunkedEncodingError("broken"), "SP-408"),
        (AnswerTooLarge(10), "SP-408"),
        (requests.exceptions.InvalidURL(URL), "SP-901"),
        (FileNotFoundError("ca.pem"), "SP-901"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_each_failure_has_its_code(exc: BaseException, code: str) -> None:
    error = translate_exception(exc, "peer")
    assert error.code == code
    assert "0101901234" not in error.error_text  # the URL's CPR never reaches a detail


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "SP-407"),
        (403, "SP-407"),
        (404, "SP-406"),
        (409, "SP-405"),
        (503, "SP-404"),
        (302, "SP-408"),
        (101, "SP-408"),
    ],
)
def test_each_status_class_has_its_code(status: int, code: str) -> None:
    error = error_for_status(status, b"")
    assert error is not None and error.code == code


def test_only_a_connect_failure_proves_a_request_never_left() -> None:
    assert never_sent(requests.ConnectionError(_wrapped(_refused())))
    assert never_sent(requests.ConnectTimeout("connect"))
    assert not never_sent(requests.ReadTimeout("read"))
    assert not never_sent(requests.ConnectionError(ProtocolError("x", ConnectionResetError())))


def test_a_request_that_is_not_idempotent_is_repeated_only_when_never_sent() -> None:
    dropped = requests.ConnectionError(ProtocolError("aborted", ConnectionResetError()))
    adapter = Scripted([dropped, 200])  # type: ignore[list-item]
    transport, made = transport_with(adapter)
    once = OutboundRequest("POST", "/submit", b"x", idempotent=False)
    with pytest.raises(UpstreamUnreachable):
        transport.send(once, credential=NO_CREDENTIAL)
    assert len(adapter.sent) == 1
    assert adapter.sent[0].headers["Connection"] == "close"
    refused = requests.ConnectionError(_wrapped(_refused()))
    adapter.statuses = [refused, 200]  # type: ignore[list-item]
    assert transport.send(once, credential=NO_CREDENTIAL).attempts == 2
    # Each such call had a connection pool of its own, closed after it.
    assert (made(), adapter.closed) == (2, 2)
    adapter.statuses = [dropped, 200]  # type: ignore[list-item]
    assert transport.send(OutboundRequest("GET", "/a"), credential=NO_CREDENTIAL).attempts == 2


def test_calls_on_connections_of_their_own_share_the_identitys_tls_context() -> None:
    # Building an SSLContext loads the CA store (tens of ms): a fresh connection must not.
    contexts: list[ssl.SSLContext] = []
    adapter = Scripted([200, 200, 200])

    def factory(context: Callable[[], ssl.SSLContext], size: int) -> Scripted:
        contexts.append(context())
        return adapter

    transport = HttpTransport(
        PeerSettings(base_url="https://peer.test"),
        None,
        adapter_factory=factory,  # type: ignore[arg-type]
    )
    once = OutboundRequest("POST", "/submit", b"x", idempotent=False)
    for _ in range(2):
        transport.send(once, credential=NO_CREDENTIAL)
    transport.send(OutboundRequest("GET", "/a"), credential=NO_CREDENTIAL)
    assert len(contexts) == 3 and adapter.closed == 2
    assert contexts[0] is contexts[1] is contexts[2]
    # A pooled adapter builds its context under the transport's lock: it must not deadlock.
    pooled = HttpTransport(
        PeerSettings(base_url="https://peer.test"),
        None,
        adapter_factory=factory,  # type: ignore[arg-type]
    )
    adapter.statuses = [200]
    assert pooled.send(OutboundRequest("GET", "/a"), credential=NO_CREDENTIAL).status == 200
    assert len(contexts) == 4 and contexts[3] is not contexts[0]


def test_a_request_marked_any_status_gets_every_answer_back_once() -> None:
    # An AS4 partner's eb:Error comes in an HTTP 500: the caller must read it, not a 5xx error.
    adapter = Scripted([500, 200])
    transport, _ = transport_with(adapter)
    request = OutboundRequest("POST", "/as4", b"x", idempotent=False, any_status=True)
    response = transport.send(request, credential=NO_CREDENTIAL)
    assert (response.status, response.attempts, len(adapter.sent)) == (500, 1, 1)
    adapter.statuses = [500]
    with pytest.raises(UpstreamUnavailable):
        transport.send(
            OutboundRequest("POST", "/as4", b"x", idempotent=False), credential=NO_CREDENTIAL
        )
    memory = MemoryTransport()
    memory.reply(status=404, body=b"signal")
    assert memory.send(request, credential=NO_CREDENTIAL).body == b"signal"
    memory.reply(status=404)
    with pytest.raises(UpstreamNotFound):
        memory.send(OutboundRequest("GET", "/a"), credential=NO_CREDENTIAL)

"""Token credentials against the simulated STS and SF1601 host: real sockets, real mutual TLS.

The simulated STS mints signed SAML holder-of-key assertions; the simulated access-token
service exchanges only those, bound to the calling certificate; the simulated SF1601
operations accept only an access token issued for their entity ID and bound to the calling
certificate. Checked here: one token for many calls, expiry and refresh, one refresh under 8
concurrent calls, 401 once then success, STS down / refusing the CVR, exchange refused, a
token shown with another certificate refused, and no token value in the peers' records.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from serviceplatform.config import PeerSettings
from serviceplatform.errors import (
    TokenExchangeRefused,
    TokenRequestRefused,
    TokenServiceUnavailable,
    UpstreamAuthRefused,
)
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import ClientCertificate
from serviceplatform.outbound.kombi_sts import TokenIssuer, TokenScope
from serviceplatform.outbound.token_credential import TokenCache
from serviceplatform.outbound.transport import HttpTransport
from serviceplatform.sandbox.kombi_sts import (
    ENTITY_KOMBIPOSTAFSEND,
    ENTITY_POSTFORESPOERG,
    IssuedTokens,
    SimulatedSts,
)
from serviceplatform.sandbox.pki import (
    PLATFORM_REGISTER_SUBJECT,
    Pki,
    ensure_pki,
    issue_certificate,
    load_ca,
)
from serviceplatform.sandbox.sf1601_service import SimulatedSf1601

CVR = "29189846"
REGISTERED = "0101901234"
ALIAS = "platform"
FORESPOERG = TokenScope(CVR, ENTITY_POSTFORESPOERG, ALIAS)
KOMBI = TokenScope(CVR, ENTITY_KOMBIPOSTAFSEND, ALIAS)


@dataclass
class Hooks:
    """A simulated peer's hooks, spoken over HTTP as outside tools would."""

    control_url: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False

    def call(self, verb: str, path: str, data: Any = None) -> Any:
        answer = self.session.request(verb, f"{self.control_url}/{path}", json=data, timeout=5)
        answer.raise_for_status()
        return answer.json()

    def reset(self, lifetime: float) -> None:
        self.call("DELETE", "requests")
        for target in self.call("GET", "faults"):
            self.call("POST", "faults", {"status": 503, "count": 0, "target": target})
        self.call("PUT", "lifetime", {"seconds": lifetime})


@pytest.fixture(scope="module")
def tpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def certs(tpki: Pki, tmp_path_factory: pytest.TempPathFactory) -> CertificateStore:
    directory = tmp_path_factory.mktemp("certs")
    (directory / f"{ALIAS}.crt").write_bytes(tpki.platform_register_cert.read_bytes())
    (directory / f"{ALIAS}.key").write_bytes(tpki.platform_register_key.read_bytes())
    (directory / f"{ALIAS}.key").chmod(0o600)
    # Same CA, same subject, another key: passes TLS, but is not the token's certificate.
    now = datetime.now(UTC)
    issue_certificate(
        load_ca(tpki.ca_cert, tpki.ca_key),
        PLATFORM_REGISTER_SUBJECT,
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=30),
        path_prefix=directory / "other",
    )
    return CertificateStore(directory)


@pytest.fixture(scope="module")
def peers(tpki: Pki) -> Iterator[tuple[SimulatedSts, SimulatedSf1601]]:
    issued = IssuedTokens()
    server_cert, server_key = tpki.nemsms_server_cert, tpki.nemsms_server_key
    sts = SimulatedSts(
        server_cert=server_cert,
        server_key=server_key,
        client_ca=tpki.ca_cert,
        sts_cert=tpki.sts_cert,
        sts_key=tpki.sts_key,
        issued=issued,
        authorities={CVR},
    )
    sf1601 = SimulatedSf1601(
        server_cert=server_cert,
        server_key=server_key,
        client_ca=tpki.ca_cert,
        issued=issued,
        nemsms_recipients={REGISTERED},
    )
    with sts, sf1601:
        yield sts, sf1601


@dataclass
class Setup:
    sts: SimulatedSts
    sf1601: SimulatedSf1601
    sts_hooks: Hooks
    sf1601_hooks: Hooks
    service: HttpTransport
    cache: TokenCache


def transport(base_url: str, tpki: Pki, certs: CertificateStore, name: str) -> HttpTransport:
    settings = PeerSettings(
        base_url=base_url,
        ca_cert=str(tpki.ca_cert),
        connect_timeout_seconds=1.0,
        read_timeout_seconds=2.0,
        budget_seconds=4.0,
        max_retries=1,
        backoff_seconds=0.02,
        pool_size=8,
    )
    return HttpTransport(settings, certs, peer=name)


@pytest.fixture()
def setup(
    peers: tuple[SimulatedSts, SimulatedSf1601], tpki: Pki, certs: CertificateStore
) -> Iterator[Setup]:
    sts, sf1601 = peers
    sts_hooks, sf1601_hooks = Hooks(sts.control_url), Hooks(sf1601.control_url)
    sts_hooks.reset(8 * 3600)
    sf1601_hooks.reset(3600)
    with (
        transport(sts.base_url, tpki, certs, "sts") as sts_transport,
        transport(sf1601.base_url, tpki, certs, "sf1601") as service,
    ):
        issuer = TokenIssuer(sts_transport, lambda scope: service, certs)
        yield Setup(sts, sf1601, sts_hooks, sf1601_hooks, service, TokenCache(issuer, certs))


def forespoerg(setup: Setup, cpr: str = REGISTERED) -> Any:
    request = OutboundRequest(
        "GET",
        f"/service/PostForespoerg_1/nemsms?cprNumber={cpr}",
        headers=transaction_headers(),
    )
    answer = setup.service.send(request, credential=setup.cache.credential(FORESPOERG))
    return answer


def transaction_headers() -> dict[str, str]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"x-TransaktionsId": str(uuid.uuid4()), "x-TransaktionsTid": now}


def counts(setup: Setup) -> tuple[int, int]:
    return setup.sts.issued.assertions_issued, setup.sf1601.issued.access_tokens_issued


def test_one_token_for_many_calls(setup: Setup) -> None:
    before = counts(setup)
    answers = [forespoerg(setup).body for _ in range(5)]
    assert answers[0] == b'{"result": true}' and len(set(answers)) == 1
    assert forespoerg(setup, "0202021234").body == b'{"result": false}'
    assert counts(setup) == (before[0] + 1, before[1] + 1)
    recorded = setup.sf1601_hooks.call("GET", "requests")
    exchange, *calls = recorded
    assert exchange["path"] == "/service/AccessTokenService_1/token"
    assert exchange["body"] == "saml-token=****"
    assert {call["headers"]["Authorization"] for call in calls} == {"Holder-of-key ****"}
    assert all(call["client_subject"] for call in recorded)


def test_expiry_and_refresh(setup: Setup) -> None:
    setup.sf1601_hooks.call("PUT", "lifetime", {"seconds": 1})
    before = counts(setup)
    forespoerg(setup)
    time.sleep(1.2)  # the access token's lifetime, not a limit on the test
    forespoerg(setup)
    assert counts(setup)[1] == before[1] + 2


def test_one_refresh_under_eight_concurrent_calls(setup: Setup) -> None:
    before = counts(setup)
    barrier = threading.Barrier(8)
    results: list[bytes] = []

    def call() -> None:
        barrier.wait()
        results.append(forespoerg(setup).body)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b'{"result": true}'] * 8
    assert counts(setup) == (before[0] + 1, before[1] + 1)


def test_401_once_then_success(setup: Setup) -> None:
    forespoerg(setup)
    before = counts(setup)
    setup.sf1601_hooks.call("POST", "faults", {"status": 401, "count": 1, "target": "service"})
    answer = forespoerg(setup)
    assert answer.status == 200 and answer.attempts == 2
    assert counts(setup) == (before[0] + 1, before[1] + 1)


def test_401_twice_is_the_peers_refusal_not_a_loop(setup: Setup) -> None:
    setup.sf1601_hooks.call("POST", "faults", {"status": 401, "count": 5, "target": "service"})
    with pytest.raises(UpstreamAuthRefused):
        forespoerg(setup)
    calls = [r for r in setup.sf1601_hooks.call("GET", "requests") if "Forespoerg" in r["path"]]
    assert len(calls) == 2


@pytest.mark.parametrize("fault", ["reset", 503])
def test_sts_down(setup: Setup, fault: int | str) -> None:
    setup.sts_hooks.call("POST", "faults", {"status": fault, "count": 10, "target": "issue"})
    with pytest.raises(TokenServiceUnavailable):
        forespoerg(setup)
    assert setup.sf1601_hooks.call("GET", "requests") == []  # nothing reached the service


def test_sts_refuses_an_unknown_cvr(setup: Setup) -> None:
    scope = TokenScope("11111111", ENTITY_POSTFORESPOERG, ALIAS)
    request = OutboundRequest(
        "GET", f"/service/PostForespoerg_1/nemsms?cprNumber={REGISTERED}", headers={}
    )
    with pytest.raises(TokenRequestRefused, match="11111111 has no agreement"):
        setup.service.send(request, credential=setup.cache.credential(scope))


def test_exchange_refused(setup: Setup) -> None:
    setup.sf1601_hooks.call("POST", "faults", {"status": 403, "count": 1, "target": "exchange"})
    with pytest.raises(TokenExchangeRefused):
        setup.cache.token(KOMBI)


def test_a_token_bound_to_another_certificate_is_refused(setup: Setup) -> None:
    token = setup.cache.token(FORESPOERG)
    request = OutboundRequest(
        "GET",
        f"/service/PostForespoerg_1/nemsms?cprNumber={REGISTERED}",
        headers={"Authorization": f"Holder-of-key {token}", **transaction_headers()},
    )
    with pytest.raises(UpstreamAuthRefused, match=r"wrong\.certificate"):
        setup.service.send(request, credential=ClientCertificate("other"))
    # The same token with its own certificate is accepted: the binding made the difference.
    assert setup.service.send(request, credential=ClientCertificate(ALIAS)).status == 200


def test_a_token_for_another_service_is_refused(setup: Setup) -> None:
    token = setup.cache.token(KOMBI)
    request = OutboundRequest(
        "GET",
        f"/service/PostForespoerg_1/nemsms?cprNumber={REGISTERED}",
        headers={"Authorization": f"Holder-of-key {token}", **transaction_headers()},
    )
    with pytest.raises(UpstreamAuthRefused, match=r"wrong\.entity"):
        setup.service.send(request, credential=ClientCertificate(ALIAS))


def test_the_transaction_headers_are_required(setup: Setup) -> None:
    request = OutboundRequest("GET", f"/service/PostForespoerg_1/nemsms?cprNumber={REGISTERED}")
    with pytest.raises(Exception, match="x-TransaktionsId"):
        setup.service.send(request, credential=setup.cache.credential(FORESPOERG))


def test_no_token_in_the_sts_record(setup: Setup, tmp_path: Path) -> None:
    forespoerg(setup)
    (issue,) = setup.sts_hooks.call("GET", "requests")
    assert issue["path"] == "/runtime/api/rest/wstrust/v1/issue"
    assert '"Cvr": "29189846"' in issue["body"]

"""The oiorest transport against the simulated register: real sockets, real mutual TLS, budgets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.sf2250.register_errors import REGISTER_ANSWERS
from serviceplatform.config import PeerSettings
from serviceplatform.errors import (
    CertificateExpired,
    CertificateUnavailable,
    ConfigurationError,
    UpstreamAuthRefused,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamTlsError,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import ClientCertificate
from serviceplatform.outbound.transport import HttpTransport
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import (
    PLATFORM_REGISTER_SUBJECT,
    Pki,
    ensure_pki,
    issue_certificate,
    load_ca,
    parse_subject,
)
from tests.integration.conftest import RegisterHooks

SYSID = "REG-1"
ALIAS = "platform-register"
BUDGET = 0.6
#: Scheduling slack on a busy test machine; the budget itself is what is being checked.
MARGIN = 0.25
STAMDATA = b'<SlutbrugerStamdata xmlns="urn:oio:nemsms:1.0"><Navn>Test</Navn></SlutbrugerStamdata>'
TILMELD = (
    b'<Myndighedstilmelding xmlns="urn:oio:nemsms:1.0">'
    b"<TilmeldingIndikator>true</TilmeldingIndikator></Myndighedstilmelding>"
)
HEADERS = {"Content-Type": "application/xml; charset=utf-8"}


@pytest.fixture(scope="module")
def tpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def certs(tpki: Pki, tmp_path_factory: pytest.TempPathFactory) -> CertificateStore:
    directory = tmp_path_factory.mktemp("certs")
    (directory / f"{ALIAS}.crt").write_bytes(tpki.platform_register_cert.read_bytes())
    (directory / f"{ALIAS}.key").write_bytes(tpki.platform_register_key.read_bytes())
    (directory / f"{ALIAS}.key").chmod(0o600)
    ca = load_ca(tpki.ca_cert, tpki.ca_key)
    now = datetime.now(UTC)
    for alias, start, end in (
        ("expired", now - timedelta(days=30), now - timedelta(days=1)),
        ("future", now + timedelta(days=1), now + timedelta(days=30)),
    ):
        issue_certificate(
            ca,
            PLATFORM_REGISTER_SUBJECT,
            not_before=start,
            not_after=end,
            path_prefix=directory / alias,
        )
    foreign = ensure_pki(tmp_path_factory.mktemp("foreign"))
    (directory / "foreign.crt").write_bytes(foreign.platform_register_cert.read_bytes())
    (directory / "foreign.key").write_bytes(foreign.platform_register_key.read_bytes())
    (directory / "foreign.key").chmod(0o600)
    return CertificateStore(directory)


@pytest.fixture(scope="module")
def reg(tpki: Pki) -> Iterator[NemSmsRegister]:
    with NemSmsRegister(
        server_cert=tpki.nemsms_server_cert,
        server_key=tpki.nemsms_server_key,
        client_ca=tpki.ca_cert,
        known_sysids={SYSID},
    ) as running:
        yield running


@pytest.fixture()
def hooks(reg: NemSmsRegister) -> Iterator[RegisterHooks]:
    control = RegisterHooks(reg.control_url)
    control.clear()
    yield control
    control.clear()


def register_transport(settings: PeerSettings, certs: CertificateStore) -> HttpTransport:
    """The register's transport as SF2250 uses it: its answers read by ``REGISTER_ANSWERS``."""
    return HttpTransport(settings, certs, peer="nemsms", answer_check=REGISTER_ANSWERS)


def peer(base_url: str, tpki: Pki, **overrides: Any) -> PeerSettings:
    values: dict[str, Any] = {
        "base_url": base_url,
        "ca_cert": str(tpki.ca_cert),
        "connect_timeout_seconds": 0.2,
        "read_timeout_seconds": 0.3,
        "budget_seconds": BUDGET,
        "max_retries": 2,
        "backoff_seconds": 0.02,
        "pool_size": 4,
    }
    values.update(overrides)
    return PeerSettings(**values)


@pytest.fixture()
def transport(reg: NemSmsRegister, tpki: Pki, certs: CertificateStore) -> Iterator[HttpTransport]:
    with register_transport(peer(reg.base_url, tpki), certs) as running:
        yield running


def put_boks(cpr: str = "0101901234") -> OutboundRequest:
    return OutboundRequest("PUT", f"/register/{SYSID}/boks/{cpr}", STAMDATA, HEADERS)


# --- success --------------------------------------------------------------------------------


def test_boks_then_myndighedstilmelding(transport, hooks):
    first = transport.send(put_boks("0303901234"), credential=ClientCertificate(ALIAS))
    assert first.status == 201
    assert first.attempts == 1
    assert 0 < first.elapsed < BUDGET
    tilmeld = OutboundRequest(
        "PUT", f"/register/{SYSID}/boks/0303901234/myndighedstilmelding", TILMELD, HEADERS
    )
    assert transport.send(tilmeld, credential=ClientCertificate(ALIAS)).status == 200
    seen = hooks.requests()
    assert [e["path"] for e in seen] == [
        f"/register/{SYSID}/boks/0303901234",
        f"/register/{SYSID}/boks/0303901234/myndighedstilmelding",
    ]
    subject = parse_subject(PLATFORM_REGISTER_SUBJECT).rfc4514_string()
    assert [e["client_subject"] for e in seen] == [subject, subject]
    assert seen[1]["body"] == TILMELD.decode()
    hooks.session.delete(f"{hooks.control_url}/requests", timeout=5).raise_for_status()
    assert hooks.requests() == []


def test_connections_are_reused(transport, hooks):
    before = hooks.connections()
    for _ in range(20):
        assert transport.send(put_boks(), credential=ClientCertificate(ALIAS)).attempts == 1
    assert hooks.connections() - before < 20
    assert len(hooks.requests()) == 20


def test_threads_share_the_transport(transport, hooks):
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                transport.send(put_boks(), credential=ClientCertificate(ALIAS))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    before = hooks.connections()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(hooks.requests()) == 80
    assert hooks.connections() - before < 80


# --- faults and retries ---------------------------------------------------------------------


def test_one_503_is_retried(transport, hooks):
    hooks.fault(503, 1)
    response = transport.send(put_boks(), credential=ClientCertificate(ALIAS))
    assert response.status in (200, 201)
    assert response.attempts == 2
    assert len(hooks.requests()) == 2


def test_persistent_503_ends_unavailable_within_budget(transport, hooks):
    hooks.fault(503, 1000)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as caught:
        transport.send(put_boks(), credential=ClientCertificate(ALIAS))
    assert time.monotonic() - started < BUDGET + MARGIN
    assert caught.value.status == 503
    assert "FejlKode 9001" in (caught.value.detail or "")
    assert len(hooks.requests()) == 3  # max_retries = 2


def test_reset_connection_is_retried(transport, hooks):
    transport.send(
        put_boks(), credential=ClientCertificate(ALIAS)
    )  # a pooled connection to be reset
    hooks.clear()
    hooks.fault("reset", 1)
    response = transport.send(put_boks(), credential=ClientCertificate(ALIAS))
    assert response.attempts == 2
    assert len(hooks.requests()) == 2


def test_400_is_rejected_without_retry(transport, hooks):
    bad = OutboundRequest("PUT", f"/register/{SYSID}/boks/0101901234", b"<Andet/>", HEADERS)
    with pytest.raises(UpstreamRejected) as caught:
        transport.send(bad, credential=ClientCertificate(ALIAS))
    assert caught.value.status == 400
    assert "FejlKode 1002" in (caught.value.detail or "")
    assert len(hooks.requests()) == 1


def test_injected_400_is_not_retried(transport, hooks):
    hooks.fault(400, 5)
    with pytest.raises(UpstreamRejected):
        transport.send(put_boks(), credential=ClientCertificate(ALIAS))
    assert len(hooks.requests()) == 1


def test_404_and_403_map_to_their_errors(transport, hooks):
    unknown_user = OutboundRequest(
        "PUT", f"/register/{SYSID}/boks/3112991234/myndighedstilmelding", TILMELD, HEADERS
    )
    with pytest.raises(UpstreamNotFound) as not_found:
        transport.send(unknown_user, credential=ClientCertificate(ALIAS))
    assert "3112991234" not in not_found.value.error_text
    unknown_sysid = OutboundRequest("PUT", "/register/OTHER/boks/0101901234", STAMDATA, HEADERS)
    with pytest.raises(UpstreamAuthRefused):
        transport.send(unknown_sysid, credential=ClientCertificate(ALIAS))
    assert len(hooks.requests()) == 2


def test_closed_port_is_unreachable_within_budget(tpki, certs):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with register_transport(peer(f"https://127.0.0.1:{port}", tpki), certs) as transport:
        started = time.monotonic()
        with pytest.raises(UpstreamUnreachable):
            transport.send(put_boks(), credential=ClientCertificate(ALIAS))
        assert time.monotonic() - started < BUDGET + MARGIN


def test_silent_server_times_out_within_budget(tpki, certs):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts TCP (backlog), never answers
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        with register_transport(peer(url, tpki), certs) as transport:
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout):
                transport.send(put_boks(), credential=ClientCertificate(ALIAS))
            elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < BUDGET + MARGIN


def test_untrusted_server_certificate_is_tls_error(reg, certs, tmp_path, hooks):
    other = ensure_pki(tmp_path / "other")
    with (
        register_transport(peer(reg.base_url, other), certs) as transport,
        pytest.raises(UpstreamTlsError),
    ):
        transport.send(put_boks(), credential=ClientCertificate(ALIAS))
    assert hooks.requests() == []


def test_client_certificate_of_foreign_ca_is_tls_error(transport, hooks):
    with pytest.raises(UpstreamTlsError):
        transport.send(put_boks(), credential=ClientCertificate("foreign"))
    assert hooks.requests() == []


# --- certificate store ----------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["expired", "future"])
def test_invalid_certificate_never_reaches_the_register(transport, hooks, alias):
    before = hooks.connections()
    with pytest.raises(CertificateExpired):
        transport.send(put_boks(), credential=ClientCertificate(alias))
    assert hooks.requests() == []
    assert hooks.connections() == before


def test_missing_alias_is_unavailable(transport, hooks):
    with pytest.raises(CertificateUnavailable):
        transport.send(put_boks(), credential=ClientCertificate("nobody"))
    assert hooks.requests() == []


def test_closed_transport_refuses(reg, tpki, certs):
    transport = register_transport(peer(reg.base_url, tpki), certs)
    transport.close()
    with pytest.raises(ConfigurationError):
        transport.send(put_boks(), credential=ClientCertificate(ALIAS))


def test_missing_ca_file_is_configuration_error(tpki, certs, tmp_path: Path):
    with pytest.raises(ConfigurationError):
        register_transport(peer("https://127.0.0.1:1", tpki, ca_cert=str(tmp_path / "none")), certs)

"""The operations endpoints on a running platform: ``/metrics``, ``/readyz``, ``/healthz``.

The platform runs on a local socket with the simulated NemSMS register as its peer; calls are
real signed SOAP calls (see test_sf2250_passthrough.py).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from integrations.oots.settings import OOTS_SETTINGS, OotsRequesterSettings, OotsSettings
from serviceplatform.app import PlatformApp
from serviceplatform.observability import health
from serviceplatform.observability.health import Check, ReadinessApp
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.oots_gateway import SimulatedOotsGateway
from serviceplatform.sandbox.pki import PLATFORM_REGISTER_SUBJECT, Pki, issue_certificate, load_ca
from serviceplatform.sandbox.runner import REGISTER_CERT_ALIAS
from tests.integration.conftest import (
    CaseSystem,
    RegisterHooks,
    RunningPlatform,
    make_settings,
    post,
    start_platform,
)
from tests.integration.sf2250_requests import fault_code, opdater, status_code
from tests.wsgi_serving import LocalWsgiServer

OTHER_CPR = "0202804321"
NO_AGREEMENT = "29189862"
OPERATION = "OpdaterBorgerNemSMS"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def scrape(base_url: str) -> Samples:
    answer = http().get(base_url + "/metrics", timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def readyz(base_url: str) -> tuple[int, dict[str, Any]]:
    answer = http().get(base_url + "/readyz", timeout=5)
    assert answer.headers["Content-Type"] == "application/json"
    data: dict[str, Any] = answer.json()
    return answer.status_code, data


def closed_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def add_certificate(pki: Pki, settings_dir: Path, alias: str, days: float) -> None:
    now = datetime.now(UTC)
    _, key = issue_certificate(
        load_ca(pki.ca_cert, pki.ca_key),
        PLATFORM_REGISTER_SUBJECT,
        not_before=now - timedelta(days=400),
        not_after=now + timedelta(days=days),
        path_prefix=settings_dir / "certs" / alias,
    )
    key.chmod(0o600)  # a key readable by others is not usable


@pytest.fixture(scope="module")
def ops(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, register: NemSmsRegister
) -> Iterator[RunningPlatform]:
    platform = start_platform(
        make_settings(tmp_path_factory.mktemp("operations"), pki, register.base_url)
    )
    yield platform
    platform.stop()


# --- /metrics ------------------------------------------------------------------------------


def test_calls_show_in_metrics(
    ops: RunningPlatform, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    before = scrape(ops.base_url)

    ok = post(ops.sf2250_url, case_system.envelope(opdater(OTHER_CPR), ops.sf2250_url))
    assert ok.status_code == 200 and status_code(ok) == 20, ok.text
    refused = post(
        ops.sf2250_url,
        case_system.envelope(opdater(OTHER_CPR), ops.sf2250_url, token={"cvr": NO_AGREEMENT}),
    )
    assert fault_code(refused) == "SP-301"
    hooks.fault(503, 10)
    failed = post(ops.sf2250_url, case_system.envelope(opdater(OTHER_CPR), ops.sf2250_url))
    assert fault_code(failed) == "SP-404"
    hooks.fault(503, 0)

    after = scrape(ops.base_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    calls = "serviceplatform_calls_total"
    assert delta(calls, service="sf2250", operation=OPERATION, outcome="ok") == 1
    assert delta(calls, service="sf2250", operation=OPERATION, outcome="SP-301") == 1
    assert delta(calls, service="sf2250", operation=OPERATION, outcome="SP-404") == 1
    count = "serviceplatform_call_duration_seconds_count"
    assert delta(count, service="sf2250", operation=OPERATION) == 3
    inf = "serviceplatform_call_duration_seconds_bucket"
    assert delta(inf, service="sf2250", operation=OPERATION, le="+Inf") == 3
    upstream = "serviceplatform_upstream_errors_total"
    assert delta(upstream, service="sf2250", kind="UpstreamUnavailable") == 1
    assert delta(upstream, service="sf2250", kind="NoAgreement") == 0
    # The platform's own state: the register certificate of make_settings is years valid.
    assert value(after, "serviceplatform_certificate_expiry_days", alias=REGISTER_CERT_ALIAS) > 300
    assert value(after, "serviceplatform_outbox_failing") == 0


def test_metrics_refuses_other_methods(ops: RunningPlatform) -> None:
    answer = http().post(ops.base_url + "/metrics", data=b"x", timeout=5)
    assert answer.status_code == 405


# --- /readyz and /healthz ------------------------------------------------------------------


def test_readyz_is_ready_with_every_check_ok(ops: RunningPlatform) -> None:
    status, data = readyz(ops.base_url)
    assert status == 200, data
    assert data["status"] == "ready"
    checks = data["checks"]
    assert set(checks) == {"database", f"certificate:{REGISTER_CERT_ALIAS}", "peer:nemsms"}
    assert all(check["ok"] and not check["warning"] for check in checks.values())
    assert "schema at" in checks["database"]["detail"]
    assert http().get(ops.base_url + "/healthz", timeout=5).status_code == 200
    assert http().post(ops.base_url + "/readyz", timeout=5).status_code == 405


def test_unreachable_peer_is_not_ready_and_named(
    tmp_path: Path, pki: Pki, case_system: CaseSystem
) -> None:
    port = closed_port()
    # A user part in the URL must never show in an answer.
    settings = make_settings(tmp_path, pki, f"https://operator:s3cret@127.0.0.1:{port}")
    platform = start_platform(settings)
    try:
        status, data = readyz(platform.base_url)
        assert status == 503, data
        assert data["status"] == "not ready"
        peer = data["checks"]["peer:nemsms"]
        assert peer["ok"] is False and f"127.0.0.1:{port}" in peer["detail"]
        assert data["checks"]["database"]["ok"] is True
        assert data["checks"][f"certificate:{REGISTER_CERT_ALIAS}"]["ok"] is True
        raw = http().get(platform.base_url + "/readyz", timeout=5).text
        assert "s3cret" not in raw and "operator" not in raw
        assert http().get(platform.base_url + "/healthz", timeout=5).status_code == 200

        payload = case_system.envelope(opdater(OTHER_CPR), platform.sf2250_url)
        before = scrape(platform.base_url)
        assert fault_code(post(platform.sf2250_url, payload)) == "SP-401"
        after = scrape(platform.base_url)
        upstream = "serviceplatform_upstream_errors_total"
        kind = {"service": "sf2250", "kind": "UpstreamUnreachable"}
        assert value(after, upstream, **kind) - value(before, upstream, **kind) == 1
    finally:
        platform.stop()


def test_expired_certificate_is_not_ready_and_named(
    tmp_path: Path, pki: Pki, register: NemSmsRegister
) -> None:
    settings = make_settings(tmp_path, pki, register.base_url)
    add_certificate(pki, tmp_path, "print-foces", days=-2)
    platform = start_platform(settings)
    try:
        status, data = readyz(platform.base_url)
        assert status == 503, data
        expired = data["checks"]["certificate:print-foces"]
        assert expired["ok"] is False and "expired" in expired["detail"]
        assert data["checks"][f"certificate:{REGISTER_CERT_ALIAS}"]["ok"] is True
        assert "PRIVATE KEY" not in str(data)
        assert http().get(platform.base_url + "/healthz", timeout=5).status_code == 200
        samples = scrape(platform.base_url)
        assert value(samples, "serviceplatform_certificate_earliest_expiry_days") < -1
    finally:
        platform.stop()


def test_certificate_expiring_soon_is_ready_with_a_warning(
    tmp_path: Path, pki: Pki, register: NemSmsRegister
) -> None:
    settings = make_settings(tmp_path, pki, register.base_url)
    add_certificate(pki, tmp_path, "soon", days=5.5)
    platform = start_platform(settings)
    try:
        status, data = readyz(platform.base_url)
        assert status == 200, data
        soon = data["checks"]["certificate:soon"]
        assert soon["ok"] is True and soon["warning"] is True
        assert "in 5 days" in soon["detail"]
    finally:
        platform.stop()


def test_unmigrated_database_is_not_ready(
    tmp_path: Path, pki: Pki, register: NemSmsRegister
) -> None:
    settings = make_settings(tmp_path, pki, register.base_url)
    app = PlatformApp(settings)  # no seed: the database was never migrated
    server = LocalWsgiServer(app)
    base_url = server.base_url
    try:
        status, data = readyz(base_url)
        assert status == 503
        database = data["checks"]["database"]
        assert database["ok"] is False and "never migrated" in database["detail"]
        assert data["checks"]["peer:nemsms"]["ok"] is True
        assert http().get(base_url + "/healthz", timeout=5).status_code == 200
    finally:
        server.close()
        app.close()


def test_readiness_is_cached_for_two_seconds(ops: RunningPlatform) -> None:
    now = [1000.0]
    app = ReadinessApp(ops.platform, monotonic=lambda: now[0])
    first = app.readiness()
    now[0] += 1.9
    assert app.readiness() is first
    now[0] += 0.2
    assert app.readiness() is not first


def test_a_check_past_the_deadline_fails(
    ops: RunningPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, finished = threading.Event(), threading.Event()

    def hanging(name: str, *_: Any) -> Check:
        # Held until the test has its answer: no clock decides whether the deadline worked.
        release.wait(60)
        finished.set()
        return Check(f"peer:{name}", True, "too late")

    monkeypatch.setattr(health, "check_peer", hanging)
    try:
        readiness = ReadinessApp(ops.platform, deadline=0.2).evaluate()
        # The answer came while the check was still running: the deadline cut it off.
        assert not finished.is_set()
    finally:
        release.set()
    assert not readiness.ready
    late = {check.name: check for check in readiness.checks}["peer:nemsms"]
    assert not late.ok and "no answer within 0.2 s" in late.detail


def test_readyz_has_a_line_per_peer_the_node_uses(
    tmp_path: Path, pki: Pki, register: NemSmsRegister
) -> None:
    # OOTS through the simulated gateway (WS plugin and common services), one authority with
    # an access point of its own that is down, and an AMQP distributor that is down too.
    own_port, broker_port = closed_port(), closed_port()
    with SimulatedOotsGateway(tls_dir=pki.directory) as gateway:
        settings = make_settings(tmp_path, pki, register.base_url)
        settings.sections[OOTS_SETTINGS.name] = OotsSettings(
            domibus_url=gateway.base_url,
            party_id="AP_DK_01",
            common_services_url=gateway.common_services_url,
            poll_interval_seconds=3600,
            requesters={
                "29189854": OotsRequesterSettings(
                    domibus_url=f"http://127.0.0.1:{own_port}/domibus/services/wsplugin",
                    party_id="AP_KOMMUNE_B",
                )
            },
        )
        settings.distributor.transport = "amqp"
        settings.distributor.amqp.url = f"amqp://bf:s3cret@127.0.0.1:{broker_port}/"
        platform = start_platform(settings)
        try:
            status, data = readyz(platform.base_url)
        finally:
            platform.stop()
    checks = data["checks"]
    peers = {name: check["ok"] for name, check in checks.items() if name.startswith("peer:")}
    assert peers == {
        "peer:nemsms": True,
        "peer:domibus": True,
        "peer:oots-common-services": True,
        "peer:domibus:AP_KOMMUNE_B": False,
        "peer:distributor": False,
    }
    assert status == 503 and data["status"] == "not ready"
    assert f"127.0.0.1:{own_port}" in checks["peer:domibus:AP_KOMMUNE_B"]["detail"]
    assert f"127.0.0.1:{broker_port}" in checks["peer:distributor"]["detail"]
    assert "s3cret" not in str(data)

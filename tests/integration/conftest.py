"""Fixtures that run the platform for real: test PKI, the simulated register over mutual TLS,
the platform's WSGI application on a local socket, and a KOMBIT-style client that signs calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from serviceplatform.app import PlatformApp
from serviceplatform.client.request_signer import build_signed_envelope, mint_assertion
from serviceplatform.config import (
    CertificateSettings,
    DatabaseSettings,
    PeerSettings,
    RoutingSettings,
    SecuritySettings,
    ServiceSettings,
    Settings,
)
from serviceplatform.platform import Platform
from serviceplatform.registry import known_services
from serviceplatform.resources import sample_routing_tables
from serviceplatform.routing_files import load_directory
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import STS_ISSUER, Pki, ensure_pki
from serviceplatform.sandbox.runner import REGISTER_CERT_ALIAS, ensure_sample_certificate
from serviceplatform.store.agreements_import import apply_import, read_import
from serviceplatform.store.db import Database
from serviceplatform.store.repository import RoutingRepository
from tests.conftest import copy_migrated_sqlite
from tests.wsgi_serving import LocalWsgiServer

SF2250_PATH = "/service/NemSMS/VedligeholdTilmelding/2"
ENTITY_ID = "http://entityid.test.serviceplatform/service/sf2250/2"
#: Sample authority with an approved agreement (routing_tables/agreements.toml).
AUTHORITY = "29189846"


@dataclass
class RunningPlatform:
    base_url: str
    app: PlatformApp
    server: LocalWsgiServer
    settings: Settings

    @property
    def sf2250_url(self) -> str:
        return self.base_url + SF2250_PATH

    @property
    def platform(self) -> Platform:
        return self.app.platform

    def stop(self) -> None:
        self.server.close()
        self.app.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def register(pki: Pki) -> Iterator[NemSmsRegister]:
    with NemSmsRegister(
        server_cert=pki.nemsms_server_cert, server_key=pki.nemsms_server_key, client_ca=pki.ca_cert
    ) as running:
        yield running


def make_settings(tmp: Path, pki: Pki, register_url: str, **peer: Any) -> Settings:
    certs = tmp / "certs"
    certs.mkdir(exist_ok=True)
    for source, suffix in (
        (pki.platform_register_cert, ".crt"),
        (pki.platform_register_key, ".key"),
    ):
        target = certs / f"{REGISTER_CERT_ALIAS}{suffix}"
        target.write_bytes(source.read_bytes())
        # The certificate store refuses a private key others may read.
        target.chmod(0o600 if suffix == ".key" else 0o644)
    return Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp / 'platform.sqlite'}"),
        security=SecuritySettings(
            trusted_sts_certs=[str(pki.sts_cert)], trusted_issuers=[STS_ISSUER]
        ),
        routing=RoutingSettings(directory=str(sample_routing_tables())),
        certificates=CertificateSettings(directory=str(certs)),
        peers={"nemsms": PeerSettings(base_url=register_url, ca_cert=str(pki.ca_cert), **peer)},
        services={"sf2250": ServiceSettings(entity_id=ENTITY_ID)},
        base_dir=str(tmp),
    )


def seed(settings: Settings) -> None:
    """The sample agreements and routes, and the test client's certificate for the sample system."""
    copy_migrated_sqlite(settings.database.url)
    database = Database(settings.database.url)
    try:
        database.upgrade()
        repository = RoutingRepository(database)
        tables = sample_routing_tables()
        now = datetime.now(UTC)
        apply_import(
            database,
            *read_import(tables / "agreements.toml", known_services(), now=now),
            now=now,
            actor="test",
        )
        # The PKI whose STS the settings trust is the one the test client's certificate is from.
        ensure_sample_certificate(
            database, ensure_pki(Path(settings.security.trusted_sts_certs[0]).parent)
        )
        repository.replace_routes(load_directory(tables, known_services()))
    finally:
        database.dispose()


def start_platform(settings: Settings) -> RunningPlatform:
    seed(settings)
    app = PlatformApp(settings)
    server = LocalWsgiServer(app)
    return RunningPlatform(server.base_url, app, server, settings)


@pytest.fixture(scope="session")
def running(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, register: NemSmsRegister
) -> Iterator[RunningPlatform]:
    settings = make_settings(tmp_path_factory.mktemp("platform"), pki, register.base_url)
    platform = start_platform(settings)
    yield platform
    platform.stop()


@pytest.fixture()
def hooks(register: NemSmsRegister) -> Iterator[RegisterHooks]:
    control = RegisterHooks(register.control_url)
    control.clear()
    yield control
    control.clear()


@dataclass
class RegisterHooks:
    """The register's test hooks, spoken over HTTP exactly as outside tools would."""

    control_url: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False

    def requests(self) -> list[dict[str, Any]]:
        answer = self.session.get(f"{self.control_url}/requests", timeout=5)
        answer.raise_for_status()
        data: list[dict[str, Any]] = answer.json()
        return data

    def clear(self) -> None:
        """Forget recorded requests and sent SMS, drop a pending fault, run the real clock."""
        self.session.delete(f"{self.control_url}/requests", timeout=5).raise_for_status()
        self.fault(503, 0)
        self.clear_sms()
        self.set_clock(None)

    def sms(self) -> list[dict[str, Any]]:
        """Every SMS the register accepted (EP_NS4), oldest first."""
        answer = self.session.get(f"{self.control_url}/sms", timeout=5)
        answer.raise_for_status()
        data: list[dict[str, Any]] = answer.json()
        return data

    def clear_sms(self) -> None:
        self.session.delete(f"{self.control_url}/sms", timeout=5).raise_for_status()

    def set_clock(self, now: datetime | None) -> None:
        """Fix the register's clock at ``now`` (aware), or return it to the running clock."""
        if now is not None and now.utcoffset() is None:
            raise ValueError("set_clock needs an aware datetime")
        self.session.put(
            f"{self.control_url}/clock",
            json={"now": None if now is None else now.isoformat()},
            timeout=5,
        ).raise_for_status()

    def subscribe(
        self, sysid: str, cpr: list[str] | None = None, cvr: list[str] | None = None
    ) -> dict[str, list[str]]:
        """Set the full subscription list the register serves for ``sysid``."""
        answer = self.session.put(
            f"{self.control_url}/subscriptions/{sysid}",
            json={"cpr": list(cpr or []), "cvr": list(cvr or [])},
            timeout=5,
        )
        answer.raise_for_status()
        data: dict[str, list[str]] = answer.json()
        return data

    def fault(self, status: int | str, count: int) -> None:
        self.session.post(
            f"{self.control_url}/faults", json={"status": status, "count": count}, timeout=5
        ).raise_for_status()

    def connections(self) -> int:
        """TLS connections the register has accepted so far."""
        stats: dict[str, int] = self.session.get(f"{self.control_url}/stats", timeout=5).json()
        return stats["connections_accepted"]


@dataclass
class CaseSystem:
    """A KOMBIT-style client: mints tokens with the test STS and signs as holder of key."""

    pki: Pki
    sts_key: RSAPrivateKey
    holder_key: RSAPrivateKey
    sts_cert: x509.Certificate
    holder_cert: x509.Certificate

    def assertion(
        self,
        *,
        cvr: str = AUTHORITY,
        audience: str = ENTITY_ID,
        now: datetime | None = None,
        ttl: timedelta = timedelta(hours=8),
        not_before: datetime | None = None,
        sts_key: RSAPrivateKey | None = None,
        sts_cert: x509.Certificate | None = None,
    ) -> etree._Element:
        return mint_assertion(
            sts_key=sts_key or self.sts_key,
            sts_cert=sts_cert or self.sts_cert,
            issuer=STS_ISSUER,
            audience=audience,
            authority_cvr=cvr,
            holder_cert=self.holder_cert,
            now=now,
            ttl=ttl,
            not_before=not_before,
        )

    def envelope(
        self,
        body: etree._Element,
        url: str,
        *,
        assertion: etree._Element | None = None,
        token: dict[str, Any] | None = None,
        holder_key: RSAPrivateKey | None = None,
        **signing: Any,
    ) -> bytes:
        """A signed request: ``token`` goes to ``assertion()``, ``signing`` to the signer."""
        signing.setdefault("message_id", f"urn:uuid:{uuid.uuid4()}")
        return build_signed_envelope(
            body,
            assertion=assertion if assertion is not None else self.assertion(**(token or {})),
            holder_key=holder_key or self.holder_key,
            to=url,
            action="urn:test:sf2250",
            **signing,
        )


def post(
    url: str, payload: bytes, content_type: str = "application/soap+xml; charset=utf-8"
) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.post(url, data=payload, headers={"Content-Type": content_type}, timeout=10)


@pytest.fixture(scope="session")
def case_system(pki: Pki) -> CaseSystem:
    def key(path: Path) -> RSAPrivateKey:
        loaded = load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(loaded, RSAPrivateKey)
        return loaded

    return CaseSystem(
        pki=pki,
        sts_key=key(pki.sts_key),
        holder_key=key(pki.client_key),
        sts_cert=x509.load_pem_x509_certificate(pki.sts_cert.read_bytes()),
        holder_cert=x509.load_pem_x509_certificate(pki.client_cert.read_bytes()),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


SignFn = Callable[..., bytes]

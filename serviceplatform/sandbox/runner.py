"""``serviceplatform sandbox``: the whole platform and its simulated peers on one machine.

The contract with scripts and tests is ``../shared/docs/SANDBOX.md``: what the first run
creates in the work directory, the ``sandbox.json`` written once every listener accepts
connections, the register's test hooks, and a clean exit 0 on SIGINT/SIGTERM.

The simulated register and the simulated OOTS gateway (WS plugin, providers, preview pages,
common services) run in this process (threads); the platform runs as a child process under
gunicorn, exactly as it would in production.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w
from cryptography import x509

from integrations.oots.access_points import access_point_for
from integrations.oots.settings import OOTS_SETTINGS
from serviceplatform.config import Settings, load_settings
from serviceplatform.errors import ConfigurationError
from serviceplatform.private_file import make_private, write_private
from serviceplatform.registry import known_services, soap_services
from serviceplatform.resources import sample_routing_tables
from serviceplatform.sandbox.admin_tokens import admin_settings, ensure_tokens
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.oots_as4 import PLATFORM_AS4_PARTY, PlatformPeer
from serviceplatform.sandbox.oots_gateway import SimulatedOotsGateway
from serviceplatform.sandbox.oots_network import REQUESTER_ACCESS_POINT
from serviceplatform.sandbox.oots_seed import (
    OOTS_AGREEMENT,
    OOTS_AGREEMENT_B,
    OOTS_AUTHORITY,
    OOTS_AUTHORITY_B,
    OOTS_AUTHORITY_B_NAME,
    OOTS_AUTHORITY_NAME,
    OOTS_GATEWAYS,
    PLATFORM_AS4_ALIAS,
    PLATFORM_AS4_PATH,
    SANDBOX_CONSUMER_SYSTEM,
)
from serviceplatform.sandbox.pki import STS_ISSUER, Pki, ensure_pki, issue_certificate, load_ca
from serviceplatform.sandbox.routing_watch import RoutingWatcher
from serviceplatform.sandbox.sf1601_seed import (
    PRINT_SERVICE,
    ensure_sf1601_route,
    kombi_peers,
    print_route,
)
from serviceplatform.store.agreements_import import apply_import, read_import
from serviceplatform.store.db import Database
from serviceplatform.store.repository import RoutingRepository
from serviceplatform.store.systems import SystemStore, parse_certificate

#: Alias of the platform's outward certificate towards the register in the sample agreements.
REGISTER_CERT_ALIAS = "platform-register"
STARTUP_TIMEOUT_SECONDS = 60.0
#: Who the sandbox's own changes are recorded as.
SANDBOX_ACTOR = "sandbox"
#: The platform's user of the simulated WS plugin (a Domibus plugin user).
OOTS_USERNAME = "sandbox-platform"
OOTS_PASSWORD = "sandbox-oots-123456"


@dataclass(frozen=True)
class SandboxPaths:
    workdir: Path

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    @property
    def certs(self) -> Path:
        return self.workdir / "certs"

    @property
    def database(self) -> Path:
        return self.workdir / "serviceplatform.sqlite"

    @property
    def config(self) -> Path:
        return self.workdir / "platform.toml"

    @property
    def manifest(self) -> Path:
        return self.workdir / "sandbox.json"

    @property
    def admin_tokens(self) -> Path:
        return self.workdir / "admin-tokens.json"


def ensure_port_free(port: int) -> None:
    """Refuse a taken port with a clear message, before anything is started."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigurationError(
                f"port {port} is in use on 127.0.0.1: stop what uses it, or pass --port 0 "
                "(any free port) or another port"
            ) from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_CONFIG_HEADER = "# Written by `serviceplatform sandbox` at every start; edits are overwritten.\n\n"


def _overlay(base: dict[str, Any], extra: dict[str, Any], prefix: str = "") -> None:
    """Lay a user's config file over the sandbox's own settings (the user's values win)."""
    for key, value in extra.items():
        if isinstance(value, dict):
            target = base.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigurationError(f"--config: {prefix}{key} must not be a table")
            _overlay(target, value, f"{prefix}{key}.")
        elif not prefix:
            raise ConfigurationError(f"--config: top-level setting {key!r} belongs in a table")
        else:
            base[key] = value


def oots_settings(gateway: SimulatedOotsGateway) -> dict[str, Any]:
    """The ``[oots]`` table pointing the platform at the simulated gateway: authority A through
    its WS plugin, authority B through the platform's own AS4 access point (``[oots.as4]``),
    whose partners are the simulated providers' access points."""
    partner = {
        "endpoint_url": gateway.as4_endpoint_url,
        "signing_cert": str(gateway.as4_cert),
        "ca_cert": str(gateway.preview_ca_cert),
    }
    return {
        "domibus_url": gateway.base_url,
        "domibus_username": OOTS_USERNAME,
        "domibus_password": OOTS_PASSWORD,
        "party_id": REQUESTER_ACCESS_POINT,
        "common_services_url": gateway.common_services_url,
        "poll_interval_seconds": 1.0,
        "answer_wait_seconds": 3.0,
        "requesters": {
            OOTS_AUTHORITY: {"name": OOTS_AUTHORITY_NAME, "gateway": OOTS_GATEWAYS[OOTS_AUTHORITY]},
            OOTS_AUTHORITY_B: {
                "name": OOTS_AUTHORITY_B_NAME,
                "gateway": OOTS_GATEWAYS[OOTS_AUTHORITY_B],
            },
        },
        "as4": {
            "party_id": PLATFORM_AS4_PARTY,
            "signing_alias": PLATFORM_AS4_ALIAS,
            "receive_path": PLATFORM_AS4_PATH,
            "partners": {party: dict(partner) for party in gateway.as4_party_ids},
        },
    }


def ensure_as4_key(paths: SandboxPaths, pki: Pki) -> Path:
    """The platform's own AS4 signing and decryption pair in its certificate store (alias
    ``oots-as4``, CN = its party id), from the sandbox CA; made once. Returns the certificate."""
    prefix = paths.certs / PLATFORM_AS4_ALIAS
    cert, key = prefix.with_suffix(".crt"), prefix.with_suffix(".key")
    if not (cert.is_file() and key.is_file()):
        now = _now()
        cert, key = issue_certificate(
            load_ca(pki.ca_cert, pki.ca_key),
            f"CN={PLATFORM_AS4_PARTY},O=Serviceplatform Sandbox,C=DK",
            not_before=now - timedelta(hours=1),
            not_after=now + timedelta(days=3650),
            path_prefix=prefix,
        )
    make_private(key)
    return cert


def write_platform_config(
    paths: SandboxPaths,
    pki: Pki,
    register: NemSmsRegister,
    user_config: Path | None,
    gateway: SimulatedOotsGateway | None = None,
    *,
    base_url: str,
    kombi: dict[str, str] | None = None,
) -> None:
    """Write ``DIR/platform.toml``; ``base_url`` is where the platform will listen.

    It is the public base URL too, so the sandbox checks the signed ``wsa:To`` of each call
    as production must (``serve`` refuses to start without one).
    """
    tables: dict[str, Any] = {
        "database": {"url": f"sqlite:///{paths.database}"},
        "security": {
            "trusted_sts_certs": [str(pki.sts_cert)],
            "trusted_issuers": [STS_ISSUER],
        },
        "soap": {"public_base_url": base_url},
        "routing": {"directory": str(sample_routing_tables())},
        "certificates": {"directory": str(paths.certs)},
        "logging": {"level": "INFO"},
        "peers": {"nemsms": {"base_url": register.base_url, "ca_cert": str(pki.ca_cert)}},
        "services": {
            service.key: {"entity_id": service.default_entity_id} for service in soap_services()
        },
        # The embedded default: one XML file per message; see docs/distribution.md for AMQP.
        "distributor": {"transport": "file", "directory": str(paths.workdir / "distributor")},
        "admin": admin_settings(ensure_tokens(paths.admin_tokens)),
    }
    if gateway is not None:
        tables["oots"] = oots_settings(gateway)
    # The simulated STS and SF1601 host (peer name -> base URL): the SF1601 route's peers.
    for name, url in (kombi or {}).items():
        tables["peers"][name] = {"base_url": url, "ca_cert": str(pki.ca_cert)}
    if user_config is not None:
        try:
            _overlay(tables, tomllib.loads(user_config.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"--config {user_config}: {exc}") from exc
    # 0600: it carries the Domibus password (and whatever --config lays over it).
    write_private(paths.config, _CONFIG_HEADER + tomli_w.dumps(tables))


def prepare_workdir(paths: SandboxPaths) -> tuple[Pki, bool]:
    """Create what a first run needs; return the PKI and whether this was the first run."""
    paths.workdir.mkdir(parents=True, exist_ok=True)
    pki = ensure_pki(paths.pki)
    paths.certs.mkdir(exist_ok=True)
    for source, suffix in (
        (pki.platform_register_cert, ".crt"),
        (pki.platform_register_key, ".key"),
    ):
        target = paths.certs / f"{REGISTER_CERT_ALIAS}{suffix}"
        if not target.exists():
            shutil.copyfile(source, target)
            target.chmod(0o600 if suffix == ".key" else 0o644)
    # The database holds full CPR numbers (audit, subscriptions): owner-only. A new one is
    # created 0600 by the store (serviceplatform.store.db); one an older sandbox left 0644,
    # and its WAL files, are tightened here.
    ensure_as4_key(paths, pki)
    for suffix in ("", "-wal", "-shm"):
        make_private(paths.database.with_name(paths.database.name + suffix))
    return pki, not paths.database.exists()


def _now() -> datetime:
    return datetime.now(UTC)


def ensure_sample_certificate(database: Database, pki: Pki) -> None:
    """Register the sandbox client's certificate for the sample consumer system.

    The sample file cannot name it (the PKI is made per work directory), and a sandbox made
    before systems were known by fingerprint has none; a later run finds it registered.
    """
    store = SystemStore(database)
    pem = pki.client_cert.read_bytes()
    if store.by_fingerprint(parse_certificate(pem, now=_now()).fingerprint) is not None:
        return
    store.add_certificate(
        SANDBOX_CONSUMER_SYSTEM, pem, actor=SANDBOX_ACTOR, reason="the sandbox client"
    )


def seed_database(settings: Settings, first_run: bool, pki: Pki) -> tuple[Database, RoutingWatcher]:
    """Migrate the database, seed sample agreements on the first run, and load the routes.

    Returns the open database and a (not yet started) watcher that keeps the routes in step
    with the routing table files.
    """
    database = Database.from_settings(settings)
    database.upgrade()
    tables = settings.path(settings.routing.directory)
    repository = RoutingRepository(database)
    if first_run:
        systems, items = read_import(tables / "agreements.toml", known_services(), now=_now())
        apply_import(database, systems, items, now=_now(), actor=SANDBOX_ACTOR)
    ensure_sample_certificate(database, pki)
    ensure_sf1601_route(database, SANDBOX_ACTOR, settings.peers)
    # Also into a sandbox made before OOTS existed; never over a state changed since.
    for agreement in (OOTS_AGREEMENT, OOTS_AGREEMENT_B):
        if all(a.uuid != agreement.uuid for a in repository.list_agreements()):
            repository.upsert_agreement(agreement)
    watcher = RoutingWatcher(
        tables, database, known_services(), interval=settings.routing.reload_interval_seconds
    )
    watcher.sync()
    return database, watcher


def _wait_until_serving(url: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ConfigurationError(f"the platform process exited with code {child.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise ConfigurationError(
        f"the platform did not answer {url} within {STARTUP_TIMEOUT_SECONDS} s"
    )


def manifest(
    paths: SandboxPaths,
    pki: Pki,
    register: NemSmsRegister,
    base_url: str,
    settings: Settings,
    database: Database,
    gateway: SimulatedOotsGateway,
    kombi: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    repository = RoutingRepository(database)
    routes = repository.list_routes()
    agreements = repository.list_agreements()
    admin_tokens = ensure_tokens(paths.admin_tokens)
    described: list[dict[str, Any]] = []
    for agreement in agreements:
        sysids = {
            row.role: row.sysid
            for row in routes
            if row.authority_cvr == agreement.authority_cvr
            and row.service == agreement.service
            and not row.subject
        }
        described.append(
            {
                "cvr": agreement.authority_cvr,
                "service": agreement.service,
                "consumer_system": agreement.consumer_system,
                "agreement": agreement.uuid,
                "status": agreement.status.value,
                "sysids": sysids,
            }
        )
        if agreement.service == PRINT_SERVICE:
            described[-1]["print_route"] = print_route(database, agreement.uuid)
    peers: dict[str, Any] = {
        "nemsms": {"base_url": register.base_url, "control_url": register.control_url},
        "distributor": {
            "transport": settings.distributor.transport,
            "dir": str(settings.path(settings.distributor.directory).resolve()),
        },
        "oots_gateway": {
            "ws_plugin_url": gateway.base_url,
            "username": OOTS_USERNAME,
            "password": OOTS_PASSWORD,
            "party_id": REQUESTER_ACCESS_POINT,
            "common_services_url": gateway.common_services_url,
            "evidence_broker_url": gateway.evidence_broker_url,
            "data_service_directory_url": gateway.data_service_directory_url,
            "preview_base_url": gateway.preview_base_url,
            "preview_ca_cert": str(gateway.preview_ca_cert),
            "control_url": gateway.control_url,
            # The simulated providers' AS4 access points (TLS: trust preview_ca_cert), and
            # the platform's own AS4 access point they push answers to.
            "as4_endpoint_url": gateway.as4_endpoint_url,
            "as4_party_ids": gateway.as4_party_ids,
            "as4_cert": str(gateway.as4_cert),
            "as4_platform_party_id": PLATFORM_AS4_PARTY,
            "as4_platform_cert": str(paths.certs / f"{PLATFORM_AS4_ALIAS}.crt"),
            "as4_receive_url": base_url + PLATFORM_AS4_PATH,
        },
        **(kombi or {}),
    }
    return {
        "platform": {"base_url": base_url, "pid": os.getpid()},
        "services": {
            service.key: {
                "url": base_url + service.path,
                "wsdl": base_url + service.path + "?wsdl",
                "entity_id": settings.service(service.key).entity_id,
            }
            for service in soap_services()
        },
        "pki": {
            "ca_cert": str(pki.ca_cert),
            "sts_cert": str(pki.sts_cert),
            "sts_key": str(pki.sts_key),
            "sts_issuer": STS_ISSUER,
            "client_cert": str(pki.client_cert),
            "client_key": str(pki.client_key),
        },
        "peers": peers,
        "admin": {
            "base_url": base_url + "/admin/",
            "api_url": base_url + "/admin/api",
            "token": admin_tokens["operator"],
            "tokens": admin_tokens,
        },
        "config": str(paths.config),
        "database": settings.database.url,
        # Authorities a client can call with; every sample agreement, whatever its state,
        # is under "agreements" (for tests of refused calls).
        "authorities": _authorities(described, settings),
        "agreements": described,
    }


def _authorities(described: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """One entry per authority with an approved agreement, its SysIDs over all services.

    The entry keeps the fields of the authority's agreement for the first registered service
    (as before more services existed), lists every approved service under ``services``, and
    says which gateway its OOTS requests take (``oots_gateway``: ``domibus-ws`` or ``as4``).
    """
    oots = settings.section(OOTS_SETTINGS)
    order = {service.key: index for index, service in enumerate(soap_services())}
    approved = sorted(
        (a for a in described if a["status"] == "approved"),
        key=lambda a: (order.get(a["service"], len(order)), a["cvr"]),
    )
    merged: dict[str, dict[str, Any]] = {}
    for agreement in approved:
        entry = merged.get(agreement["cvr"])
        if entry is None:
            entry = merged[agreement["cvr"]] = {
                **agreement,
                "sysids": dict(agreement["sysids"]),
                "services": [],
                # How its print calls (EP_SP1/EP_SP4) go out; sf1600 without a print agreement.
                "print_route": "sf1600",
                "oots_gateway": access_point_for(oots, agreement["cvr"]).gateway,
            }
        entry["services"].append(agreement["service"])
        if "print_route" in agreement:
            entry["print_route"] = agreement["print_route"]
        for role, sysid in agreement["sysids"].items():
            entry["sysids"].setdefault(role, sysid)
    return sorted(merged.values(), key=lambda entry: str(entry["cvr"]))


def run_sandbox(
    workdir: Path, port: int, user_config: Path | None, workers: int = 2, threads: int = 4
) -> int:
    paths = SandboxPaths(workdir.resolve())
    if port:
        ensure_port_free(port)
    paths.manifest.unlink(missing_ok=True)
    pki, first_run = prepare_workdir(paths)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    sts, sf1601 = kombi_peers(pki)
    with (
        NemSmsRegister(
            server_cert=pki.nemsms_server_cert,
            server_key=pki.nemsms_server_key,
            client_ca=pki.ca_cert,
            clock_dir=paths.workdir,
        ) as register,
        SimulatedOotsGateway(
            username=OOTS_USERNAME, password=OOTS_PASSWORD, tls_dir=paths.pki
        ) as gateway,
        sts,
        sf1601,
    ):
        kombi = {
            "sts": {"base_url": sts.base_url, "control_url": sts.control_url},
            "sf1601": {"base_url": sf1601.base_url, "control_url": sf1601.control_url},
        }
        # The port first: the settings name the base URL callers sign their wsa:To for.
        port = port or free_port()
        base_url = f"http://127.0.0.1:{port}"
        write_platform_config(
            paths,
            pki,
            register,
            user_config,
            gateway,
            base_url=base_url,
            kombi={name: peer["base_url"] for name, peer in kombi.items()},
        )
        settings = load_settings(paths.config)
        gateway.connect_as4(
            PlatformPeer(
                PLATFORM_AS4_PARTY,
                x509.load_pem_x509_certificate(ensure_as4_key(paths, pki).read_bytes()),
                base_url + PLATFORM_AS4_PATH,
            )
        )
        database, watcher = seed_database(settings, first_run, pki)
        watcher.start()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serviceplatform.cli",
                "--config",
                str(paths.config),
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ]
        )
        try:
            _wait_until_serving(base_url + "/healthz", child)
            data = manifest(paths, pki, register, base_url, settings, database, gateway, kombi)
            # Every admin bearer token is in it: 0600 from the first byte (SANDBOX.md).
            write_private(paths.manifest, json.dumps(data, indent=2) + "\n")
            _announce(data, paths, first_run)
            while not stop.wait(0.5):
                if child.poll() is not None:
                    print(f"platform process exited with code {child.returncode}", file=sys.stderr)
                    return 1
        finally:
            paths.manifest.unlink(missing_ok=True)
            watcher.stop()
            database.dispose()
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
    print("sandbox stopped", flush=True)
    return 0


def _announce(data: dict[str, Any], paths: SandboxPaths, first_run: bool) -> None:
    state = "created" if first_run else "reused"
    lines = [
        f"Sandbox running ({state} {paths.workdir}); Ctrl-C stops it.",
        f"  platform        {data['platform']['base_url']}",
    ]
    for key, service in data["services"].items():
        lines.append(f"  service {key:<7} {service['url']}")
    lines += [
        f"  NemSMS register {data['peers']['nemsms']['base_url']} (mutual TLS)",
        f"  register hooks  {data['peers']['nemsms']['control_url']}",
        f"  STS (SF1601)    {data['peers']['sts']['base_url']} (mutual TLS)",
        f"  SF1601          {data['peers']['sf1601']['base_url']} (mutual TLS, token)",
    ]
    oots = data["peers"]["oots_gateway"]
    lines += [
        f"  OOTS WS plugin  {oots['ws_plugin_url']}",
        f"  OOTS previews   {oots['preview_base_url']}",
        f"  OOTS hooks      {oots['control_url']}",
        f"  OOTS AS4        {oots['as4_endpoint_url']} -> {oots['as4_receive_url']}",
        f"  manifest        {paths.manifest}",
        f"  token           serviceplatform token --workdir {paths.workdir} --cvr 29189846",
    ]
    print("\n".join(lines), flush=True)

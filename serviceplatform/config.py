"""The platform's one typed settings object.

Settings come from a TOML file, then ``SP_*`` environment variables on top (``SP_DATABASE__URL``
sets ``[database] url``; a double underscore descends one table). Keys and certificates are
given by path, never inline. The sandbox writes its own file (``DIR/platform.toml``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from serviceplatform.errors import ConfigurationError


@dataclass
class DatabaseSettings:
    url: str = "sqlite:///serviceplatform.sqlite"


@dataclass
class SecuritySettings:
    #: PEM files of the STS certificates whose signatures on tokens are trusted.
    trusted_sts_certs: list[str] = field(default_factory=list)
    #: Accepted ``saml:Issuer`` values; empty accepts any issuer whose signature verifies.
    trusted_issuers: list[str] = field(default_factory=list)
    clock_skew_seconds: int = 60
    #: Longest accepted lifetime of a ``wsu:Timestamp`` (Created to Expires).
    max_timestamp_lifetime_seconds: int = 300
    #: How long a MessageID is remembered; at least the timestamp lifetime plus skew.
    replay_window_seconds: int = 900


@dataclass
class SoapSettings:
    max_body_bytes: int = 512 * 1024
    #: The public base URL callers use (``https://host``). When set, ``?wsdl`` advertises it and
    #: a request whose signed ``wsa:To`` is not this base plus the service path is refused.
    public_base_url: str = ""

    def public_url(self, path: str) -> str | None:
        """Where callers address the service at ``path``; None without a public base URL."""
        base = self.public_base_url
        return base.rstrip("/") + path if base else None


@dataclass
class RoutingSettings:
    #: Directory holding the routing tables (``*.csv``) and agreements (``agreements.toml``).
    directory: str = "routing_tables"
    #: Seconds between checks for a changed routing table.
    reload_interval_seconds: float = 2.0


@dataclass
class CertificateSettings:
    #: Directory of outward certificates: ``<alias>.crt`` and ``<alias>.key`` (PEM).
    directory: str = "certs"


@dataclass
class PeerSettings:
    base_url: str = ""
    #: PEM bundle the platform trusts for this peer's server certificate.
    ca_cert: str = ""
    connect_timeout_seconds: float = 0.25
    read_timeout_seconds: float = 0.5
    #: The whole call, retries included, must end within this budget (the SLA).
    budget_seconds: float = 1.0
    max_retries: int = 2
    backoff_seconds: float = 0.05
    pool_size: int = 16


@dataclass
class ServiceSettings:
    #: The audience (entity id) tokens for this service must carry.
    entity_id: str = ""


@dataclass
class AmqpDistributorSettings:
    """Beskedfordeler over AMQP: publish to an exchange, wait for a ``StandardRetur`` reply."""

    #: ``amqp://user:password@host:5672/`` or ``amqps://...:5671/`` (the vhost is below).
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    virtual_host: str = "BF"
    exchange: str = "AFSEND_BESKED_EXCHANGE"
    routing_key: str = ""
    #: PEM bundle trusted for the broker's certificate (``amqps``).
    ca_cert: str = ""
    #: Seconds to wait for the ``StandardRetur`` reply of one message.
    reply_timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 5.0
    #: Where the SAML token of the ``token`` header comes from: ``file`` reads
    #: ``token_dir/<authority CVR>.xml`` (kept fresh by the operator's STS client);
    #: ``sandbox-sts`` mints one with ``sts_key``/``sts_cert`` (sandbox and tests only).
    token_source: str = "file"
    token_dir: str = "tokens"
    sts_key: str = ""
    sts_cert: str = ""
    sts_issuer: str = ""
    #: Audience of the tokens the sandbox STS mints.
    token_audience: str = "http://entityid.kombit.dk/service/beskedfordeler/1"


@dataclass
class DistributorSettings:
    """Where the messages to the message distributor (Beskedfordeler) go."""

    #: ``file`` (one XML file per message in ``directory``; the embedded default) or ``amqp``.
    transport: str = "file"
    directory: str = "distributor"
    amqp: AmqpDistributorSettings = field(default_factory=AmqpDistributorSettings)
    #: Messages handed over per relay round.
    batch_size: int = 500


@dataclass
class SubscriptionSettings:
    """The nightly NemSMS subscription-list diff (SF2250 section 1.2.2)."""

    #: Local time of the nightly run (``HH:MM``) in ``timezone``.
    run_at: str = "02:00"
    timezone: str = "Europe/Copenhagen"
    #: Whether ``serviceplatform serve`` runs the scheduler in this process.
    scheduler_enabled: bool = True
    #: Snapshots older than this many days are deleted (a date can be re-run while kept).
    retention_days: int = 14
    #: The UUID of message type "NemSMS tilmelding" in Beskedfordeler.
    message_type_uuid: str = "5a0bb4a4-7c4b-4c59-9d3a-6f3f2b6a1c01"
    #: The platform as registering actor (``RegistreringsAktoer``, ``BeskedAnsvarligAktoer``).
    actor_uuid: str = "d92bb9c2-d826-4028-8fb5-d8b88b4377d4"
    #: Seconds a run's lease lasts without renewal; a crashed run is taken over after it.
    lease_seconds: int = 300


@dataclass
class AdminPrincipal:
    """One caller of the admin API (docs/admin-api.md)."""

    #: ``operator``, ``authority_admin`` or ``supplier``.
    role: str = ""
    #: SHA-256 (hex) of the caller's bearer token; the token itself is never configured.
    token_sha256: str = ""
    #: The RFC 4514 subject of the caller's client certificate (via a trusted proxy).
    cert_subject: str = ""
    #: The authority an ``authority_admin`` administers.
    authority_cvr: str = ""
    #: The supplier a ``supplier`` requests agreements as.
    supplier: str = ""
    #: That supplier's CVR number: it may register, and request agreements for, only the
    #: consumer systems that carry it.
    supplier_cvr: str = ""


@dataclass
class AdminSettings:
    #: The header in which a TLS-terminating proxy passes the verified client subject.
    client_cert_subject_header: str = ""
    #: Addresses (REMOTE_ADDR) whose client subject header is believed.
    trusted_proxies: list[str] = field(default_factory=list)
    principals: dict[str, AdminPrincipal] = field(default_factory=dict)


@dataclass
class OotsRequesterSettings:
    """One authority as an OOTS Evidence Requester (``[oots.requesters.<CVR>]``)."""

    #: Its name in the EDM request (``sdg:EvidenceRequester/sdg:Name``).
    name: str = ""
    #: The authority's own Domibus access point, when it runs one ("direct integration"):
    #: its WS plugin, plugin user and party id. Empty: the platform's ``[oots]`` values.
    domibus_url: str = ""
    domibus_username: str = ""
    domibus_password: str = ""
    domibus_password_file: str = ""
    domibus_ca_cert: str = ""
    party_id: str = ""


@dataclass
class OotsSettings:
    """OOTS evidence requests (``integrations/oots``; ``docs/oots-service.md``)."""

    #: The Domibus WS plugin of the platform's access point (``.../services/wsplugin``).
    #: Empty: the OOTS service refuses evidence requests with SP-901 (finding still works).
    domibus_url: str = ""
    domibus_username: str = ""
    #: The plugin user's password: here (best from ``SP_OOTS__DOMIBUS_PASSWORD``) or a file.
    domibus_password: str = ""
    domibus_password_file: str = ""
    #: PEM bundle trusted for Domibus' certificate (an ``https`` URL); empty: public roots.
    domibus_ca_cert: str = ""
    domibus_timeout_seconds: float = 30.0
    #: The platform's own access point party id (the ebMS ``From`` party).
    party_id: str = ""
    #: The common services (Evidence Broker and Data Service Directory) ``.../rest/search``.
    common_services_url: str = ""
    common_services_timeout_seconds: float = 10.0
    #: How long an Evidence Broker or DSD answer is reused.
    cache_ttl_seconds: int = 3600
    #: Seconds between two collections of answers from Domibus in each server process
    #: (0: only when a call waits for or asks about an answer).
    poll_interval_seconds: float = 5.0
    #: How long AnmodBevis waits for the provider's answer before answering ``Afventer``.
    answer_wait_seconds: float = 2.0
    #: A request still unanswered after this long fails with SP-721; one the gateway never
    #: took (it stayed queued) fails with SP-723.
    answer_timeout_seconds: int = 86400
    #: A request queued because the gateway was down is sent again by the poller once it has
    #: waited this long: longer than one submission may take, so a first attempt still under
    #: way is never raced by its resend.
    resend_after_seconds: float = 60.0
    #: Evidence documents (and the requests' personal data) are deleted this long after the
    #: request is finished.
    evidence_retention_hours: int = 24
    #: The scheme of the requester identifiers in the routing table (role ``oots_requester``).
    requester_scheme: str = "urn:cef.eu:names:identifier:EAS:0184"
    requester_country: str = "DK"
    #: Where the procedures are implemented (the Evidence Broker's jurisdiction).
    procedure_country: str = "DK"
    #: Path the Domibus push endpoint (``BackendService``) is mounted at; empty: not mounted.
    push_path: str = ""
    push_username: str = ""
    push_password: str = ""
    requesters: dict[str, OotsRequesterSettings] = field(default_factory=dict)


@dataclass
class LoggingSettings:
    level: str = "INFO"


@dataclass
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    soap: SoapSettings = field(default_factory=SoapSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    certificates: CertificateSettings = field(default_factory=CertificateSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    distributor: DistributorSettings = field(default_factory=DistributorSettings)
    subscriptions: SubscriptionSettings = field(default_factory=SubscriptionSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    oots: OotsSettings = field(default_factory=OotsSettings)
    #: Outward peers by name (``nemsms``, later ``oots_gateway``, ...).
    peers: dict[str, PeerSettings] = field(default_factory=dict)
    #: Per-service settings by service key (``sf2250``, ...).
    services: dict[str, ServiceSettings] = field(default_factory=dict)
    #: Directory relative paths in the file are resolved against (the file's own directory).
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """Resolve a configured path against the directory of the settings file."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def peer(self, name: str) -> PeerSettings:
        try:
            return self.peers[name]
        except KeyError:
            raise ConfigurationError(f"no [peers.{name}] section is configured") from None

    def service(self, key: str) -> ServiceSettings:
        return self.services.get(key, ServiceSettings())


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigurationError(f"unknown setting(s) {sorted(unknown)} in [{where}]")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        origin = getattr(hint, "__origin__", None)
        if is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigurationError(f"[{where}.{name}] must be a table")
            kwargs[name] = _build(hint, value, f"{where}.{name}" if where else name)  # type: ignore[arg-type]
        elif origin is dict:
            item_cls = hint.__args__[1]
            kwargs[name] = {
                k: _build(item_cls, v, f"{name}.{k}") for k, v in _as_table(value, name).items()
            }
        else:
            kwargs[name] = _coerce(value, hint, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _as_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"[{where}] must be a table")
    return value


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Turn environment strings into the declared type; check file values."""
    target = getattr(hint, "__origin__", hint)
    if isinstance(value, str) and target is not str:
        try:
            if target is bool:
                return value.strip().lower() in {"1", "true", "yes", "on"}
            if target is list:
                return [v.strip() for v in value.split(",") if v.strip()]
            return target(value)
        except ValueError as exc:
            raise ConfigurationError(
                f"setting {where} = {value!r} is not a {target.__name__}"
            ) from exc
    if target is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, target):
        raise ConfigurationError(f"setting {where} must be a {target.__name__}")
    return value


def _merge_env(data: dict[str, Any], environ: dict[str, str]) -> None:
    for key, value in environ.items():
        if not key.startswith("SP_") or key.startswith("SP_TEST_"):
            continue
        parts = key[3:].lower().split("__")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read settings from ``path`` (TOML) and the ``SP_*`` variables of ``environ``."""
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"configuration file {p} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"configuration file {p}: {exc}") from exc
        base_dir = p.resolve().parent
    _merge_env(data, dict(os.environ if environ is None else environ))
    data.setdefault("base_dir", str(base_dir))
    settings: Settings = _build(Settings, data, "")
    return settings

"""The platform's one typed settings object.

Settings come from a TOML file, then ``SP_*`` environment variables on top (``SP_DATABASE__URL``
sets ``[database] url``; a double underscore descends one table). ``SP_CONFIG`` names the file
and ``SP_TEST_*`` belong to the test suite; neither is a setting. Keys and certificates are
given by path, never inline. The sandbox writes its own file (``DIR/platform.toml``).

An integration's own section (``[subscriptions]``, ``[oots]``) is declared by the integration
(``Integration.settings``, a :class:`~serviceplatform.integration.SettingsSection`) and
loaded here, found through the registry, into the integration's own type, with the same
checks; code reads it with ``settings.section(SECTION)``.

Nothing is guessed: an unknown key, a value of the wrong type (``max_retries = true``,
``enabled = "yes"`` in a file) or a variable that matches no setting is a problem
that names the key and the file or variable it came from, so a typo cannot silently leave a
default in force. :func:`read_settings` lists every problem (``config check``);
:func:`load_settings` refuses the first.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import Field, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Final, get_type_hints

from serviceplatform.errors import ConfigurationError
from serviceplatform.integration import ZERO_ALLOWED, SectionT, SettingsSection


@dataclass
class DatabaseSettings:
    url: str = "sqlite:///serviceplatform.sqlite"


@dataclass
class SecuritySettings:
    #: PEM files of the STS certificates whose signatures on tokens are trusted (``serve``
    #: refuses to start without).
    trusted_sts_certs: list[str] = field(default_factory=list)
    #: Accepted ``saml:Issuer`` values (``serve`` refuses to start without; empty accepts any
    #: issuer whose signature verifies, which only tests rely on).
    trusted_issuers: list[str] = field(default_factory=list)
    clock_skew_seconds: int = field(default=60, metadata=ZERO_ALLOWED)
    #: Longest accepted lifetime of a ``wsu:Timestamp`` (Created to Expires).
    max_timestamp_lifetime_seconds: int = 300
    #: How long a MessageID is remembered; at least the timestamp lifetime plus skew.
    replay_window_seconds: int = 900
    #: The message signature must cover the assertion (STR-Transform or a direct reference to
    #: its ID), so that the same holder's token for another authority cannot be swapped in.
    #: Off admits clients that sign only Body and headers (docs/security.md).
    require_token_binding: bool = True


@dataclass
class SoapSettings:
    max_body_bytes: int = 512 * 1024
    #: The public base URL callers use (``https://host``). ``?wsdl`` advertises it and a request
    #: whose signed ``wsa:To`` is not this base plus the service path is refused. ``serve``
    #: refuses to start without it; an application built without it (tests) checks ``wsa:To``
    #: against the address the request was sent to instead, so the check is never off.
    public_base_url: str = ""

    def public_url(self, path: str) -> str | None:
        """Where callers address the service at ``path``; None without a public base URL."""
        base = self.public_base_url
        return base.rstrip("/") + path if base else None


@dataclass
class RoutingSettings:
    #: Directory holding the routing tables (``*.csv``) and agreements (``agreements.toml``)
    #: that ``serviceplatform routing`` reads when given no path. Empty (the default): none,
    #: so an installation never picks up the sample tables; the sandbox sets its own.
    directory: str = ""
    #: Seconds between checks for a changed routing table.
    reload_interval_seconds: float = 2.0


@dataclass
class CertificateSettings:
    #: Directory of outward certificates: ``<alias>.crt`` and ``<alias>.key`` (PEM).
    directory: str = "certs"


@dataclass
class PeerSettings:
    #: Which transport serves the peer: a name of the peer kinds' alias table
    #: (``serviceplatform/outbound/kinds.py`` and the integrations' ``peer_kinds``).
    kind: str = "oiorest"
    base_url: str = ""
    #: PEM bundle the platform trusts for this peer's server certificate.
    ca_cert: str = ""
    connect_timeout_seconds: float = 0.25
    read_timeout_seconds: float = 0.5
    #: The whole call, retries included, must end within this budget (the SLA).
    budget_seconds: float = 1.0
    max_retries: int = field(default=2, metadata=ZERO_ALLOWED)
    backoff_seconds: float = field(default=0.05, metadata=ZERO_ALLOWED)
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
    #: Messages of a batch published ahead on the one connection before their confirms and
    #: replies are in (the pipeline's window).
    in_flight: int = 256


#: The relay's batch for each transport when ``[distributor] batch_size`` is not set.
FILE_BATCH_SIZE: Final = 500
AMQP_BATCH_SIZE: Final = 2000


@dataclass
class DistributorSettings:
    """Where the messages to the message distributor (Beskedfordeler) go."""

    #: ``file`` (one XML file per message in ``directory``; the embedded default) or ``amqp``.
    transport: str = "file"
    directory: str = "distributor"
    amqp: AmqpDistributorSettings = field(default_factory=AmqpDistributorSettings)
    #: Messages handed over per relay round (one transaction each). Not set (0 stands for
    #: that), the transport's own (``relay_batch_size``).
    batch_size: int = 0
    #: Days a delivered message is kept in the outbox; then the daily purge deletes it (its
    #: body carries personal data). 0: deleted by the next purge. Pending ones always stay.
    delivered_retention_days: int = field(default=14, metadata=ZERO_ALLOWED)

    def relay_batch_size(self) -> int:
        """``batch_size``, or the transport's own: 500 for the file drop, 2,000 for AMQP.

        On SQLite AMQP's pipeline empties at the end of each batch and waits for the batch's
        transaction before it fills again, so fewer, larger batches deliver faster (10,000
        messages: 8-10 s in batches of 500, 6-7 s in batches of 2,000; 5,000 measured no
        faster, and would hold the writer lock longer); on PostgreSQL the relay overlaps the
        batches (``Distributor.deliver_stream``). The file drop's batches are made durable
        together and are faster at 500.
        """
        if self.batch_size > 0:
            return self.batch_size
        return AMQP_BATCH_SIZE if self.transport == "amqp" else FILE_BATCH_SIZE


@dataclass
class SchedulerSettings:
    """The platform's scheduler of the integrations' daily jobs (``scheduling.py``)."""

    #: Whether ``serviceplatform serve`` runs the scheduler in this process. The older
    #: ``[subscriptions] scheduler_enabled = false`` (deprecated) still turns it off.
    enabled: bool = True


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
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    #: Outward peers by name (``nemsms``, later ``oots_gateway``, ...).
    peers: dict[str, PeerSettings] = field(default_factory=dict)
    #: Per-service settings by service key (``sf2250``, ...).
    services: dict[str, ServiceSettings] = field(default_factory=dict)
    #: Directory relative paths in the file are resolved against (the file's own directory).
    base_dir: str = "."
    #: The integrations' own sections (``[subscriptions]``, ``[oots]``, ...) by name, each
    #: loaded into the type its ``SettingsSection`` declares; read them with :meth:`section`.
    sections: dict[str, Any] = field(default_factory=dict, metadata={"setting": False})

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

    def section(self, spec: SettingsSection[SectionT]) -> SectionT:
        """An integration's own section; its defaults when it was not loaded or given."""
        value = self.sections.get(spec.name)
        if value is None:
            # Kept, so a change made to the defaults (by a test, the sandbox) stays.
            value = self.sections[spec.name] = spec.type()
        if not isinstance(value, spec.type):
            raise ConfigurationError(
                f"settings section [{spec.name}] holds {type(value).__name__}, "
                f"not {spec.type.__name__}"
            )
        return value


# --- reading ---------------------------------------------------------------------------------

#: The variable that names the configuration file; it is not itself a setting.
CONFIG_ENV = "SP_CONFIG"
#: Variables of the test suite (``SP_TEST_POSTGRES_URL``, ...); never settings.
_TEST_ENV_PREFIX = "SP_TEST_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}
_PLURALS = {str: "strings", int: "integers", float: "numbers"}

Key = tuple[str, ...]


@dataclass(frozen=True)
class LoadedSettings:
    """Settings read leniently: a value with a problem keeps its default and is listed."""

    settings: Settings
    #: One line per problem, naming the key and the file or variable that set it.
    problems: list[str]
    #: The file read, or None for the defaults and variables alone.
    file: Path | None


class _Origins:
    """Where each value came from, so a problem names the file or the variable to fix."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.variables: dict[Key, str] = {}

    def from_variable(self, key: Key) -> str | None:
        """The variable that set ``key`` or something below it, if any did."""
        for path, variable in self.variables.items():
            if path[: len(key)] == key:
                return variable
        return None

    def at(self, key: Key) -> str:
        variable = self.from_variable(key)
        if variable is not None:
            return f"from {variable}"
        return f"in {self.file}" if self.file is not None else "(no configuration file)"


def _dotted(key: Key) -> str:
    return ".".join(key)


def _type_name(target: Any) -> str:
    return _TYPE_NAMES.get(target, getattr(target, "__name__", str(target)))


def _build(
    cls: type[Any],
    data: Any,
    key: Key,
    origins: _Origins,
    problems: list[str],
    sections: dict[str, tuple[type[Any], dict[str, Any]]] | None = None,
) -> Any:
    """``cls`` from ``data``; a value with a problem is left out (its default stays).

    ``sections``: name -> (type, into) for tables loaded into ``into[name]`` instead of a
    field of ``cls`` (the integrations' sections at the top level).
    """
    if not isinstance(data, dict):
        problems.append(f"setting {_dotted(key)} {origins.at(key)} must be a table")
        return cls()
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.metadata.get("setting", True)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        here = (*key, name)
        if sections is not None and name in sections:
            section_type, into = sections[name]
            into[name] = _build(section_type, value, here, origins, problems)
            continue
        if name not in known:
            problems.append(f"unknown setting {_dotted(here)} {origins.at(here)}")
            continue
        hint = hints[name]
        if is_dataclass(hint):
            kwargs[name] = _build(hint, value, here, origins, problems)  # type: ignore[arg-type]
        elif getattr(hint, "__origin__", None) is dict:
            if not isinstance(value, dict):
                problems.append(f"setting {_dotted(here)} {origins.at(here)} must be a table")
                continue
            item_cls = hint.__args__[1]
            kwargs[name] = {
                str(k): _build(item_cls, v, (*here, str(k)), origins, problems)
                for k, v in value.items()
            }
        else:
            try:
                kwargs[name] = _in_range(
                    _coerce(value, hint, here, origins), known[name], here, origins
                )
            except ValueError as exc:
                problems.append(str(exc))
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: Key, origins: _Origins) -> Any:
    """A variable's text turned into the declared type; a file's value checked against it.

    Raises ValueError with the line to report.
    """
    target = getattr(hint, "__origin__", hint)
    variable = origins.from_variable(key)
    if variable is not None and isinstance(value, str):
        return _parse_variable(value, target, key, variable)
    # bool is an int to Python, but ``max_retries = true`` is a mistake, not 1.
    if target in (int, float) and isinstance(value, bool):
        ok = False
    elif target is float:
        ok = isinstance(value, int | float)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, target)
    found = _type_name(type(value))
    if ok and target is list:
        item = hint.__args__[0]
        wrong = [v for v in value if not isinstance(v, item) or isinstance(v, bool)]
        ok = not wrong
        found = f"holding {_type_name(type(wrong[0]))}" if wrong else found
    else:
        found = f"not {found}"
    if not ok:
        raise ValueError(
            f"setting {_dotted(key)} {origins.at(key)} must be {_describe(hint)}, {found}"
        )
    return value


def _in_range(value: Any, spec: Field[Any], key: Key, origins: _Origins) -> Any:
    """``value`` when it is no number, or a finite one above 0 (or 0, where ``ZERO_ALLOWED``).

    No count, size, timeout or interval of the platform means anything at 0 or below unless
    its field says so: ``read_timeout_seconds = 0`` would fail every call to the peer.
    Raises ValueError with the line to report.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    where = f"setting {_dotted(key)} {origins.at(key)}"
    if not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, not {value}")
    if spec.metadata.get("zero_allowed"):
        if value < 0:
            raise ValueError(f"{where} must be 0 or more, not {value}")
    elif value <= 0:
        raise ValueError(f"{where} must be more than 0, not {value}")
    return value


def _describe(hint: Any) -> str:
    if getattr(hint, "__origin__", None) is list:
        return f"a list of {_PLURALS.get(hint.__args__[0], 'values')}"
    return _type_name(hint)


def _parse_variable(value: str, target: Any, key: Key, variable: str) -> Any:
    text = value.strip()
    try:
        if target is str:
            return value
        if target is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if target is list:
            return [v.strip() for v in value.split(",") if v.strip()]
        return target(text)
    except ValueError:
        raise ValueError(
            f"setting {_dotted(key)} from {variable}: {value!r} is not {_type_name(target)}"
        ) from None


def _merge_env(
    data: dict[str, Any], environ: dict[str, str], origins: _Origins, problems: list[str]
) -> None:
    """Lay the ``SP_*`` variables over the file's values (``__`` descends one table)."""
    for variable, value in sorted(environ.items()):
        if (
            not variable.startswith("SP_")
            or variable == CONFIG_ENV
            or variable.startswith(_TEST_ENV_PREFIX)
        ):
            continue
        parts = tuple(variable[3:].lower().split("__"))
        if not all(parts):
            problems.append(f"{variable} names no setting (SP_<TABLE>__<KEY>)")
            continue
        node = data
        for depth in range(1, len(parts)):
            child = node.setdefault(parts[depth - 1], {})
            if not isinstance(child, dict):
                problems.append(
                    f"{variable}: setting {_dotted(parts[:depth])} is not a table "
                    f"{origins.at(parts[:depth])}"
                )
                break
            node = child
        else:
            node[parts[-1]] = value
            origins.variables[parts] = variable


def read_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> LoadedSettings:
    """Read ``path`` (TOML) and the ``SP_*`` variables of ``environ``, listing every problem.

    Raises ConfigurationError only when the file cannot be read or parsed at all.
    """
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    file = None if path is None else Path(path)
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise ConfigurationError(f"configuration file {file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"configuration file {file} cannot be read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"configuration file {file}: {exc}") from exc
        base_dir = file.resolve().parent
    origins = _Origins(file)
    problems: list[str] = []
    _merge_env(data, dict(os.environ if environ is None else environ), origins, problems)
    data.setdefault("base_dir", str(base_dir))
    specs = _sections()
    loaded: dict[str, Any] = {}
    sections = {spec.name: (spec.type, loaded) for spec in specs}
    settings: Settings = _build(Settings, data, (), origins, problems, sections)
    settings.sections = {
        spec.name: loaded[spec.name] if spec.name in loaded else spec.type() for spec in specs
    }
    for spec in specs:
        spec.adjust(settings.sections[spec.name], settings)
        problems.extend(spec.problems(settings.sections[spec.name]))
    return LoadedSettings(settings, problems, file)


def _sections() -> list[SettingsSection[Any]]:
    """The registered integrations' sections; ConfigurationError when one takes a core name."""
    from serviceplatform.registry import settings_sections

    specs = settings_sections()
    core = {f.name for f in fields(Settings)}
    names: set[str] = set()
    for spec in specs:
        if spec.name in core or spec.name in names:
            raise ConfigurationError(
                f"settings section [{spec.name}] is a core section or declared twice"
            )
        names.add(spec.name)
    return specs


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read settings from ``path`` (TOML) and the ``SP_*`` variables of ``environ``.

    Raises ConfigurationError naming the first problem (key, and file or variable).
    """
    loaded = read_settings(path, environ)
    if loaded.problems:
        raise ConfigurationError(summarize(loaded.problems))
    return loaded.settings


def summarize(problems: list[str]) -> str:
    """The first problem, and how many more there are: one line for an error message."""
    more = len(problems) - 1
    if more == 0:
        return problems[0]
    return f"{problems[0]} (and {more} more: `serviceplatform config check` lists them)"

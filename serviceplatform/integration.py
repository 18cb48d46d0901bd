"""What an integration declares to the core: services, roles, errors, settings, tables, peer kinds.

An integration (``integrations/sf2250``, ``integrations/oots``, ...) exposes one
``Integration`` value. The core wires each declared service into the WSGI application and the
routing validation, loads its settings section, finds its error classes, creates its tables
with its own migrations and scrapes its metrics; it never imports an integration by name
except through ``serviceplatform.registry``. Modules named by ``module:attribute`` text are
imported only when the core needs them, so declaring them costs nothing at start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

if TYPE_CHECKING:
    from serviceplatform.config import Settings
    from serviceplatform.outbound.certstore import CertificateStore
    from serviceplatform.platform import Platform

#: A WSGI application, typed loosely as the WSGI spec is.
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

SectionT = TypeVar("SectionT")


@dataclass(frozen=True)
class SoapService:
    """One SOAP endpoint of an integration."""

    #: The service key used by agreements, routing tables and audit (``sf2250``).
    key: str
    #: URL path the endpoint is served at (``/service/NemSMS/VedligeholdTilmelding/2``).
    path: str
    #: The hand-written contract served at ``?wsdl``.
    wsdl_path: Path
    #: Body element local name -> operation name, for audit of calls refused before dispatch.
    operations: Mapping[str, str]
    #: Builds the endpoint's inner WSGI application (spyne) around the platform services.
    build_app: Callable[[Platform], WsgiApp]
    #: Audience tokens must carry unless ``[services.<key>] entity_id`` overrides it.
    default_entity_id: str
    #: SOAP versions the endpoint accepts (11, 12).
    soap_versions: frozenset[int] = frozenset({12})


@dataclass(frozen=True)
class ScheduledJob:
    """A job the platform's scheduler runs once a day."""

    #: Stable id in the scheduler's persistent job store.
    id: str
    #: ``module:function`` called with no arguments (it reads ``scheduling.current_settings``).
    func: str
    #: Settings -> (``HH:MM`` local time, time zone name).
    when: Callable[[Settings], tuple[str, str]]


@dataclass(frozen=True)
class WsgiMount:
    """A WSGI application an integration serves beside its SOAP services (not SOAP itself)."""

    #: Settings -> the path prefix to mount it at; "" leaves it unmounted.
    prefix: Callable[[Settings], str]
    #: Builds it from the platform, once per process.
    build: Callable[[Platform], WsgiApp]


@dataclass(frozen=True)
class ErrorCodes:
    """An integration's error classes: the module defining them and the codes they may use."""

    #: The module whose ``ServicePlatformError`` subclasses are the integration's errors.
    module: str
    #: The code numbers they take (``range(700, 800)``: SP-700 to SP-799). Ranges of two
    #: integrations must not overlap, nor hold a code of the core (``errors.check_codes``).
    numbers: range


#: Field metadata of a numeric setting that may be 0 (a count of retries, a pause, a cache
#: lifetime): ``x: int = field(default=2, metadata=ZERO_ALLOWED)``. Every other number, in the
#: core's sections and the integrations' alike, must be above 0; every number must be finite.
ZERO_ALLOWED: Final[Mapping[str, bool]] = {"zero_allowed": True}


def _no_settings(_section: Any) -> list[tuple[str, str]]:
    return []


def _no_adjustment(_section: Any, _settings: Settings) -> None:
    return None


def _no_problems(_section: Any) -> list[str]:
    return []


def _no_file_problems(
    _section: Any, _path: Callable[[str], Path], _certificates: CertificateStore
) -> list[str]:
    return []


@dataclass(frozen=True)
class SettingsSection(Generic[SectionT]):
    """An integration's own table of the settings file, loaded into its own dataclass.

    The core loader reads ``[name]`` (and ``SP_<NAME>__...`` variables) into ``type`` with
    the same checks as its own sections: unknown keys and wrong types are problems naming the
    key. Code reads it with ``settings.section(SECTION)``.
    """

    #: The TOML table (``subscriptions`` for ``[subscriptions]``); not a core section's name.
    name: str
    #: A dataclass whose fields all have defaults (nested dataclasses and
    #: ``dict[str, dataclass]`` tables as in the core's sections).
    type: type[SectionT]
    #: The section's private key and password files as (setting, path) pairs, for the
    #: permission check of ``config check`` and ``serve``.
    secret_files: Callable[[SectionT], Iterable[tuple[str, str]]] = _no_settings
    #: The URLs the section sets as (setting, URL) pairs: ``config check`` and ``serve``
    #: refuse one that is not an absolute http(s) URL with a host, as a peer's ``base_url``.
    #: An optional URL left empty is left out; a required one is given even when empty.
    urls: Callable[[SectionT], Iterable[tuple[str, str]]] = _no_settings
    #: The PEM certificate files the section names (CA bundles, partners' certificates) as
    #: (setting, path) pairs: ``config check`` and ``serve`` refuse one that is missing,
    #: unreadable or holds no PEM certificate, as a peer's ``ca_cert``. Left out when empty
    #: and optional.
    certificate_files: Callable[[SectionT], Iterable[tuple[str, str]]] = _no_settings
    #: What only reading the files the section names tells: a password file that cannot be
    #: read, a certificate store alias whose pair could not be used. Called with the section,
    #: ``Settings.path`` (resolves a configured file name) and the platform's certificate
    #: store; returns one line per problem, starting with the setting, for ``config check``
    #: and ``serve``. It only reads, with the rule the integration's own code reads them by.
    file_problems: Callable[[SectionT, Callable[[str], Path], CertificateStore], Iterable[str]] = (
        _no_file_problems
    )
    #: Called once the whole file is loaded: lets a deprecated key of the section still set
    #: what a core section now holds (``[subscriptions] scheduler_enabled``).
    adjust: Callable[[SectionT, Settings], None] = _no_adjustment
    #: Problems of values the types cannot express (one of a few names), each a line naming
    #: the setting; reported like the loader's own (``config check``, ``serve``).
    problems: Callable[[SectionT], Iterable[str]] = _no_problems


@dataclass(frozen=True)
class MetricSource:
    """Gauges an integration adds to each ``/metrics`` scrape, read from the database."""

    #: The ``source`` label of ``serviceplatform_metrics_source_errors_total`` when it fails.
    name: str
    #: ``module:function`` taking the platform's ``Database``, returning Prometheus metric
    #: families. Imported at the first scrape, so ``prometheus_client`` is not imported
    #: before ``serve`` chose its multiprocess mode.
    read: str


@dataclass(frozen=True)
class Integration:
    name: str
    #: Service key -> the SysID roles a routing table may give for it.
    roles: Mapping[str, frozenset[str]]
    services: tuple[SoapService, ...] = field(default_factory=tuple)
    #: Service key -> the roles an agreement needs SysIDs for before it is "configured".
    required_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Service keys whose calls go out with the agreement's client certificate
    #: (``register_cert_alias``): their agreements route only once they name one.
    outward_certificate: frozenset[str] = frozenset()
    #: ``module:attribute`` of click commands added to the ``serviceplatform`` command line.
    commands: tuple[str, ...] = ()
    #: Settings -> {peer name: URL} of every peer the integration calls with these settings
    #: (Domibus, the common services...); ``/readyz`` probes each. None: it calls none.
    peers: Callable[[Settings], Mapping[str, str]] | None = None
    #: ``module:attribute`` of callables Platform -> ``messagelog.model.MessageSource``: the
    #: integration's outward messages in the message log (the core lists the calls itself).
    message_sources: tuple[str, ...] = ()
    #: The ``service`` of audit records it writes besides its SOAP services' keys (the
    #: message log's service filter accepts exactly the services that can be there).
    audit_services: frozenset[str] = frozenset()
    jobs: tuple[ScheduledJob, ...] = ()
    mounts: tuple[WsgiMount, ...] = ()
    #: Its error classes and their code range (None: it raises only the core's errors).
    errors: ErrorCodes | None = None
    #: Its own settings table (None: it has no settings of its own).
    settings: SettingsSection[Any] | None = None
    #: The module defining its tables on the core's ``MetaData``
    #: (``serviceplatform.store.models.Base``); imported before migrating or comparing.
    tables: str = ""
    #: The directory of its Alembic migration scripts (an Alembic version location). A new
    #: integration starts its own branch: ``branch_labels = ("<name>",)`` and
    #: ``depends_on`` a core revision, with a revision id unique across the tree.
    migrations: Path | None = None
    #: Its gauges for ``/metrics``.
    metrics: tuple[MetricSource, ...] = ()
    #: Named parts a core feature shows when the integration is there (the admin API's
    #: nightly runs: ``list_snapshots``), as ``module:attribute``.
    parts: Mapping[str, str] = field(default_factory=dict)
    #: Peer kinds the integration adds to the core's (``outbound/kinds.py``): kind ->
    #: ``module:factory``; a ``[peers.<name>]`` section chooses one with ``kind``.
    peer_kinds: Mapping[str, str] = field(default_factory=dict)

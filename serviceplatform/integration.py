"""What an integration declares to the core: its SOAP services and the SysID roles it uses.

An integration (``integrations/sf2250``, ``integrations/oots``, ...) exposes one
``Integration`` value. The core wires each declared service into the WSGI application and the
routing validation; it never imports an integration by name except through
``serviceplatform.registry``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serviceplatform.config import Settings
    from serviceplatform.platform import Platform

#: A WSGI application, typed loosely as the WSGI spec is.
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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
    jobs: tuple[ScheduledJob, ...] = ()
    mounts: tuple[WsgiMount, ...] = ()

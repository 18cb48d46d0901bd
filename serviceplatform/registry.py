"""The one table that names the integrations; everything else finds them through it.

It also names the sandbox's commands (``TOOL_COMMANDS``) and token source (``TOKEN_SOURCES``),
so that the core CLI offers ``serviceplatform sandbox`` and ``token``, and a sandbox distributor
mints its tokens, without importing the sandbox itself.

Entries are imported lazily, so a broken or missing integration fails with a clear message
naming it instead of breaking the import of the core.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from serviceplatform.errors import ConfigurationError
from serviceplatform.integration import (
    ErrorCodes,
    Integration,
    MetricSource,
    ScheduledJob,
    SettingsSection,
    SoapService,
    WsgiMount,
)
from serviceplatform.outbound.kinds import CORE_PEER_KINDS, PeerFactory
from serviceplatform.routing.needs import ServiceNeeds

if TYPE_CHECKING:
    from serviceplatform.config import Settings
    from serviceplatform.messagelog.model import MessageSource
    from serviceplatform.platform import Platform

#: Integration name -> ``module:attribute`` of its ``Integration`` value.
INTEGRATIONS: dict[str, str] = {
    "sf2250": "integrations.sf2250.integration:INTEGRATION",
    "oots": "integrations.oots:INTEGRATION",
}


#: ``module:attribute`` of the click commands that are not an integration's: the sandbox's.
TOOL_COMMANDS: tuple[str, ...] = (
    "serviceplatform.sandbox.commands:sandbox",
    "serviceplatform.sandbox.commands:token",
)

#: ``[distributor.amqp] token_source`` -> ``module:callable`` building the source from Settings.
TOKEN_SOURCES: dict[str, str] = {
    "file": "serviceplatform.distribution.tokens:FileTokenSource.from_settings",
    "sandbox-sts": "serviceplatform.sandbox.sts_tokens:SandboxStsTokenSource.from_settings",
}


def _load(name: str) -> Integration:
    target = INTEGRATIONS[name]
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        value = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"integration {name!r} ({target}) cannot be loaded: {exc}"
        ) from exc
    if not isinstance(value, Integration):
        raise ConfigurationError(f"integration {name!r} ({target}) is not an Integration")
    return value


@cache
def integrations() -> tuple[Integration, ...]:
    """Every registered integration, in table order."""
    return tuple(_load(name) for name in INTEGRATIONS)


def soap_services() -> list[SoapService]:
    return [service for integration in integrations() for service in integration.services]


def wsgi_mounts() -> list[WsgiMount]:
    return [mount for integration in integrations() for mount in integration.mounts]


def scheduled_jobs() -> list[ScheduledJob]:
    """The core's daily jobs (the outbox purge), then every integration's."""
    from serviceplatform.outbox_purge import PURGE_JOB

    return [PURGE_JOB, *(job for integration in integrations() for job in integration.jobs)]


def command_objects() -> list[Any]:
    """The click commands the sandbox and the integrations add to the command line."""
    found: list[Any] = [load_attribute(target, "sandbox command") for target in TOOL_COMMANDS]
    for integration in integrations():
        for target in integration.commands:
            found.append(load_attribute(target, f"command of integration {integration.name!r}"))
    return found


def integration_peers(settings: Settings) -> dict[str, str]:
    """Peer name -> URL of every peer the integrations call with ``settings``."""
    found: dict[str, str] = {}
    for integration in integrations():
        if integration.peers is not None:
            found.update(integration.peers(settings))
    return found


def message_sources(platform: Platform) -> list[MessageSource]:
    """The integrations' sources of the message log, built for ``platform``."""
    return [
        load_attribute(target, f"message source of integration {integration.name!r}")(platform)
        for integration in integrations()
        for target in integration.message_sources
    ]


def load_attribute(target: str, what: str) -> Any:
    """The attribute ``module:attribute`` (``attribute`` may be dotted, ``Class.method``).

    ConfigurationError naming ``what`` if it is missing.
    """
    module_name, _, attribute = target.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
        return value
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{what} ({target}) cannot be loaded: {exc}") from exc


def peer_kinds() -> dict[str, str]:
    """Every peer kind -> ``module:factory``: the core's, then each integration's."""
    found = dict(CORE_PEER_KINDS)
    for integration in integrations():
        for kind, target in integration.peer_kinds.items():
            if kind in found:
                raise ConfigurationError(
                    f"peer kind {kind!r} of integration {integration.name!r} is already taken"
                )
            found[kind] = target
    return found


def unknown_peer_kind(kind: str) -> str | None:
    """Why ``kind`` cannot be a peer's kind, or None when it is known."""
    known = peer_kinds()
    if kind in known:
        return None
    return f"unknown peer kind {kind!r} (known: {', '.join(sorted(known))})"


def peer_factory(kind: str) -> PeerFactory:
    """The factory of peer kind ``kind``; ConfigurationError for an unknown kind."""
    problem = unknown_peer_kind(kind)
    if problem is not None:
        raise ConfigurationError(problem)
    factory: PeerFactory = load_attribute(peer_kinds()[kind], f"peer kind {kind!r}")
    return factory


#: The service needs computed for one tuple of integrations (``integrations()`` is cached;
#: a test that registers another integration clears it, and so gets new needs).
_needs: tuple[tuple[Integration, ...], Mapping[str, ServiceNeeds]] | None = None


def service_needs() -> Mapping[str, ServiceNeeds]:
    """Service key -> what its agreements need before they route (roles, certificate)."""
    global _needs
    current = integrations()
    if _needs is not None and _needs[0] is current:
        return _needs[1]
    found: dict[str, ServiceNeeds] = {}
    for integration in integrations():
        for key, roles in integration.roles.items():
            found[key] = ServiceNeeds(
                roles=roles,
                required_roles=integration.required_roles.get(key, frozenset()),
                certificate=key in integration.outward_certificate,
            )
    _needs = (current, found)
    return found


def known_services() -> dict[str, frozenset[str]]:
    """Service key -> SysID roles, over all integrations (used to validate routing tables)."""
    merged: dict[str, frozenset[str]] = {}
    for integration in integrations():
        for key, roles in integration.roles.items():
            merged[key] = merged.get(key, frozenset()) | roles
    return merged


def message_log_services() -> frozenset[str]:
    """Every ``service`` an audit record, and so the message log, can name: the SOAP
    services, the routing keys, the integrations' own audit services, and ``admin``."""
    names = {"admin"}
    for integration in integrations():
        names.update(service.key for service in integration.services)
        names.update(integration.roles)
        names.update(integration.audit_services)
    return frozenset(names)


def error_codes() -> dict[str, ErrorCodes]:
    """Integration name -> its error module and code range, for those that declare errors."""
    return {i.name: i.errors for i in integrations() if i.errors is not None}


def import_error_modules() -> None:
    """Import every integration's error module, so its classes join the core's tree."""
    for name, codes in error_codes().items():
        load_attribute(f"{codes.module}:__name__", f"errors of integration {name!r}")


def settings_sections() -> list[SettingsSection[Any]]:
    """The integrations' own settings sections, in table order."""
    return [i.settings for i in integrations() if i.settings is not None]


def import_tables() -> None:
    """Import every integration's tables onto the core's MetaData (before migrating)."""
    for integration in integrations():
        if integration.tables:
            load_attribute(
                f"{integration.tables}:__name__", f"tables of integration {integration.name!r}"
            )


def migration_locations() -> list[str]:
    """The integrations' Alembic version locations (directories of migration scripts)."""
    return [str(i.migrations) for i in integrations() if i.migrations is not None]


def metric_sources() -> list[MetricSource]:
    return [source for integration in integrations() for source in integration.metrics]


def part(name: str) -> Any:
    """The part ``name`` an integration declares (``Integration.parts``)."""
    for integration in integrations():
        if name in integration.parts:
            return load_attribute(
                integration.parts[name], f"part {name!r} of integration {integration.name!r}"
            )
    raise ConfigurationError(f"no registered integration provides {name!r}")

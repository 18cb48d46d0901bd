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
from serviceplatform.integration import Integration, ScheduledJob, SoapService, WsgiMount
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
    return [job for integration in integrations() for job in integration.jobs]


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


@cache
def service_needs() -> Mapping[str, ServiceNeeds]:
    """Service key -> what its agreements need before they route (roles, certificate)."""
    found: dict[str, ServiceNeeds] = {}
    for integration in integrations():
        for key, roles in integration.roles.items():
            found[key] = ServiceNeeds(
                roles=roles,
                required_roles=integration.required_roles.get(key, frozenset()),
                certificate=key in integration.outward_certificate,
            )
    return found


def known_services() -> dict[str, frozenset[str]]:
    """Service key -> SysID roles, over all integrations (used to validate routing tables)."""
    merged: dict[str, frozenset[str]] = {}
    for integration in integrations():
        for key, roles in integration.roles.items():
            merged[key] = merged.get(key, frozenset()) | roles
    return merged

"""What an agreement of one service needs before it routes calls. Pure.

One rule for the router (``resolve``) and for every view that says whether an agreement is
"configured" or "routable" (admin API, page, CLI), so the two can never disagree: an OOTS
agreement needs its requester SysID and no outward certificate; an SF2250 agreement needs
its register SysID and the client certificate its register calls are made with.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceNeeds:
    """What one service's agreements are configured with, from its ``Integration``."""

    #: The SysID roles the service may have.
    roles: frozenset[str] = frozenset()
    #: The roles an agreement needs a SysID for before it is configured.
    required_roles: frozenset[str] = frozenset()
    #: Whether its calls go out with the agreement's client certificate (``register_cert_alias``).
    certificate: bool = False


@dataclass(frozen=True)
class Unmet:
    """What an agreement lacks; empty when it has everything."""

    #: Required roles without a SysID, sorted.
    roles: tuple[str, ...] = ()
    #: True when the service calls out with a certificate and the agreement names none.
    certificate: bool = False

    def __bool__(self) -> bool:
        return bool(self.roles) or self.certificate

    def describe(self) -> list[str]:
        """For people: ``["SysID for role register", "outward certificate"]``."""
        found = [f"SysID for role {role}" for role in self.roles]
        if self.certificate:
            found.append("outward certificate")
        return found


def unmet_needs(
    *,
    required_roles: Collection[str],
    certificate: bool,
    sysids: Mapping[str, str],
    cert_alias: str | None,
) -> Unmet:
    """What is missing for a call (or an agreement) that needs ``required_roles`` and,
    when ``certificate``, an outward certificate."""
    return Unmet(
        roles=tuple(sorted(role for role in required_roles if not sysids.get(role))),
        certificate=certificate and not cert_alias,
    )

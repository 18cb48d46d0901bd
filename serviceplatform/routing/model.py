"""The data of agreements and routing: plain frozen values, no I/O.

A *route row* says which SystemId (SysID) an authority uses for one role of one service
(``register``, ``nemsms``, ``digital_post``, ``afsender`` for SF2250). A row may be narrowed
to one subject (a CPR or CVR number), which wins over the authority-wide row: this is how test
citizens of an authority are sent to a register's test SysID.

An *agreement* (serviceaftale) lets one consumer system call one service on behalf of one
authority; only an approved agreement inside its validity routes calls.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date


class AgreementStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


@dataclass(frozen=True)
class RouteRow:
    authority_cvr: str
    service: str
    role: str
    sysid: str
    #: A CPR or CVR number the row is limited to; None for the authority-wide row.
    subject: str | None = None
    #: ``file:line`` the row was read from, for error messages and listings.
    source: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.authority_cvr, self.service, self.role, self.subject or "")


@dataclass(frozen=True)
class ConsumerSystem:
    uuid: str
    name: str
    #: RFC 4514 subject of the system's certificate (the token's holder-of-key certificate).
    cert_subject: str


@dataclass(frozen=True)
class Agreement:
    uuid: str
    authority_cvr: str
    service: str
    consumer_system: str
    supplier: str
    status: AgreementStatus
    #: Alias in the certificate store of the client certificate used towards the register.
    register_cert_alias: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None

    def active_on(self, day: date) -> bool:
        if self.status is not AgreementStatus.APPROVED:
            return False
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to


@dataclass(frozen=True)
class Route:
    """Where one call goes: the agreement that allows it and the SysIDs it uses."""

    agreement: Agreement
    sysids: dict[str, str] = field(default_factory=dict)

    @property
    def cert_alias(self) -> str | None:
        return self.agreement.register_cert_alias

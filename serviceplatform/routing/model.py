"""The data of agreements and routing: plain frozen values, no I/O.

A *route row* says which SystemId (SysID) an authority uses for one role of one service
(``register``, ``nemsms``, ``digital_post``, ``afsender`` for SF2250). A row may be narrowed
to one subject (a CPR or CVR number), which wins over the authority-wide row: this is how test
citizens of an authority are sent to a register's test SysID.

An *agreement* (serviceaftale) lets one consumer system call one service on behalf of one
authority; only an approved agreement inside its validity routes calls.

A *consumer system* (anvendersystem) is known by the SHA-256 fingerprints of its certificates,
never by a subject string: a certificate with the same subject from another CA is another
certificate. During a rotation two certificates are accepted, the old one until its
``accepted_until``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


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
    #: The CVR number of the supplier (leverandør) that runs the system.
    supplier_cvr: str
    #: When the system was deactivated; None while it is active.
    deactivated_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.deactivated_at is None


@dataclass(frozen=True)
class SystemCertificate:
    """One certificate a consumer system calls with (the token's holder-of-key certificate)."""

    consumer_system: str
    #: SHA-256 of the DER certificate, lower-case hex: what a call is matched by.
    fingerprint: str
    #: RFC 4514 subject and issuer, for people; never used to match a call.
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    #: The window in which calls with this certificate are accepted (a rotation's overlap).
    accepted_from: datetime
    accepted_until: datetime | None = None

    def accepted_at(self, moment: datetime) -> bool:
        if moment < self.accepted_from:
            return False
        return self.accepted_until is None or moment < self.accepted_until

    @property
    def window(self) -> str:
        """The acceptance window for people: ``2026-12-06 13:20Z .. 2026-12-20 13:20Z``."""
        until = f"{self.accepted_until:%Y-%m-%d %H:%M}Z" if self.accepted_until else "-"
        return f"{self.accepted_from:%Y-%m-%d %H:%M}Z .. {until}"


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

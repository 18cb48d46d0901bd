"""Consumer systems (anvendersystemer) as administrators onboard them: register, rotate, deactivate.

A system is a case system that calls the platform: a name, the CVR of the supplier that runs
it, and the certificates it calls with. Calls are matched by the SHA-256 fingerprint of the
token's holder-of-key certificate, never by its subject, so a certificate with the same
subject from another CA is refused (SP-216). A rotation registers the new certificate and
keeps the old one accepted for an overlap, after which calls with it get SP-219. A
deactivated system's calls get SP-218 until it is activated again.

Every change is one transaction that also appends an event (who, when, why, what) to
``system_events``; the routing-version triggers make it take effect on the next call
in every process. Callers (CLI, admin API) add the audit record.
"""

from __future__ import annotations

import json
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, insert, select, update

from serviceplatform.errors import (
    CertificateAlreadyRegistered,
    CertificateInvalid,
    ConsumerSystemNotFound,
    InvalidAdminRequest,
)
from serviceplatform.routing.identifiers import is_valid_cvr
from serviceplatform.routing.model import ConsumerSystem, SystemCertificate
from serviceplatform.store.db import Database
from serviceplatform.store.models import (
    CERT_SUBJECT_LEN,
    NAME_LEN,
    consumer_systems,
    system_certificates,
    system_events,
)
from serviceplatform.store.repository import certificate_from_row, consumer_system_from_row

#: How long a rotated-out certificate stays accepted when no overlap is given.
DEFAULT_OVERLAP = timedelta(days=14)
_MAX_PEM = 64 * 1024


@dataclass(frozen=True)
class SystemEvent:
    at: datetime
    actor: str
    action: str
    reason: str | None
    details: dict[str, Any] | None


@dataclass(frozen=True)
class SystemView:
    """A consumer system with its certificates, newest first."""

    system: ConsumerSystem
    certificates: tuple[SystemCertificate, ...]
    created_at: datetime

    def accepted_now(self, now: datetime) -> tuple[SystemCertificate, ...]:
        return tuple(c for c in self.certificates if c.accepted_at(now))


@dataclass(frozen=True)
class ParsedCertificate:
    """A certificate given as PEM, checked and described for registration."""

    fingerprint: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    pem: str


def parse_certificate(pem: bytes | str, *, now: datetime) -> ParsedCertificate:
    """Exactly one PEM X.509 certificate, valid at ``now``; CertificateInvalid otherwise."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    if len(data) > _MAX_PEM:
        raise CertificateInvalid(f"the PEM text is over {_MAX_PEM} bytes")
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateInvalid("the text is not a PEM X.509 certificate") from None
    if len(found) != 1:
        raise CertificateInvalid(f"give exactly one certificate, not {len(found)}")
    cert = found[0]
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not_after <= now:
        raise CertificateInvalid(f"the certificate expired on {not_after:%Y-%m-%d}")
    return ParsedCertificate(
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=not_before,
        not_after=not_after,
        pem=cert.public_bytes(Encoding.PEM).decode("ascii"),
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > NAME_LEN:
        raise InvalidAdminRequest(f"name must be 1-{NAME_LEN} characters")
    return cleaned


def check_supplier_cvr(cvr: str) -> str:
    cleaned = cvr.strip()
    if not is_valid_cvr(cleaned):
        raise InvalidAdminRequest(f"supplier_cvr {cvr!r} is not a valid CVR number")
    return cleaned


class SystemStore:
    """Reads and changes the consumer systems of one database."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._db = db
        self._clock = clock

    # --- reading ------------------------------------------------------------------------

    def get(self, system_uuid: str) -> SystemView:
        with self._db.transaction() as connection:
            return self._view(connection, system_uuid)

    def find(self, *, supplier_cvr: str | None = None) -> list[SystemView]:
        query = select(consumer_systems.c.uuid).order_by(
            consumer_systems.c.name, consumer_systems.c.uuid
        )
        if supplier_cvr:
            query = query.where(consumer_systems.c.supplier_cvr == supplier_cvr)
        with self._db.transaction() as connection:
            found = connection.execute(query).scalars().all()
            return [self._view(connection, system_uuid) for system_uuid in found]

    def by_fingerprint(self, fingerprint: str) -> SystemView | None:
        with self._db.transaction() as connection:
            system_uuid = certificate_owner(connection, fingerprint.lower())
            return None if system_uuid is None else self._view(connection, system_uuid)

    def history(self, system_uuid: str) -> list[SystemEvent]:
        query = (
            select(system_events)
            .where(system_events.c.consumer_system == system_uuid)
            .order_by(system_events.c.id)
        )
        with self._db.transaction() as connection:
            self._row(connection, system_uuid)
            return [
                SystemEvent(
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    reason=row.reason,
                    details=json.loads(row.details) if row.details else None,
                )
                for row in connection.execute(query)
            ]

    # --- changing -----------------------------------------------------------------------

    def register(
        self,
        *,
        name: str,
        supplier_cvr: str,
        certificate_pem: bytes | str,
        actor: str,
        reason: str | None = None,
        system_uuid: str | None = None,
    ) -> SystemView:
        """A new consumer system with its first certificate, accepted from now."""
        now = self._clock()
        values = {"name": check_name(name), "supplier_cvr": check_supplier_cvr(supplier_cvr)}
        parsed = parse_certificate(certificate_pem, now=now)
        new_uuid = _uuid(system_uuid) if system_uuid else str(uuid_module.uuid4())
        with self._db.transaction(write_first=True) as connection:
            if self._exists(connection, new_uuid):
                raise InvalidAdminRequest(f"consumer system {new_uuid} exists already")
            connection.execute(
                insert(consumer_systems).values(
                    uuid=new_uuid, created_at=now, deactivated_at=None, **values
                )
            )
            insert_certificate(connection, new_uuid, parsed, now)
            append_system_event(
                connection,
                new_uuid,
                now,
                actor,
                "register",
                reason,
                {**values, "certificate": describe_certificate(parsed)},
            )
            return self._view(connection, new_uuid)

    def add_certificate(
        self,
        system_uuid: str,
        certificate_pem: bytes | str,
        *,
        actor: str,
        overlap: timedelta | None = None,
        reason: str | None = None,
    ) -> SystemView:
        """Register another certificate of a system, accepted from now.

        With ``overlap`` this is a rotation: every other certificate of the system that is
        accepted now stays accepted for ``overlap`` more, then no longer. Without it the
        others are left as they are (a second certificate beside the first).
        """
        now = self._clock()
        if overlap is not None and overlap < timedelta(0):
            raise InvalidAdminRequest("the overlap must not be negative")
        parsed = parse_certificate(certificate_pem, now=now)
        with self._db.transaction(write_first=True) as connection:
            self._row(connection, system_uuid, for_update=True)
            retired: list[str] = []
            if overlap is not None:
                until = now + overlap
                for certificate in self._certificates(connection, system_uuid):
                    if certificate.accepted_at(now) and (
                        certificate.accepted_until is None or certificate.accepted_until > until
                    ):
                        connection.execute(
                            update(system_certificates)
                            .where(system_certificates.c.fingerprint == certificate.fingerprint)
                            .values(accepted_until=until)
                        )
                        retired.append(certificate.fingerprint)
            insert_certificate(connection, system_uuid, parsed, now)
            details: dict[str, Any] = {"certificate": describe_certificate(parsed)}
            if overlap is not None:
                details["retired"] = retired
                details["accepted_until"] = (now + overlap).isoformat()
            action = "rotate" if overlap is not None else "add-certificate"
            append_system_event(connection, system_uuid, now, actor, action, reason, details)
            return self._view(connection, system_uuid)

    def set_active(
        self, system_uuid: str, active: bool, *, actor: str, reason: str | None = None
    ) -> SystemView:
        """Deactivate (calls refused with SP-218) or activate a system again."""
        now = self._clock()
        if not active and not (reason or "").strip():
            raise InvalidAdminRequest("a reason is required to deactivate a consumer system")
        with self._db.transaction(write_first=True) as connection:
            row = self._row(connection, system_uuid, for_update=True)
            if (row.deactivated_at is None) == active:
                state = "active" if active else "deactivated"
                raise InvalidAdminRequest(f"consumer system {system_uuid} is {state} already")
            connection.execute(
                update(consumer_systems)
                .where(consumer_systems.c.uuid == system_uuid)
                .values(deactivated_at=None if active else now)
            )
            action = "activate" if active else "deactivate"
            append_system_event(connection, system_uuid, now, actor, action, reason, None)
            return self._view(connection, system_uuid)

    # --- helpers ------------------------------------------------------------------------

    def _exists(self, connection: Connection, system_uuid: str) -> bool:
        query = select(consumer_systems.c.uuid).where(consumer_systems.c.uuid == system_uuid)
        return connection.execute(query).first() is not None

    def _row(self, connection: Connection, system_uuid: str, for_update: bool = False) -> Any:
        query = select(consumer_systems).where(consumer_systems.c.uuid == system_uuid)
        row = connection.execute(query.with_for_update() if for_update else query).first()
        if row is None:
            raise ConsumerSystemNotFound(system_uuid)
        return row

    def _certificates(self, connection: Connection, system_uuid: str) -> list[SystemCertificate]:
        query = (
            select(system_certificates)
            .where(system_certificates.c.consumer_system == system_uuid)
            .order_by(system_certificates.c.accepted_from.desc(), system_certificates.c.fingerprint)
        )
        return [certificate_from_row(r) for r in connection.execute(query).mappings()]

    def _view(self, connection: Connection, system_uuid: str) -> SystemView:
        row = self._row(connection, system_uuid)
        return SystemView(
            system=consumer_system_from_row(row._mapping),
            certificates=tuple(self._certificates(connection, system_uuid)),
            created_at=row.created_at,
        )


def _uuid(value: str) -> str:
    try:
        return str(uuid_module.UUID(value.strip()))
    except ValueError:
        raise InvalidAdminRequest(f"{value!r} is not a UUID") from None


def describe_certificate(parsed: ParsedCertificate) -> dict[str, str]:
    return {
        "fingerprint": parsed.fingerprint,
        "subject": parsed.subject,
        "issuer": parsed.issuer,
        "not_after": parsed.not_after.isoformat(),
    }


def certificate_owner(connection: Connection, fingerprint: str) -> str | None:
    """The UUID of the system the certificate with ``fingerprint`` is registered for."""
    query = select(system_certificates.c.consumer_system).where(
        system_certificates.c.fingerprint == fingerprint
    )
    owner: str | None = connection.execute(query).scalar()
    return owner


def insert_certificate(
    connection: Connection, system_uuid: str, parsed: ParsedCertificate, now: datetime
) -> None:
    """Register ``parsed`` for the system, accepted from ``now``; refused if it is taken."""
    owner = certificate_owner(connection, parsed.fingerprint)
    if owner is not None:
        raise CertificateAlreadyRegistered(
            f"{parsed.fingerprint} belongs to consumer system {owner}"
        )
    connection.execute(
        insert(system_certificates).values(
            fingerprint=parsed.fingerprint,
            consumer_system=system_uuid,
            subject=parsed.subject[:CERT_SUBJECT_LEN],
            issuer=parsed.issuer[:CERT_SUBJECT_LEN],
            not_before=parsed.not_before,
            not_after=parsed.not_after,
            accepted_from=now,
            accepted_until=None,
            pem=parsed.pem,
            added_at=now,
        )
    )


def append_system_event(
    connection: Connection,
    system_uuid: str,
    at: datetime,
    actor: str,
    action: str,
    reason: str | None,
    details: dict[str, Any] | None,
) -> None:
    connection.execute(
        insert(system_events).values(
            consumer_system=system_uuid,
            at=at,
            actor=actor[:NAME_LEN],
            action=action,
            reason=(reason or "").strip() or None,
            details=json.dumps(details, sort_keys=True) if details else None,
        )
    )

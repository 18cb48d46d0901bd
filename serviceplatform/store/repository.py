"""Routes, consumer systems and agreements in the database.

SOAP calls are routed from an in-memory copy of these tables (``store/routing_cache.py``),
which every call checks against the database's routing version, so a change made by
``serviceplatform routing import`` (or an agreement approval) still takes effect on the next
call in every process. ``routing_data`` reads that copy; ``call_facts`` is the same lookup
straight from the database (one transaction, three indexed SELECTs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Executable, RowMapping, bindparam, delete, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from serviceplatform.errors import StorageError
from serviceplatform.routing.model import (
    Agreement,
    AgreementStatus,
    ConsumerSystem,
    RouteRow,
    SystemCertificate,
)
from serviceplatform.store.db import Database
from serviceplatform.store.models import (
    agreements,
    consumer_systems,
    routes,
    routing_version,
    system_certificates,
)


@dataclass(frozen=True)
class RouteChange:
    """What ``replace_routes`` did, by route key (authority, service, role, subject)."""

    added: int
    removed: int
    changed: int
    unchanged: int
    added_rows: tuple[RouteRow, ...] = ()
    removed_rows: tuple[RouteRow, ...] = ()
    #: (old, new) pairs whose SysID differs.
    changed_rows: tuple[tuple[RouteRow, RouteRow], ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def _route_row(row: RowMapping) -> RouteRow:
    return RouteRow(
        authority_cvr=row["authority_cvr"],
        service=row["service"],
        role=row["role"],
        sysid=row["sysid"],
        subject=row["subject"] or None,
        source=row["source"],
    )


def consumer_system_from_row(row: RowMapping) -> ConsumerSystem:
    return ConsumerSystem(
        uuid=row["uuid"],
        name=row["name"],
        supplier_cvr=row["supplier_cvr"],
        deactivated_at=row["deactivated_at"],
    )


def certificate_from_row(row: RowMapping) -> SystemCertificate:
    return SystemCertificate(
        consumer_system=row["consumer_system"],
        fingerprint=row["fingerprint"],
        subject=row["subject"],
        issuer=row["issuer"],
        not_before=row["not_before"],
        not_after=row["not_after"],
        accepted_from=row["accepted_from"],
        accepted_until=row["accepted_until"],
    )


def _agreement(row: RowMapping) -> Agreement:
    return Agreement(
        uuid=row["uuid"],
        authority_cvr=row["authority_cvr"],
        service=row["service"],
        consumer_system=row["consumer_system"],
        supplier=row["supplier"],
        status=AgreementStatus(row["status"]),
        register_cert_alias=row["register_cert_alias"],
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
    )


def agreement_values(a: Agreement) -> dict[str, Any]:
    """The ``agreements`` columns an agreement sets, but for its uuid and timestamps."""
    return {
        "authority_cvr": a.authority_cvr,
        "service": a.service,
        "consumer_system": a.consumer_system,
        "supplier": a.supplier,
        "status": a.status.value,
        "register_cert_alias": a.register_cert_alias,
        "valid_from": a.valid_from,
        "valid_to": a.valid_to,
    }


def _diff(old: Iterable[RouteRow], new: Iterable[RouteRow]) -> RouteChange:
    before = {row.key: row for row in old}
    after = {row.key: row for row in new}
    added = tuple(after[k] for k in sorted(after.keys() - before.keys()))
    removed = tuple(before[k] for k in sorted(before.keys() - after.keys()))
    common = sorted(before.keys() & after.keys())
    changed = tuple((before[k], after[k]) for k in common if before[k].sysid != after[k].sysid)
    return RouteChange(
        added=len(added),
        removed=len(removed),
        changed=len(changed),
        unchanged=len(common) - len(changed),
        added_rows=added,
        removed_rows=removed,
        changed_rows=changed,
    )


_ROUTE_ORDER = (routes.c.authority_cvr, routes.c.service, routes.c.role, routes.c.subject)
_AGREEMENT_ORDER = (
    agreements.c.authority_cvr,
    agreements.c.service,
    agreements.c.consumer_system,
    agreements.c.uuid,
)

# The per-call lookups, built once: only their parameters change from call to call.
_SYSIDS = select(routes.c.role, routes.c.sysid, routes.c.subject).where(
    routes.c.authority_cvr == bindparam("p_authority"),
    routes.c.service == bindparam("p_service"),
    or_(routes.c.subject == "", routes.c.subject == bindparam("p_subject")),
)
_CERTIFICATE = select(system_certificates).where(
    system_certificates.c.fingerprint == bindparam("p_fingerprint")
)
_SYSTEM = select(consumer_systems).where(consumer_systems.c.uuid == bindparam("p_system"))
_AGREEMENTS_FOR = select(agreements).where(
    agreements.c.authority_cvr == bindparam("p_authority"),
    agreements.c.service == bindparam("p_service"),
    agreements.c.consumer_system == bindparam("p_system"),
)


#: The routing version row (migration 0006); its triggers bump it on every routing change.
VERSION_QUERY = select(routing_version.c.version).where(routing_version.c.id == bindparam("p_id"))
VERSION_ROW = {"p_id": 1}
#: Reads of the whole routing data that may overlap a change before one sees a stable version.
_SNAPSHOT_ATTEMPTS = 5


@dataclass(frozen=True)
class RoutingData:
    """The whole routing data as of one routing version."""

    version: int
    consumer_systems: list[ConsumerSystem]
    certificates: list[SystemCertificate]
    agreements: list[Agreement]
    routes: list[RouteRow]


@dataclass(frozen=True)
class CallFacts:
    """The stored facts one call is routed by (see ``RoutingRepository.call_facts``).

    ``certificate`` is the registered certificate with the caller's fingerprint and
    ``consumer_system`` its system; both None when the fingerprint is not registered.
    Agreements and SysIDs are read only for a known system.
    """

    consumer_system: ConsumerSystem | None
    certificate: SystemCertificate | None
    agreements: list[Agreement]
    sysids: dict[str, str]


def _sysids(
    connection: Connection, authority_cvr: str, service: str, subject: str | None
) -> dict[str, str]:
    params = {"p_authority": authority_cvr, "p_service": service, "p_subject": subject or ""}
    found = connection.execute(_SYSIDS, params).all()
    result: dict[str, str] = {}
    # Authority-wide rows first, then the subject's rows overwrite them.
    for role, sysid, _subject in sorted(found, key=lambda r: r[2] != ""):
        result[role] = sysid
    return result


def _version(connection: Connection) -> int:
    version = connection.execute(VERSION_QUERY, VERSION_ROW).scalar()
    if version is None:
        raise StorageError("the routing version row is missing: migrate the database")
    return int(version)


def _certificate(
    connection: Connection, fingerprint: str
) -> tuple[SystemCertificate, ConsumerSystem] | None:
    row = connection.execute(_CERTIFICATE, {"p_fingerprint": fingerprint}).mappings().first()
    if row is None:
        return None
    certificate = certificate_from_row(row)
    system = connection.execute(_SYSTEM, {"p_system": certificate.consumer_system}).mappings()
    return certificate, consumer_system_from_row(system.one())


def _agreements_for(
    connection: Connection, authority_cvr: str, service: str, consumer_system: str
) -> list[Agreement]:
    params = {"p_authority": authority_cvr, "p_service": service, "p_system": consumer_system}
    return [_agreement(r) for r in connection.execute(_AGREEMENTS_FOR, params).mappings()]


class RoutingRepository:
    """Reads and writes the routing data of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    # --- routes ---------------------------------------------------------------------------

    def replace_routes(self, rows: Sequence[RouteRow]) -> RouteChange:
        """Make ``rows`` the whole routing table, in one transaction (all or nothing)."""
        with self._db.transaction(write_first=True) as connection:
            # DELETE first, so SQLite takes the write lock before anything is read.
            old = connection.execute(delete(routes).returning(*routes.c)).mappings().all()
            if rows:
                connection.execute(
                    insert(routes),
                    [
                        {
                            "authority_cvr": row.authority_cvr,
                            "service": row.service,
                            "role": row.role,
                            "sysid": row.sysid,
                            "subject": row.subject or "",
                            "source": row.source,
                        }
                        for row in rows
                    ],
                )
        return _diff((_route_row(r) for r in old), rows)

    def preview_routes(self, rows: Sequence[RouteRow]) -> RouteChange:
        """What ``replace_routes(rows)`` would change; changes nothing."""
        return _diff(self.list_routes(), rows)

    def list_routes(self, authority_cvr: str | None = None) -> list[RouteRow]:
        statement = select(routes).order_by(*_ROUTE_ORDER)
        if authority_cvr is not None:
            statement = statement.where(routes.c.authority_cvr == authority_cvr)
        with self._db.transaction() as connection:
            return [_route_row(r) for r in connection.execute(statement).mappings()]

    def sysids(self, authority_cvr: str, service: str, subject: str | None) -> dict[str, str]:
        """Role -> SysID for one call; a row for ``subject`` wins over the authority-wide row."""
        with self._db.transaction() as connection:
            return _sysids(connection, authority_cvr, service, subject)

    def call_facts(
        self, *, holder_fingerprint: str, authority_cvr: str, service: str, subject: str | None
    ) -> CallFacts:
        """Everything routing one call needs, read in one short transaction.

        Calls route through ``RoutingCache``, which must answer exactly this (tested).
        """
        with self._db.transaction() as connection:
            found = _certificate(connection, holder_fingerprint)
            if found is None:
                return CallFacts(None, None, [], {})
            certificate, system = found
            return CallFacts(
                system,
                certificate,
                _agreements_for(connection, authority_cvr, service, system.uuid),
                _sysids(connection, authority_cvr, service, subject),
            )

    def routing_data(self) -> RoutingData:
        """Every consumer system, agreement and route, and the routing version they are at.

        Read in one transaction, between two reads of the version: SQLite's transaction is a
        snapshot anyway; on PostgreSQL (read committed) each statement sees the latest commit,
        and equal versions before and after prove that no routing change committed between.
        """
        for _ in range(_SNAPSHOT_ATTEMPTS):
            with self._db.transaction() as connection:
                before = _version(connection)
                systems = connection.execute(select(consumer_systems)).mappings().all()
                certificates = connection.execute(select(system_certificates)).mappings().all()
                found = connection.execute(select(agreements)).mappings().all()
                rows = connection.execute(select(routes)).mappings().all()
                after = _version(connection)
            if before == after:
                return RoutingData(
                    before,
                    [consumer_system_from_row(r) for r in systems],
                    [certificate_from_row(r) for r in certificates],
                    [_agreement(r) for r in found],
                    [_route_row(r) for r in rows],
                )
        raise StorageError("the routing data kept changing while it was read")

    # --- agreements ------------------------------------------------------------------------

    def _agreement_upsert(self, a: Agreement, now: datetime) -> Executable:
        values = {**agreement_values(a), "updated_at": now}
        statement = self._insert(agreements).values(uuid=a.uuid, created_at=now, **values)
        return statement.on_conflict_do_update(index_elements=[agreements.c.uuid], set_=values)

    def upsert_agreement(self, a: Agreement) -> None:
        """Create or update an agreement by UUID; its consumer system must exist."""
        with self._db.transaction(write_first=True) as connection:
            connection.execute(self._agreement_upsert(a, datetime.now(UTC)))

    def agreements_for(
        self, authority_cvr: str, service: str, consumer_system: str
    ) -> list[Agreement]:
        with self._db.transaction() as connection:
            return _agreements_for(connection, authority_cvr, service, consumer_system)

    def list_agreements(self) -> list[Agreement]:
        statement = select(agreements).order_by(*_AGREEMENT_ORDER)
        with self._db.transaction() as connection:
            return [_agreement(r) for r in connection.execute(statement).mappings()]

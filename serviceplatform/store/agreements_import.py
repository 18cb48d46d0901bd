"""Bring an agreements file (``agreements.toml``) into a database: first a diff, then the import.

The reviewable file is the source of consumer systems and agreements in production as in the
sandbox. An import creates what is new and changes what differs, in one transaction, and
records every change in the history of the system or agreement it touched, with the actor and
the action ``import``. Nothing is deleted: a system or agreement missing from the file keeps
its stored state, and a certificate the file does not name stays registered (retire it with
``serviceplatform systems rotate``). ``diff`` runs the same comparison without writing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update

from serviceplatform.errors import (
    CertificateAlreadyRegistered,
    CertificateInvalid,
    RoutingTableInvalid,
)
from serviceplatform.routing.model import Agreement, ConsumerSystem
from serviceplatform.routing_files import display_path, read_agreements
from serviceplatform.store.agreements import append_agreement_event
from serviceplatform.store.db import Database
from serviceplatform.store.models import agreements, consumer_systems
from serviceplatform.store.repository import agreement_values
from serviceplatform.store.systems import (
    ParsedCertificate,
    append_system_event,
    certificate_owner,
    check_name,
    check_supplier_cvr,
    insert_certificate,
    parse_certificate,
)


@dataclass(frozen=True)
class SystemImport:
    """A consumer system of the file with its certificates, read and checked."""

    system: ConsumerSystem
    certificates: tuple[ParsedCertificate, ...] = ()


@dataclass(frozen=True)
class ImportReport:
    """What an import changes, one line per change (``+`` new, ``~`` changed)."""

    lines: tuple[str, ...]
    unchanged: int

    @property
    def any(self) -> bool:
        return bool(self.lines)


def read_import(
    path: Path, known_services: Mapping[str, frozenset[str]], *, now: datetime
) -> tuple[list[SystemImport], list[Agreement]]:
    """The file's systems (with their certificate files read and checked) and agreements.

    Every problem is reported at once: those of the file (RoutingTableInvalid, SP-310, with
    the certificate files' among them), or when the file is right, every certificate file
    that cannot be read or is no usable certificate (CertificateInvalid, SP-608). A missing
    certificate used to be reported only once everything else was fixed.
    """
    entries, items, problems = read_agreements(path, known_services)
    systems: list[SystemImport] = []
    unreadable: list[str] = []
    for entry in entries:
        certificates: list[ParsedCertificate] = []
        for file in entry.certificate_files:
            where = f"{display_path(path)}: consumer system {entry.system.uuid}: {file}"
            try:
                pem = file.read_bytes()
            except OSError as exc:
                unreadable.append(f"{where}: cannot read: {exc.strerror or exc}")
                continue
            try:
                certificates.append(parse_certificate(pem, now=now))
            except CertificateInvalid as exc:
                unreadable.append(f"{where}: {exc.detail}")
        systems.append(SystemImport(entry.system, tuple(certificates)))
    if problems:
        raise RoutingTableInvalid(detail="\n".join(problems + unreadable))
    if unreadable:
        raise CertificateInvalid("\n".join(unreadable))
    return systems, items


def plan_import(
    db: Database, systems: Sequence[SystemImport], items: Sequence[Agreement], *, now: datetime
) -> ImportReport:
    """What ``apply_import`` would change; changes nothing."""
    with db.transaction() as connection:
        return _reconcile(connection, systems, items, now=now, actor="", write=False)


def apply_import(
    db: Database,
    systems: Sequence[SystemImport],
    items: Sequence[Agreement],
    *,
    now: datetime,
    actor: str,
) -> ImportReport:
    """Create and update the file's systems and agreements in one transaction."""
    with db.transaction(write_first=True) as connection:
        return _reconcile(connection, systems, items, now=now, actor=actor, write=True)


def _reconcile(
    connection: Connection,
    systems: Sequence[SystemImport],
    items: Sequence[Agreement],
    *,
    now: datetime,
    actor: str,
    write: bool,
) -> ImportReport:
    lines: list[str] = []
    unchanged = 0
    for entry in systems:
        found = _system(connection, entry, now=now, actor=actor, write=write)
        lines.extend(found)
        unchanged += not found
    for agreement in items:
        found = _agreement(connection, agreement, now=now, actor=actor, write=write)
        lines.extend(found)
        unchanged += not found
    return ImportReport(tuple(lines), unchanged)


def _system(
    connection: Connection, entry: SystemImport, *, now: datetime, actor: str, write: bool
) -> list[str]:
    system = entry.system
    values = {
        "name": check_name(system.name),
        "supplier_cvr": check_supplier_cvr(system.supplier_cvr),
    }
    row = connection.execute(
        select(consumer_systems).where(consumer_systems.c.uuid == system.uuid)
    ).first()
    label = f"consumer system {system.uuid} ({values['name']})"
    lines: list[str] = []
    changes: dict[str, Any] = {}
    if row is None:
        lines.append(f"+ {label}, supplier {values['supplier_cvr']}")
        changes = dict(values)
        if write:
            connection.execute(
                insert(consumer_systems).values(
                    uuid=system.uuid, created_at=now, deactivated_at=None, **values
                )
            )
    else:
        changes = {k: v for k, v in values.items() if getattr(row, k) != v}
        if changes:
            described = ", ".join(f"{k} {getattr(row, k)!r} -> {v!r}" for k, v in changes.items())
            lines.append(f"~ {label}: {described}")
            if write:
                connection.execute(
                    update(consumer_systems)
                    .where(consumer_systems.c.uuid == system.uuid)
                    .values(**changes)
                )
    added: list[str] = []
    for parsed in entry.certificates:
        owner = certificate_owner(connection, parsed.fingerprint)
        if owner == system.uuid:
            continue
        if owner is not None:
            raise CertificateAlreadyRegistered(
                f"{parsed.subject} (SHA-256 {parsed.fingerprint}) belongs to consumer system "
                f"{owner}, not {system.uuid}"
            )
        lines.append(f"+ {label}: certificate {parsed.subject} (SHA-256 {parsed.fingerprint})")
        added.append(parsed.fingerprint)
        if write:
            insert_certificate(connection, system.uuid, parsed, now)
    if write and lines:
        details: dict[str, Any] = {**changes}
        if added:
            details["certificates_added"] = added
        append_system_event(connection, system.uuid, now, actor, "import", None, details)
    return lines


def _agreement(
    connection: Connection, agreement: Agreement, *, now: datetime, actor: str, write: bool
) -> list[str]:
    values = agreement_values(agreement)
    row = connection.execute(select(agreements).where(agreements.c.uuid == agreement.uuid)).first()
    label = f"agreement {agreement.uuid} ({agreement.authority_cvr} {agreement.service})"
    if row is None:
        if write:
            connection.execute(
                insert(agreements).values(
                    uuid=agreement.uuid, created_at=now, updated_at=now, **values
                )
            )
            append_agreement_event(
                connection, agreement.uuid, now, actor, "import", None, values["status"], None, None
            )
        return [f"+ {label}, {values['status']}"]
    changes = {k: v for k, v in values.items() if getattr(row, k) != v}
    if not changes:
        return []
    if write:
        connection.execute(
            update(agreements)
            .where(agreements.c.uuid == agreement.uuid)
            .values(updated_at=now, **changes)
        )
        append_agreement_event(
            connection,
            agreement.uuid,
            now,
            actor,
            "import",
            row.status,
            values["status"],
            None,
            {k: _text(v) for k, v in changes.items()},
        )
    described = ", ".join(f"{k} {_text(getattr(row, k))} -> {_text(v)}" for k, v in changes.items())
    return [f"~ {label}: {described}"]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)

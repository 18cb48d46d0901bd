"""Parse and validate the agreements file (``routing_tables/agreements.toml``): no I/O.

The file declares the consumer systems (a case system, its supplier and the certificates it
calls with) and the service agreements between them and authorities::

    [[consumer_system]]
    uuid = "6f1c2a9e-..."
    name = "Sandbox case system"
    supplier_cvr = "12345674"
    certificates = ["certs/case-system.pem"]   # optional; PEM files, relative to this file

    [[agreement]]
    uuid = "..."
    authority_cvr = "29189846"
    service = "sf2250"
    consumer_system = "6f1c2a9e-..."       # a consumer_system uuid of this file
    supplier = "Sandbox Supplier"
    status = "approved"                     # requested|approved|rejected|suspended|revoked
    register_cert_alias = "platform-register"   # optional
    valid_from = 2024-01-01                 # optional, TOML date or "YYYY-MM-DD"
    valid_to = 2030-12-31                   # optional

A system is matched by the SHA-256 fingerprints of its certificates, never by a subject, so
the file names the certificate files themselves; ``serviceplatform agreements import`` reads
them (reading files is ``serviceplatform.routing_files``'s job). The older ``cert_subject``
key is refused with a note saying what replaced it.

Every problem is collected and reported at once in one
:class:`~serviceplatform.errors.RoutingTableInvalid`, one per line, naming the file and the
entry (``agreements.toml: agreement #2: ...``, counting from 1).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from serviceplatform.errors import RoutingTableInvalid
from serviceplatform.routing.identifiers import is_valid_cvr
from serviceplatform.routing.model import Agreement, AgreementStatus, ConsumerSystem

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SYSTEM_REQUIRED = {"uuid", "name", "supplier_cvr"}
_SYSTEM_OPTIONAL = {"certificates"}
_AGREEMENT_REQUIRED = {"uuid", "authority_cvr", "service", "consumer_system", "supplier", "status"}
_AGREEMENT_OPTIONAL = {"register_cert_alias", "valid_from", "valid_to"}
_STATUSES = ", ".join(s.value for s in AgreementStatus)


class _Entry:
    """One table of the file, with the problems found in it."""

    def __init__(self, label: str, data: Any, required: set[str], optional: set[str]) -> None:
        self.label = label
        self.problems: list[str] = []
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        if not isinstance(data, dict):
            self.problems.append("must be a table")
            return
        missing = sorted(required - data.keys())
        if missing:
            self.problems.append(f"missing key(s) {', '.join(missing)}")
        unknown = sorted(data.keys() - required - optional)
        if unknown:
            self.problems.append(f"unknown key(s) {', '.join(unknown)}")

    def text(self, key: str, *, optional: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or (not optional and not value.strip()):
            self.problems.append(f"{key} must be a non-empty string")
            return None
        return value.strip()

    def uuid(self, key: str) -> str | None:
        value = self.text(key)
        if value is None:
            return None
        if not _UUID.fullmatch(value):
            self.problems.append(f"{key} {value!r} is not a UUID")
            return None
        return value.lower()

    def cvr(self, key: str) -> str | None:
        value = self.text(key)
        if value is None:
            return None
        if not (len(value) == 8 and value.isascii() and value.isdigit()):
            self.problems.append(f"{key} {value!r} is not an 8-digit CVR number")
        elif not is_valid_cvr(value):
            self.problems.append(f"CVR {value} fails the modulus-11 check")
        else:
            return value
        return None

    def day(self, key: str) -> date | None:
        value = self.data.get(key)
        if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.problems.append(f"{key} must be a date (YYYY-MM-DD)")
        return None


@dataclass(frozen=True)
class SystemEntry:
    """A consumer system of the file and the certificate files it names (absolute paths)."""

    system: ConsumerSystem
    certificate_files: tuple[Path, ...] = ()


def _certificate_files(entry: _Entry, base: Path) -> tuple[Path, ...]:
    value = entry.data.get("certificates", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        entry.problems.append("certificates must be a list of PEM file paths")
        return ()
    # An absolute path stays as it is: pathlib's ``base / "/abs/x.pem"`` is ``/abs/x.pem``.
    return tuple(base / v.strip() for v in value)


def _systems(raw: Any, base: Path) -> tuple[list[SystemEntry], list[str]]:
    systems: list[SystemEntry] = []
    errors: list[str] = []
    seen_uuid: dict[str, str] = {}
    for index, data in enumerate(raw, start=1):
        if isinstance(data, dict) and "cert_subject" in data:
            errors.append(
                f"consumer_system #{index}: cert_subject is no longer used: systems are known "
                "by certificate fingerprint; list their PEM files under certificates"
            )
            continue
        entry = _Entry(f"consumer_system #{index}", data, _SYSTEM_REQUIRED, _SYSTEM_OPTIONAL)
        uuid, name, supplier = entry.uuid("uuid"), entry.text("name"), entry.cvr("supplier_cvr")
        files = _certificate_files(entry, base)
        if uuid is not None and uuid in seen_uuid:
            entry.problems.append(f"uuid {uuid} is also used by {seen_uuid[uuid]}")
        elif uuid is not None:
            # Also when the entry has other problems: a later duplicate is a problem of its own.
            seen_uuid[uuid] = entry.label
        errors.extend(f"{entry.label}: {p}" for p in entry.problems)
        if uuid is None or name is None or supplier is None or entry.problems:
            continue
        systems.append(SystemEntry(ConsumerSystem(uuid, name, supplier), files))
    return systems, errors


def _agreements(
    raw: Any, system_ids: set[str], known_services: Mapping[str, frozenset[str]] | None
) -> tuple[list[Agreement], list[str]]:
    items: list[Agreement] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    for index, data in enumerate(raw, start=1):
        entry = _Entry(f"agreement #{index}", data, _AGREEMENT_REQUIRED, _AGREEMENT_OPTIONAL)
        uuid, cvr, system = (
            entry.uuid("uuid"),
            entry.cvr("authority_cvr"),
            entry.uuid("consumer_system"),
        )
        service, supplier = entry.text("service"), entry.text("supplier")
        alias = entry.text("register_cert_alias", optional=True) or None
        valid_from, valid_to = entry.day("valid_from"), entry.day("valid_to")
        status_text = entry.text("status")
        status: AgreementStatus | None = None
        if status_text is not None:
            try:
                status = AgreementStatus(status_text)
            except ValueError:
                entry.problems.append(f"status {status_text!r} is not one of {_STATUSES}")
        if uuid is not None and uuid in seen:
            entry.problems.append(f"uuid {uuid} is also used by {seen[uuid]}")
        elif uuid is not None:
            seen[uuid] = entry.label
        if system is not None and system not in system_ids:
            entry.problems.append(f"consumer_system {system} is not declared in this file")
        if service is not None and known_services is not None and service not in known_services:
            entry.problems.append(f"unknown service {service!r}")
        if valid_from and valid_to and valid_to < valid_from:
            entry.problems.append(f"valid_to {valid_to} is before valid_from {valid_from}")
        errors.extend(f"{entry.label}: {p}" for p in entry.problems)
        if (
            entry.problems
            or uuid is None
            or cvr is None
            or system is None
            or service is None
            or supplier is None
            or status is None
        ):
            continue
        items.append(
            Agreement(
                uuid=uuid,
                authority_cvr=cvr,
                service=service,
                consumer_system=system,
                supplier=supplier,
                status=status,
                register_cert_alias=alias,
                valid_from=valid_from,
                valid_to=valid_to,
            )
        )
    return items, errors


def check_agreements(
    text: str,
    name: str,
    base: Path,
    known_services: Mapping[str, frozenset[str]] | None = None,
) -> tuple[list[SystemEntry], list[Agreement], list[str]]:
    """The consumer systems and agreements of a file's ``text`` that are valid, and every
    problem beside them (each starting with ``name``), so that a caller can add its own (a
    certificate file it cannot read) and report all of them at once. Certificate files are
    taken relative to ``base`` (the file's directory); with ``known_services``, an agreement
    for a service not in it is a problem too. A file that is no TOML, or not of arrays of
    tables, raises RoutingTableInvalid: nothing in it can be read.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoutingTableInvalid(detail=f"{name}: {exc}") from exc
    errors: list[str] = []
    unknown = sorted(document.keys() - {"consumer_system", "agreement"})
    if unknown:
        errors.append(f"unknown top-level key(s) {', '.join(unknown)}")
    raw_systems, raw_agreements = document.get("consumer_system", []), document.get("agreement", [])
    if not isinstance(raw_systems, list) or not isinstance(raw_agreements, list):
        raise RoutingTableInvalid(
            detail=f"{name}: consumer_system and agreement must be arrays of tables ([[...]])"
        )
    systems, system_errors = _systems(raw_systems, base)
    # Declared-but-invalid systems still count as declared, to avoid follow-on noise.
    declared = {s.system.uuid for s in systems} | {
        str(d.get("uuid", "")).lower() for d in raw_systems if isinstance(d, dict)
    }
    items, agreement_errors = _agreements(raw_agreements, declared, known_services)
    errors += system_errors + agreement_errors
    return systems, items, [f"{name}: {e}" for e in errors]

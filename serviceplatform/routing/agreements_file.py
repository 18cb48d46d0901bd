"""Read and validate the agreements file (``routing_tables/agreements.toml``).

The file declares the consumer systems (a case system and the certificate it calls with) and
the service agreements between them and authorities::

    [[consumer_system]]
    uuid = "6f1c2a9e-..."
    name = "Sandbox case system"
    cert_subject = "CN=...,O=...,C=DK"     # RFC 4514, as cryptography renders it

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

Every problem is collected and reported at once in one
:class:`~serviceplatform.errors.RoutingTableInvalid`, one per line, naming the file and the
entry (``agreements.toml: agreement #2: ...``, counting from 1).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from serviceplatform.errors import RoutingTableInvalid
from serviceplatform.routing.identifiers import is_valid_cvr
from serviceplatform.routing.model import Agreement, AgreementStatus, ConsumerSystem
from serviceplatform.routing.table import display_path

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SYSTEM_KEYS = {"uuid", "name", "cert_subject"}
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


def _systems(raw: Any) -> tuple[list[ConsumerSystem], list[str]]:
    systems: list[ConsumerSystem] = []
    errors: list[str] = []
    seen_uuid: dict[str, str] = {}
    seen_subject: dict[str, str] = {}
    for index, data in enumerate(raw, start=1):
        entry = _Entry(f"consumer_system #{index}", data, _SYSTEM_KEYS, set())
        uuid, name, subject = entry.uuid("uuid"), entry.text("name"), entry.text("cert_subject")
        if uuid is not None and uuid in seen_uuid:
            entry.problems.append(f"uuid {uuid} is also used by {seen_uuid[uuid]}")
        if subject is not None and subject in seen_subject:
            entry.problems.append(f"cert_subject is also used by {seen_subject[subject]}")
        errors.extend(f"{entry.label}: {p}" for p in entry.problems)
        if uuid is None or name is None or subject is None or entry.problems:
            continue
        seen_uuid[uuid], seen_subject[subject] = entry.label, entry.label
        systems.append(ConsumerSystem(uuid=uuid, name=name, cert_subject=subject))
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
        seen[uuid] = entry.label
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


def load_agreements(
    path: Path, known_services: Mapping[str, frozenset[str]] | None = None
) -> tuple[list[ConsumerSystem], list[Agreement]]:
    """The consumer systems and agreements of a file; RoutingTableInvalid lists every problem.

    With ``known_services``, an agreement for a service not in it is a problem too.
    """
    name = display_path(Path(path))
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RoutingTableInvalid(detail=f"{name}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
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
    systems, system_errors = _systems(raw_systems)
    # Declared-but-invalid systems still count as declared, to avoid follow-on noise.
    declared = {s.uuid for s in systems} | {
        str(d.get("uuid", "")).lower() for d in raw_systems if isinstance(d, dict)
    }
    items, agreement_errors = _agreements(raw_agreements, declared, known_services)
    errors += system_errors + agreement_errors
    if errors:
        raise RoutingTableInvalid(detail="\n".join(f"{name}: {e}" for e in errors))
    return systems, items

"""Agreements as administrators change them: request, transitions, post-configuration, history.

Every change is one transaction that updates the agreement and appends an event with who,
when and why (``agreement_events``), so the history can never disagree with the state. The
post-configuration (TSP07) of an agreement is its outward certificate and, per role its
service needs, the authority's SysID: those are written as the authority-wide routes of the
agreement's service, the same rows ``routing_tables/*.csv`` loads, so there is one source of
SysIDs for routing and ``routing export`` writes them back to text.

Calls read agreements and routes per call, so a change takes effect on the next call in every
platform process.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from serviceplatform.errors import AgreementNotFound, ConsumerSystemNotFound, InvalidAdminRequest
from serviceplatform.routing.identifiers import is_valid_cvr
from serviceplatform.routing.lifecycle import next_status
from serviceplatform.routing.model import Agreement, AgreementStatus
from serviceplatform.routing.needs import ServiceNeeds, unmet_needs
from serviceplatform.store.db import Database
from serviceplatform.store.models import (
    NAME_LEN,
    agreement_events,
    agreements,
    consumer_systems,
    routes,
)

_SYSID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Service key -> what its agreements need before they route (``registry.service_needs``).
ServicesNeeds = Mapping[str, ServiceNeeds]
#: Raises a platform error when an outward certificate alias may not be configured.
AliasCheck = Callable[[str], None]


@dataclass(frozen=True)
class AgreementEvent:
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    reason: str | None
    details: dict[str, Any] | None


@dataclass(frozen=True)
class AgreementView:
    """An agreement with what an administrator needs to judge it."""

    agreement: Agreement
    consumer_system_name: str
    sysids: dict[str, str]
    configured: bool
    routable: bool
    #: What it lacks to be configured, for people (``["outward certificate"]``).
    missing: list[str]
    created_at: datetime
    updated_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AgreementStore:
    def __init__(
        self,
        db: Database,
        services: ServicesNeeds,
        *,
        clock: Callable[[], datetime] = _utc_now,
        alias_check: AliasCheck | None = None,
    ) -> None:
        self._db = db
        self._services = services
        self._clock = clock
        #: Checks a certificate alias against the certificate store before it is configured.
        self._alias_check = alias_check

    # --- reading ------------------------------------------------------------------------

    def get(self, agreement_uuid: str) -> AgreementView:
        with self._db.transaction() as connection:
            return self._view(connection, self._row(connection, agreement_uuid))

    def find(
        self,
        *,
        status: str | None = None,
        service: str | None = None,
        authority_cvr: str | None = None,
        supplier: str | None = None,
    ) -> list[AgreementView]:
        query = select(agreements).order_by(
            agreements.c.authority_cvr, agreements.c.service, agreements.c.created_at
        )
        for column, value in (
            (agreements.c.status, status),
            (agreements.c.service, service),
            (agreements.c.authority_cvr, authority_cvr),
            (agreements.c.supplier, supplier),
        ):
            if value:
                query = query.where(column == value)
        with self._db.transaction() as connection:
            return [self._view(connection, row) for row in connection.execute(query)]

    def history(self, agreement_uuid: str) -> list[AgreementEvent]:
        query = (
            select(agreement_events)
            .where(agreement_events.c.agreement_uuid == agreement_uuid)
            .order_by(agreement_events.c.id)
        )
        with self._db.transaction() as connection:
            self._row(connection, agreement_uuid)
            return [
                AgreementEvent(
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    from_status=row.from_status,
                    to_status=row.to_status,
                    reason=row.reason,
                    details=json.loads(row.details) if row.details else None,
                )
                for row in connection.execute(query)
            ]

    # --- changing -----------------------------------------------------------------------

    def request(
        self,
        *,
        authority_cvr: str,
        service: str,
        consumer_system: str,
        supplier: str,
        actor: str,
        reason: str | None = None,
    ) -> AgreementView:
        """A new agreement in status ``requested`` (TS106)."""
        if not is_valid_cvr(authority_cvr):
            raise InvalidAdminRequest(f"authority_cvr {authority_cvr!r} is not a valid CVR number")
        if service not in self._services:
            raise InvalidAdminRequest(f"unknown service {service!r}")
        supplier = supplier.strip()
        if not supplier or len(supplier) > NAME_LEN:
            raise InvalidAdminRequest("supplier must be 1-255 characters")
        now = self._clock()
        new_uuid = str(uuid.uuid4())
        with self._db.transaction(write_first=True) as connection:
            known = connection.execute(
                select(consumer_systems.c.deactivated_at).where(
                    consumer_systems.c.uuid == consumer_system
                )
            ).first()
            if known is None:
                raise ConsumerSystemNotFound(consumer_system)
            if known.deactivated_at is not None:
                raise InvalidAdminRequest(f"consumer system {consumer_system} is deactivated")
            connection.execute(
                insert(agreements).values(
                    uuid=new_uuid,
                    authority_cvr=authority_cvr,
                    service=service,
                    consumer_system=consumer_system,
                    supplier=supplier,
                    status=AgreementStatus.REQUESTED.value,
                    register_cert_alias=None,
                    valid_from=now.date(),
                    valid_to=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            append_agreement_event(
                connection, new_uuid, now, actor, "request", None, "requested", reason, None
            )
            return self._view(connection, self._row(connection, new_uuid))

    def transition(
        self, agreement_uuid: str, action: str, *, actor: str, reason: str | None = None
    ) -> AgreementView:
        """Apply a lifecycle action (``routing/lifecycle.py``); the history records it."""
        now = self._clock()
        with self._db.transaction(write_first=True) as connection:
            row = self._row(connection, agreement_uuid, for_update=True)
            current = AgreementStatus(row.status)
            target = next_status(current, action, reason)
            connection.execute(
                update(agreements)
                .where(agreements.c.uuid == agreement_uuid)
                .values(status=target.value, updated_at=now)
            )
            append_agreement_event(
                connection,
                agreement_uuid,
                now,
                actor,
                action,
                current.value,
                target.value,
                reason,
                None,
            )
            return self._view(connection, self._row(connection, agreement_uuid))

    def configure(
        self,
        agreement_uuid: str,
        *,
        actor: str,
        sysids: Mapping[str, str] | None = None,
        register_cert_alias: str | None = None,
        valid_to: date | None = None,
        clear_valid_to: bool = False,
        reason: str | None = None,
    ) -> AgreementView:
        """The post-configuration (TSP07): SysIDs per role, outward certificate, end date.

        A certificate alias must name a certificate of the store that has not expired (the
        ``alias_check``), so a typo is refused here and not found by the first real call.
        An end date before today (UTC, the router's day) or before the agreement's start is
        refused: it would stop every call at once without a word in the status; suspend or
        revoke the agreement for that (docs/routing.md).
        """
        if register_cert_alias is not None:
            if not _ALIAS.fullmatch(register_cert_alias):
                raise InvalidAdminRequest(f"certificate alias {register_cert_alias!r}")
            if self._alias_check is not None:
                self._alias_check(register_cert_alias)
        now = self._clock()
        with self._db.transaction(write_first=True) as connection:
            row = self._row(connection, agreement_uuid, for_update=True)
            allowed = self._services.get(row.service, ServiceNeeds()).roles
            changes: dict[str, Any] = {}
            for role, sysid in (sysids or {}).items():
                if role not in allowed:
                    raise InvalidAdminRequest(
                        f"service {row.service} has no role {role!r} (roles: {sorted(allowed)})"
                    )
                if not _SYSID.fullmatch(sysid):
                    raise InvalidAdminRequest(f"SysID {sysid!r} is not 1-64 of A-Z a-z 0-9 _ -")
            if valid_to is not None and valid_to < now.date():
                raise InvalidAdminRequest(
                    f"valid_to {valid_to} is in the past (today is {now.date()}): "
                    "suspend or revoke the agreement to stop it"
                )
            if valid_to is not None and row.valid_from is not None and valid_to < row.valid_from:
                raise InvalidAdminRequest(
                    f"valid_to {valid_to} is before the agreement's valid_from {row.valid_from}"
                )
            values: dict[str, Any] = {"updated_at": now}
            if register_cert_alias is not None:
                values["register_cert_alias"] = register_cert_alias
                changes["register_cert_alias"] = register_cert_alias
            if valid_to is not None or clear_valid_to:
                values["valid_to"] = valid_to
                changes["valid_to"] = valid_to.isoformat() if valid_to else None
            connection.execute(
                update(agreements).where(agreements.c.uuid == agreement_uuid).values(**values)
            )
            for role, sysid in (sysids or {}).items():
                key = (
                    routes.c.authority_cvr == row.authority_cvr,
                    routes.c.service == row.service,
                    routes.c.role == role,
                    routes.c.subject == "",
                )
                connection.execute(delete(routes).where(*key))
                connection.execute(
                    insert(routes).values(
                        authority_cvr=row.authority_cvr,
                        service=row.service,
                        role=role,
                        sysid=sysid,
                        subject="",
                        source=f"agreement {agreement_uuid} ({actor})",
                    )
                )
                changes.setdefault("sysids", {})[role] = sysid
            append_agreement_event(
                connection,
                agreement_uuid,
                now,
                actor,
                "configure",
                row.status,
                row.status,
                reason,
                changes,
            )
            return self._view(connection, self._row(connection, agreement_uuid))

    # --- helpers ------------------------------------------------------------------------

    def _row(self, connection: Connection, agreement_uuid: str, for_update: bool = False) -> Any:
        query = select(agreements).where(agreements.c.uuid == agreement_uuid)
        row = connection.execute(query.with_for_update() if for_update else query).first()
        if row is None:
            raise AgreementNotFound(agreement_uuid)
        return row

    def _view(self, connection: Connection, row: Any) -> AgreementView:
        agreement = Agreement(
            uuid=row.uuid,
            authority_cvr=row.authority_cvr,
            service=row.service,
            consumer_system=row.consumer_system,
            supplier=row.supplier,
            status=AgreementStatus(row.status),
            register_cert_alias=row.register_cert_alias,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
        )
        name = connection.execute(
            select(consumer_systems.c.name).where(consumer_systems.c.uuid == row.consumer_system)
        ).scalar()
        sysids = {
            r.role: r.sysid
            for r in connection.execute(
                select(routes.c.role, routes.c.sysid).where(
                    routes.c.authority_cvr == row.authority_cvr,
                    routes.c.service == row.service,
                    routes.c.subject == "",
                )
            )
        }
        needs = self._services.get(row.service, ServiceNeeds())
        unmet = unmet_needs(
            required_roles=needs.required_roles,
            certificate=needs.certificate,
            sysids=sysids,
            cert_alias=row.register_cert_alias,
        )
        configured = not unmet
        today = self._clock().date()
        return AgreementView(
            agreement=agreement,
            consumer_system_name=name or "",
            sysids=dict(sorted(sysids.items())),
            configured=configured,
            routable=configured and agreement.active_on(today),
            missing=unmet.describe(),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def append_agreement_event(
    connection: Connection,
    agreement_uuid: str,
    at: datetime,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str,
    reason: str | None,
    details: dict[str, Any] | None,
) -> None:
    connection.execute(
        insert(agreement_events).values(
            agreement_uuid=agreement_uuid,
            at=at,
            actor=actor[:NAME_LEN],
            action=action,
            from_status=from_status,
            to_status=to_status,
            reason=(reason or "").strip() or None,
            details=json.dumps(details, sort_keys=True) if details else None,
        )
    )

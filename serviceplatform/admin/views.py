"""The admin API's operations: what each endpoint does, for whom (docs/admin-api.md).

Each view takes the authenticated principal, the path parameters and the JSON body, checks
the role, does its work through the stores and returns the JSON answer. Errors are platform
errors (``AdminError`` and the rest); ``admin/app.py`` turns them into HTTP answers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Final

from serviceplatform.admin.auth import AUTHORITY_ADMIN, OPERATOR, SUPPLIER, Principal
from serviceplatform.admin.certificate_alias import AliasChecker
from serviceplatform.errors import AgreementNotFound, ConsumerSystemNotFound, InvalidAdminRequest
from serviceplatform.logmask import mask_subject
from serviceplatform.outbound.certstore import CertInfo
from serviceplatform.platform import Platform
from serviceplatform.registry import part, service_needs
from serviceplatform.store.agreements import AgreementStore, AgreementView
from serviceplatform.store.outbox import Outbox
from serviceplatform.store.systems import DEFAULT_OVERLAP, SystemEvent, SystemStore, SystemView

Json = dict[str, Any]


#: What a supplier is not shown of an agreement it requested: the authority's SysIDs and the
#: platform's outward certificate are the authority's and the operator's business.
_HIDDEN_FROM_SUPPLIERS: Final = ("sysids", "register_cert_alias")


def agreement_json(view: AgreementView) -> Json:
    a = view.agreement
    return {
        "uuid": a.uuid,
        "authority_cvr": a.authority_cvr,
        "service": a.service,
        "consumer_system": a.consumer_system,
        "consumer_system_name": view.consumer_system_name,
        "supplier": a.supplier,
        "status": a.status.value,
        "register_cert_alias": a.register_cert_alias,
        "valid_from": a.valid_from.isoformat() if a.valid_from else None,
        "valid_to": a.valid_to.isoformat() if a.valid_to else None,
        "sysids": view.sysids,
        "configured": view.configured,
        "routable": view.routable,
        "missing": view.missing,
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
    }


def system_json(view: SystemView, now: datetime) -> Json:
    """A consumer system for the API, the CLI's --json and the page."""
    system = view.system
    return {
        "uuid": system.uuid,
        "name": system.name,
        "supplier_cvr": system.supplier_cvr,
        "active": system.active,
        "deactivated_at": _iso(system.deactivated_at),
        "created_at": view.created_at.isoformat(),
        # Whether a call with some certificate of the system would be accepted now.
        "callable": system.active and bool(view.accepted_now(now)),
        "certificates": [
            {
                "fingerprint_sha256": c.fingerprint,
                "subject": c.subject,
                "issuer": c.issuer,
                "not_before": c.not_before.isoformat(),
                "not_after": c.not_after.isoformat(),
                "accepted_from": c.accepted_from.isoformat(),
                "accepted_until": _iso(c.accepted_until),
                "accepted_now": c.accepted_at(now),
            }
            for c in view.certificates
        ],
    }


def system_history_json(events: list[SystemEvent]) -> list[Json]:
    return [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "reason": e.reason,
            "details": e.details,
        }
        for e in events
    ]


def _text(body: Json, key: str, *, required: bool = False, limit: int = 1000) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise InvalidAdminRequest(f"{key} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidAdminRequest(f"{key} must be a string of at most {limit} characters")
    return value.strip()


def _limit(query: dict[str, str], default: int = 50) -> int:
    raw = query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        raise InvalidAdminRequest("limit must be 1-1000")
    return int(raw)


class AdminViews:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.agreements = AgreementStore(
            platform.db,
            service_needs(),
            clock=platform.clock,
            alias_check=AliasChecker(platform.certificates),
        )
        self.systems = SystemStore(platform.db, clock=platform.clock)

    # --- agreements ---------------------------------------------------------------------

    def _visible(self, principal: Principal, view: AgreementView) -> bool:
        a = view.agreement
        if principal.role == OPERATOR:
            return True
        if principal.role == AUTHORITY_ADMIN:
            return a.authority_cvr == principal.authority_cvr
        return a.supplier == principal.supplier

    def _get_visible(self, principal: Principal, agreement_uuid: str) -> AgreementView:
        view = self.agreements.get(agreement_uuid)
        if not self._visible(principal, view):
            # The same answer as for an unknown id: no probing for other authorities' data.
            raise AgreementNotFound(agreement_uuid)
        return view

    def me(self, principal: Principal, **_: Any) -> Json:
        return {
            "name": principal.name,
            "role": principal.role,
            "authority_cvr": principal.authority_cvr or None,
            "supplier": principal.supplier or None,
            "supplier_cvr": principal.supplier_cvr or None,
        }

    def _agreement_for(self, principal: Principal, view: AgreementView) -> Json:
        """An agreement as ``principal`` may see it: a supplier without the SysIDs."""
        answer = agreement_json(view)
        if principal.role == SUPPLIER:
            for key in _HIDDEN_FROM_SUPPLIERS:
                answer[key] = None
        return answer

    def list_agreements(self, principal: Principal, query: dict[str, str], **_: Any) -> Json:
        views = self.agreements.find(
            status=query.get("status") or None,
            service=query.get("service") or None,
            authority_cvr=query.get("authority_cvr") or None,
        )
        return {
            "agreements": [
                self._agreement_for(principal, v) for v in views if self._visible(principal, v)
            ]
        }

    def get_agreement(self, principal: Principal, agreement_uuid: str, **_: Any) -> Json:
        view = self._get_visible(principal, agreement_uuid)
        answer = self._agreement_for(principal, view)
        answer["history"] = [
            {
                "at": event.at.isoformat(),
                "actor": event.actor,
                "action": event.action,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "reason": event.reason,
                # A configuration's details are the SysIDs and the certificate alias.
                "details": {} if principal.role == SUPPLIER else event.details,
            }
            for event in self.agreements.history(agreement_uuid)
        ]
        return answer

    def request_agreement(self, principal: Principal, body: Json, **_: Any) -> Json:
        principal.require(SUPPLIER, OPERATOR)
        supplier = (
            principal.supplier
            if principal.role == SUPPLIER
            else _text(body, "supplier", required=True, limit=255)
        )
        consumer_system = _text(body, "consumer_system", required=True, limit=36) or ""
        if principal.role == SUPPLIER:
            # A supplier requests agreements only for the systems it runs.
            self._own_system(principal, consumer_system)
        view = self.agreements.request(
            authority_cvr=_text(body, "authority_cvr", required=True, limit=8) or "",
            service=_text(body, "service", required=True, limit=64) or "",
            consumer_system=consumer_system,
            supplier=supplier or "",
            actor=principal.label,
            reason=_text(body, "reason"),
        )
        return self._agreement_for(principal, view)

    def transition(
        self, principal: Principal, agreement_uuid: str, action: str, body: Json, **_: Any
    ) -> Json:
        principal.require(AUTHORITY_ADMIN, OPERATOR)
        view = self._get_visible(principal, agreement_uuid)
        if not principal.may_administer(view.agreement.authority_cvr):
            raise AgreementNotFound(agreement_uuid)
        changed = self.agreements.transition(
            agreement_uuid, action, actor=principal.label, reason=_text(body, "reason")
        )
        return agreement_json(changed)

    def configure(self, principal: Principal, agreement_uuid: str, body: Json, **_: Any) -> Json:
        principal.require(OPERATOR)
        sysids = body.get("sysids", {})
        if not isinstance(sysids, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in sysids.items()
        ):
            raise InvalidAdminRequest("sysids must be an object of role: SysID strings")
        valid_to_text = _text(body, "valid_to", limit=10)
        try:
            valid_to = date.fromisoformat(valid_to_text) if valid_to_text else None
        except ValueError:
            raise InvalidAdminRequest("valid_to must be YYYY-MM-DD") from None
        changed = self.agreements.configure(
            agreement_uuid,
            actor=principal.label,
            sysids=sysids,
            register_cert_alias=_text(body, "register_cert_alias", limit=128),
            valid_to=valid_to,
            clear_valid_to="valid_to" in body and body["valid_to"] is None,
            reason=_text(body, "reason"),
        )
        return agreement_json(changed)

    # An integration's part of the post-configuration (SF2250: how EP_SP1/EP_SP4 go out).

    def get_print_route(self, principal: Principal, agreement_uuid: str, **_: Any) -> Json:
        self._get_visible(principal, agreement_uuid)
        described: Json = part("agreement_print_route")(self.platform.db).describe(agreement_uuid)
        return described

    def set_print_route(
        self, principal: Principal, agreement_uuid: str, body: Json, **_: Any
    ) -> Json:
        principal.require(OPERATOR)
        self._get_visible(principal, agreement_uuid)
        route = _text(body, "print_route", limit=16)
        if route is None:
            raise InvalidAdminRequest("print_route is required (sf1600 or sf1601)")
        routes = part("agreement_print_route")(self.platform.db)
        routes.set_route(
            agreement_uuid,
            route,
            actor=principal.label,
            now=self.platform.clock(),
            # A route may need peers the settings lack; the integration says which.
            peers=self.platform.settings.peers,
            reason=_text(body, "reason"),
        )
        described: Json = routes.describe(agreement_uuid)
        return described

    # --- consumer systems ---------------------------------------------------------------

    def _own_system(self, principal: Principal, system_uuid: str) -> SystemView:
        """The system, if the principal may see it; a supplier sees only its own."""
        view = self.systems.get(system_uuid)
        if principal.role == SUPPLIER and view.system.supplier_cvr != principal.supplier_cvr:
            # The same answer as for an unknown id: no probing for other suppliers' systems.
            raise ConsumerSystemNotFound(system_uuid)
        return view

    def consumer_systems(self, principal: Principal, **_: Any) -> Json:
        supplier_cvr = principal.supplier_cvr if principal.role == SUPPLIER else None
        now = self.platform.clock()
        return {
            "consumer_systems": [
                system_json(v, now) for v in self.systems.find(supplier_cvr=supplier_cvr)
            ]
        }

    def get_consumer_system(self, principal: Principal, system_uuid: str, **_: Any) -> Json:
        view = self._own_system(principal, system_uuid)
        answer = system_json(view, self.platform.clock())
        answer["history"] = system_history_json(self.systems.history(system_uuid))
        return answer

    def register_consumer_system(self, principal: Principal, body: Json, **_: Any) -> Json:
        principal.require(OPERATOR, SUPPLIER)
        supplier_cvr = (
            principal.supplier_cvr
            if principal.role == SUPPLIER
            else _text(body, "supplier_cvr", required=True, limit=8)
        )
        view = self.systems.register(
            name=_text(body, "name", required=True, limit=255) or "",
            supplier_cvr=supplier_cvr or "",
            certificate_pem=_text(body, "certificate_pem", required=True, limit=64 * 1024) or "",
            actor=principal.label,
            reason=_text(body, "reason"),
            system_uuid=_text(body, "uuid", limit=36),
        )
        return system_json(view, self.platform.clock())

    def add_system_certificate(
        self, principal: Principal, system_uuid: str, body: Json, **_: Any
    ) -> Json:
        principal.require(OPERATOR, SUPPLIER)
        self._own_system(principal, system_uuid)
        keep = body.get("keep_current", False)
        if not isinstance(keep, bool):
            raise InvalidAdminRequest("keep_current must be true or false")
        days = body.get("overlap_days", DEFAULT_OVERLAP.days)
        if isinstance(days, bool) or not isinstance(days, int | float) or not 0 <= days <= 3650:
            raise InvalidAdminRequest("overlap_days must be a number of days, 0-3650")
        view = self.systems.add_certificate(
            system_uuid,
            _text(body, "certificate_pem", required=True, limit=64 * 1024) or "",
            actor=principal.label,
            overlap=None if keep else timedelta(days=days),
            reason=_text(body, "reason"),
        )
        return system_json(view, self.platform.clock())

    def set_system_state(
        self, principal: Principal, system_uuid: str, state: str, body: Json, **_: Any
    ) -> Json:
        principal.require(OPERATOR, SUPPLIER)
        self._own_system(principal, system_uuid)
        view = self.systems.set_active(
            system_uuid, state == "activate", actor=principal.label, reason=_text(body, "reason")
        )
        return system_json(view, self.platform.clock())

    # --- operations views ---------------------------------------------------------------

    def certificates(self, principal: Principal, **_: Any) -> Json:
        principal.require(OPERATOR)
        return {
            "certificates": [
                {
                    "alias": info.alias,
                    "subject": info.subject,
                    "issuer": info.issuer,
                    "not_after": _iso(info.not_after),
                    "days_to_expiry": info.days_to_expiry,
                    "status": _cert_status(info),
                    "problem": info.problem,
                }
                for info in self.platform.certificates.list()
            ]
        }

    def runs(self, principal: Principal, query: dict[str, str], **_: Any) -> Json:
        principal.require(OPERATOR, AUTHORITY_ADMIN)
        snapshots = part("list_snapshots")(self.platform.db).latest(_limit(query, 3))
        # An authority administrator sees its own authority's deliveries only.
        own = principal.authority_cvr if principal.role == AUTHORITY_ADMIN else None
        counts = Outbox(self.platform.db).counts(authority_cvr=own)
        return {
            "runs": [
                {
                    "authority_cvr": s.authority_cvr,
                    "list_date": s.list_date.isoformat(),
                    "state": s.state,
                    "entries": s.entry_count,
                    "subscribed": s.subscribed_count,
                    "unsubscribed": s.unsubscribed_count,
                    "completed_at": _iso(s.completed_at),
                }
                for s in snapshots
                if principal.may_administer(s.authority_cvr)
            ],
            "outbox": {
                "pending": counts.pending,
                "delivered": counts.delivered,
                "failing": counts.failing,
            },
        }

    def audit(self, principal: Principal, query: dict[str, str], **_: Any) -> Json:
        principal.require(OPERATOR, AUTHORITY_ADMIN)
        authority = query.get("authority_cvr") or None
        if principal.role == AUTHORITY_ADMIN:
            authority = principal.authority_cvr
        limit = _limit(query)
        # Read more than asked when filtering, so a busy other authority does not hide ours.
        entries = self.platform.audit.tail(limit if authority is None else limit * 20)
        if authority is not None:
            entries = [e for e in entries if e.authority_cvr == authority][:limit]
        return {
            "records": [
                {
                    "at": e.at.isoformat(),
                    "message_id": e.message_id,
                    "authority_cvr": e.authority_cvr,
                    "service": e.service,
                    "operation": e.operation,
                    "subject": mask_subject(e.subject),
                    "sysid": e.sysid,
                    "outcome": e.outcome,
                    "error_code": e.error_code,
                    "upstream_status": e.upstream_status,
                    "latency_ms": round(e.latency_ms, 1),
                    "detail": e.detail,
                }
                for e in entries
            ]
        }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _cert_status(info: CertInfo) -> str:
    days = info.days_to_expiry
    if days is not None and days < 0:
        return "expired"
    if info.problem:
        return "problem"
    if days is None:
        return "unknown"
    if days <= 30:
        return "expiring"
    return "ok"

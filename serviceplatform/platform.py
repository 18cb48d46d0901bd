"""The platform's services, built once per process from the settings.

``Platform`` is what integration handlers talk to: it authorizes and routes a call
(consumer system -> agreement -> SysIDs), hands out outbound transports by peer name, and
records audit entries. It owns every long-lived resource (database engine, outbound transports)
and closes them in ``close()``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cryptography import x509

from serviceplatform.call import PlatformCall
from serviceplatform.config import Settings
from serviceplatform.errors import (
    ConfigurationError,
    ConsumerSystemCertificateNotAccepted,
    ConsumerSystemDeactivated,
    ConsumerSystemUnknown,
)
from serviceplatform.outbound.base import Transport
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.registry import peer_factory
from serviceplatform.routing.model import Route
from serviceplatform.routing.resolve import resolve
from serviceplatform.security.validator import SecurityPolicy, TokenValidator
from serviceplatform.store.audit import AuditEntry, AuditLog
from serviceplatform.store.db import Database
from serviceplatform.store.replay import DbReplayCache
from serviceplatform.store.repository import RoutingRepository
from serviceplatform.store.routing_cache import RoutingCache, VersionHandoff


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _read_certificates(paths: Collection[str], settings: Settings) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    for raw in paths:
        path = settings.path(raw)
        try:
            certs.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"trusted STS certificate {path} cannot be read: {exc}"
            ) from exc
    return tuple(certs)


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = _utc_now,
        database: Database | None = None,
        business_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        #: The time of security checks, certificates, audit and storage.
        self.clock = clock
        #: The time business rules see (NemSMS sending hours). The same clock in production;
        #: tests move it to the edges of a rule without making tokens or certificates invalid.
        self.business_clock = business_clock or clock
        self.db = database or Database.from_settings(settings)
        self.routing = RoutingRepository(self.db)
        #: What calls are routed by: the routing tables in memory, checked per call.
        #: The routing version read by each call's replay insert, for its routing.
        handoff = VersionHandoff()
        self.routing_cache = RoutingCache(self.db, self.routing, handoff)
        self.audit = AuditLog(self.db)
        self.certificates = CertificateStore(
            settings.path(settings.certificates.directory), clock=clock
        )
        security = settings.security
        policy = SecurityPolicy(
            trusted_sts_certs=_read_certificates(security.trusted_sts_certs, settings),
            trusted_issuers=frozenset(security.trusted_issuers),
            clock_skew=_seconds(security.clock_skew_seconds),
            max_timestamp_lifetime=_seconds(security.max_timestamp_lifetime_seconds),
            replay_window=_seconds(security.replay_window_seconds),
            require_token_binding=security.require_token_binding,
        )
        self.validator = TokenValidator(
            policy, DbReplayCache(self.db, handoff=handoff), clock=clock
        )
        self._transports: dict[str, Transport] = {}
        self._lock = threading.Lock()

    # --- routing ------------------------------------------------------------------------

    def route(
        self, call: PlatformCall, *, required_roles: Collection[str], subject: str | None
    ) -> Route:
        """Authorize ``call`` by agreement and find its SysIDs; records what it learns."""
        security = call.security
        if security is None:
            raise ConfigurationError("a call is routed before its security was validated")
        facts = self.routing_cache.call_facts(
            holder_fingerprint=security.holder_fingerprint,
            authority_cvr=security.authority_cvr,
            service=call.service,
            subject=subject,
            message_id=security.message_id,
        )
        if facts.consumer_system is None or facts.certificate is None:
            raise ConsumerSystemUnknown(
                f"{security.holder_subject} (SHA-256 {security.holder_fingerprint})"
            )
        call.consumer_system = facts.consumer_system.uuid
        if not facts.consumer_system.active:
            raise ConsumerSystemDeactivated(facts.consumer_system.uuid)
        now = self.clock()
        if not facts.certificate.accepted_at(now):
            raise ConsumerSystemCertificateNotAccepted(
                f"SHA-256 {security.holder_fingerprint}, accepted {facts.certificate.window}"
            )
        return resolve(
            authority_cvr=security.authority_cvr,
            service=call.service,
            consumer_system=facts.consumer_system.uuid,
            subject=subject,
            agreements=facts.agreements,
            sysids=facts.sysids,
            required_roles=required_roles,
            today=now.date(),
            needs_certificate=_needs_certificate(call.service),
        )

    # --- outbound -----------------------------------------------------------------------

    def transport(self, peer: str) -> Transport:
        """The shared transport to ``peer`` (created on first use, reused by every thread),
        of the kind its ``[peers.<name>]`` section names."""
        transport = self._transports.get(peer)
        if transport is None:
            with self._lock:
                transport = self._transports.get(peer)
                if transport is None:
                    peer_settings = self.settings.peer(peer)
                    if peer_settings.ca_cert:
                        peer_settings = replace(
                            peer_settings, ca_cert=str(self.settings.path(peer_settings.ca_cert))
                        )
                    # By the peer's kind: the alias table names its transport's factory.
                    factory = peer_factory(peer_settings.kind)
                    transport = factory(peer, peer_settings, self.certificates)
                    self._transports[peer] = transport
        return transport

    # --- audit --------------------------------------------------------------------------

    def record(self, call: PlatformCall, *, detail: str | None = None) -> None:
        error = call.error
        self.audit.write(
            AuditEntry(
                at=call.received_at,
                message_id=call.message_id,
                authority_cvr=call.authority_cvr,
                consumer_system=call.consumer_system,
                service=call.service,
                operation=call.operation,
                subject=call.subject,
                sysid=call.sysid,
                upstream_status=call.upstream_status,
                outcome="ok" if error is None else "fault",
                error_code=error.code if error is not None else None,
                latency_ms=call.latency_ms(),
                detail=_audit_detail(call, detail),
            )
        )

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        self.db.dispose()


def _audit_detail(call: PlatformCall, detail: str | None) -> str | None:
    if detail is not None:
        return detail
    if call.detail is not None:
        return call.detail
    return call.error.error_text if call.error is not None else None


def _seconds(value: int) -> timedelta:
    return timedelta(seconds=value)


def _needs_certificate(service: str) -> bool:
    """Whether ``service``'s calls go out with the agreement's certificate (its Integration)."""
    from serviceplatform.registry import service_needs

    needs = service_needs().get(service)
    return needs is not None and needs.certificate

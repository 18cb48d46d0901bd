"""Decide where one call goes: the agreement that allows it and the SysIDs it uses. Pure.

The caller (the SOAP pipeline) fetches the candidate agreements and the SysIDs from the
repository and hands them in with today's date; this function only decides, so every branch
is testable without a database. The order of checks is the order of the faults a case
system should see: first whether it may call at all (agreement), then whether the platform
knows where to send it (route).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date

from serviceplatform.errors import (
    AgreementNotActive,
    CertificateUnavailable,
    NoAgreement,
    NoRoute,
)
from serviceplatform.routing.model import Agreement, AgreementStatus, Route
from serviceplatform.routing.needs import unmet_needs


def _describe(agreement: Agreement, today: date) -> str:
    if agreement.status is not AgreementStatus.APPROVED:
        return f"{agreement.uuid} is {agreement.status.value}"
    if agreement.valid_from is not None and today < agreement.valid_from:
        return f"{agreement.uuid} starts {agreement.valid_from.isoformat()}"
    # Approved, started and not active: it has a ``valid_to`` before today.
    return f"{agreement.uuid} ended {agreement.valid_to}"


def resolve(
    *,
    authority_cvr: str,
    service: str,
    consumer_system: str,
    subject: str | None,
    agreements: Sequence[Agreement],
    sysids: Mapping[str, str],
    required_roles: Collection[str],
    today: date,
    needs_certificate: bool = False,
) -> Route:
    """The route of one call, or the routing fault that forbids it.

    ``agreements`` may hold agreements of other authorities, services or systems; only those
    matching all three count. ``sysids`` is role -> SysID as the repository found it for the
    call's subject (subject rows already override authority-wide ones). ``subject`` is used
    only to word the fault, never echoed in it.

    Raises :class:`NoAgreement` when no agreement covers the call, :class:`AgreementNotActive`
    when the covering ones are not approved or outside their validity on ``today``, and
    :class:`NoRoute` naming the first missing role, and :class:`CertificateUnavailable` when
    the service calls out with a certificate (``needs_certificate``) and the agreement names
    none. What is missing is decided by :func:`~serviceplatform.routing.needs.unmet_needs`,
    the rule the admin views judge an agreement by.
    """
    matching = [
        a
        for a in agreements
        if a.authority_cvr == authority_cvr
        and a.service == service
        and a.consumer_system == consumer_system
    ]
    if not matching:
        raise NoAgreement(
            detail=f"authority {authority_cvr}, consumer system {consumer_system}, "
            f"service {service}"
        )
    active = [a for a in matching if a.active_on(today)]
    if not active:
        states = "; ".join(_describe(a, today) for a in sorted(matching, key=lambda a: a.uuid))
        raise AgreementNotActive(detail=f"authority {authority_cvr}, service {service}: {states}")
    # Several active agreements should not happen; pick the newest one deterministically.
    chosen = max(active, key=lambda a: (a.valid_from or date.min, a.uuid))
    unmet = unmet_needs(
        required_roles=required_roles,
        certificate=needs_certificate,
        sysids=sysids,
        cert_alias=chosen.register_cert_alias,
    )
    if unmet.roles:
        scope = "for this subject or authority-wide" if subject else "authority-wide"
        raise NoRoute(
            detail=f"authority {authority_cvr} has no SysID for role {unmet.roles[0]} of "
            f"service {service} ({scope})"
        )
    if unmet.certificate:
        # The register only talks mutual TLS: say so instead of failing the handshake.
        raise CertificateUnavailable(f"agreement {chosen.uuid} names no certificate")
    return Route(agreement=chosen, sysids=dict(sysids))

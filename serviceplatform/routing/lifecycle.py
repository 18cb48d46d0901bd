"""The service agreement's lifecycle (SPEC §3.4, steps TS106-TS111 and TSP06-TSP07).

A supplier *requests* an agreement for an authority, a consumer system and a service; the
authority *approves* or *rejects* it; an approved agreement can be *suspended* and
*resumed*, and *revoked* for good. Pure rules, no storage: ``store/agreements.py`` applies them.

::

    requested --approve--> approved --suspend--> suspended --resume--> approved
    requested --reject---> rejected
    approved | suspended --revoke--> revoked
"""

from __future__ import annotations

from typing import Final

from serviceplatform.errors import InvalidAdminRequest, InvalidTransition
from serviceplatform.routing.model import AgreementStatus

S = AgreementStatus

#: Action -> (statuses it may start from, status it leads to).
TRANSITIONS: Final[dict[str, tuple[frozenset[AgreementStatus], AgreementStatus]]] = {
    "approve": (frozenset({S.REQUESTED}), S.APPROVED),
    "reject": (frozenset({S.REQUESTED}), S.REJECTED),
    "suspend": (frozenset({S.APPROVED}), S.SUSPENDED),
    "resume": (frozenset({S.SUSPENDED}), S.APPROVED),
    "revoke": (frozenset({S.APPROVED, S.SUSPENDED}), S.REVOKED),
}
#: Actions that take something away from a caller must say why.
REASON_REQUIRED: Final = frozenset({"reject", "suspend", "revoke"})


def next_status(current: AgreementStatus, action: str, reason: str | None) -> AgreementStatus:
    """The status ``action`` leads to from ``current``; raises the admin errors otherwise."""
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise InvalidAdminRequest(f"unknown action {action!r}")
    sources, target = rule
    if current not in sources:
        raise InvalidTransition(f"{action} from {current.value}")
    if action in REASON_REQUIRED and not (reason or "").strip():
        raise InvalidAdminRequest(f"{action} needs a reason")
    return target


def allowed_actions(current: AgreementStatus) -> list[str]:
    return [action for action, (sources, _) in TRANSITIONS.items() if current in sources]

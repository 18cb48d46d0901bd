"""Which way an agreement's EP_SP1/EP_SP4 calls go out: ``sf1600`` or ``sf1601``.

Part of the agreement's post-configuration, kept by SF2250 in its own table
(``print_routes``; no row: ``sf1600``, the way every agreement went before SF1601):

- ``sf1600``: to the NemSMS register (EP_NS1/EP_NS4) with the agreement's client certificate;
- ``sf1601``: to SF1601 (PostForespoerg, KombiPostAfsend) with a holder-of-key access token
  for the authority, bound to the agreement's certificate.

The credential follows from the route (the register takes certificates only, SF1601 tokens
only), so the route is the one choice stored. A change is audited as an event of the
agreement (action ``print_route``) in the same transaction.

``sf1601`` is chosen only while the settings have the peers its calls need (``[peers.sts]``
and ``[peers.sf1601]``, docs/sf1601.md): without them every call would fail with SP-901. An
agreement set to ``sf1601`` before keeps its route; only the change is refused.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Final, Literal, get_args

from sqlalchemy import delete, insert, select

from integrations.sf2250.tables import print_routes
from serviceplatform.errors import AgreementNotFound, InvalidAdminRequest
from serviceplatform.store.agreements import append_agreement_event
from serviceplatform.store.db import Database
from serviceplatform.store.models import agreements

PrintRoute = Literal["sf1600", "sf1601"]
#: The only service whose agreements have a print route (SF1600 Print, as SF2250 uses it).
PRINT_SERVICE: Final = "sf1600"
ROUTES: Final[tuple[str, ...]] = get_args(PrintRoute)
DEFAULT_ROUTE: Final[PrintRoute] = "sf1600"
#: The credential each route's calls show.
CREDENTIALS: Final[dict[str, str]] = {"sf1600": "certificate", "sf1601": "token"}
#: The ``[peers.<name>]`` sections each route's calls need besides the register's.
NEEDED_PEERS: Final[dict[str, tuple[str, ...]]] = {"sf1600": (), "sf1601": ("sts", "sf1601")}


def missing_peers_problem(route: str, peers: Collection[str]) -> str | None:
    """Why ``route`` cannot be chosen with the configured ``peers``; None when it can."""
    missing = [name for name in NEEDED_PEERS.get(route, ()) if name not in peers]
    if not missing:
        return None
    sections = " and ".join(f"[peers.{name}]" for name in missing)
    return (
        f"print route {route} needs {sections} in the settings, and they have no such "
        "section (docs/sf1601.md): every call would fail with SP-901; the route is unchanged"
    )


class PrintRoutes:
    def __init__(self, db: Database) -> None:
        self._db = db

    def route_of(self, agreement_uuid: str) -> PrintRoute:
        """The agreement's route (``sf1600`` when none was chosen)."""
        return "sf1601" if self.chosen(agreement_uuid) == "sf1601" else DEFAULT_ROUTE

    def describe(self, agreement_uuid: str) -> dict[str, str | bool]:
        """The route, the credential it implies, and whether it was chosen (else the default).

        Unknown agreement: SP-603 (not the default route of an agreement that is not there).
        """
        with self._db.transaction() as connection:
            found = connection.execute(
                select(agreements.c.uuid).where(agreements.c.uuid == agreement_uuid)
            ).first()
        if found is None:
            raise AgreementNotFound(agreement_uuid)
        route = self.route_of(agreement_uuid)
        return {
            "agreement": agreement_uuid,
            "print_route": route,
            "credential": CREDENTIALS[route],
            "chosen": self.chosen(agreement_uuid) is not None,
        }

    def chosen(self, agreement_uuid: str) -> str | None:
        """The route chosen for the agreement, None when none was."""
        with self._db.transaction() as connection:
            value: str | None = connection.execute(
                select(print_routes.c.route).where(print_routes.c.agreement_uuid == agreement_uuid)
            ).scalar_one_or_none()
        return value

    def set_route(
        self,
        agreement_uuid: str,
        route: str,
        *,
        actor: str,
        now: datetime,
        peers: Collection[str],
        reason: str | None = None,
    ) -> None:
        """Choose ``route`` for the agreement; audited. Unknown agreement: SP-603; an agreement
        of another service than ``sf1600`` (whose calls never use the route), or ``sf1601``
        while ``peers`` (the names of the configured ``[peers.<name>]``) lack one it needs:
        SP-605."""
        if route not in ROUTES:
            raise InvalidAdminRequest(f"print route {route!r} (one of {', '.join(ROUTES)})")
        with self._db.transaction(write_first=True) as connection:
            found = connection.execute(
                select(agreements.c.status, agreements.c.service).where(
                    agreements.c.uuid == agreement_uuid
                )
            ).first()
            if found is None:
                raise AgreementNotFound(agreement_uuid)
            status, service = found
            if service != PRINT_SERVICE:
                raise InvalidAdminRequest(
                    f"agreement {agreement_uuid} is of service {service}: only an "
                    f"{PRINT_SERVICE} agreement has a print route"
                )
            # After the agreement's own checks: an unknown one is SP-603 whatever the route.
            problem = missing_peers_problem(route, peers)
            if problem is not None:
                raise InvalidAdminRequest(problem)
            connection.execute(
                delete(print_routes).where(print_routes.c.agreement_uuid == agreement_uuid)
            )
            connection.execute(
                insert(print_routes).values(
                    agreement_uuid=agreement_uuid, route=route, updated_at=now, updated_by=actor
                )
            )
            details = {"print_route": route, "credential": CREDENTIALS[route]}
            append_agreement_event(
                connection,
                agreement_uuid,
                now,
                actor,
                "print_route",
                status,
                status,
                reason,
                details,
            )

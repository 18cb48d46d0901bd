"""The sandbox's SF1601 side: the simulated STS and SF1601 host, and who uses them.

Authority B (29189854) sends its SF2250 print calls (EP_SP1/EP_SP4) through SF1601: its
``sf1600`` agreement gets the print route ``sf1601`` when it has none yet (a route an
operator chose later is kept). Authority A stays on the NemSMS register, so both routes
run side by side. ``sandbox.json`` lists the two peers under ``peers.sts`` and
``peers.sf1601`` and each authority's ``print_route`` (``docs/sandbox.md``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Final

from integrations.sf2250.print_routes import PrintRoutes
from serviceplatform.sandbox.kombi_sts import IssuedTokens, SimulatedSts
from serviceplatform.sandbox.pki import Pki
from serviceplatform.sandbox.sf1601_service import SimulatedSf1601
from serviceplatform.store.db import Database

#: Authority B's SF1600 Print agreement (routing_tables/agreements.toml).
SF1601_AGREEMENT: Final = "b7e2d9a4-5c3f-4f1a-8e6d-2a9c4b7e1f02"
#: The service whose agreements carry a print route.
PRINT_SERVICE: Final = "sf1600"
#: A citizen the simulated SF1601 host knows as registered for NemSMS from the start.
NEMSMS_CITIZEN: Final = "0101901234"


def kombi_peers(pki: Pki) -> tuple[SimulatedSts, SimulatedSf1601]:
    """The simulated STS and SF1601 host (not started), trusting each other's tokens."""
    issued = IssuedTokens()
    sts = SimulatedSts(
        server_cert=pki.nemsms_server_cert,
        server_key=pki.nemsms_server_key,
        client_ca=pki.ca_cert,
        sts_cert=pki.sts_cert,
        sts_key=pki.sts_key,
        issued=issued,
    )
    sf1601 = SimulatedSf1601(
        server_cert=pki.nemsms_server_cert,
        server_key=pki.nemsms_server_key,
        client_ca=pki.ca_cert,
        issued=issued,
        nemsms_recipients={NEMSMS_CITIZEN},
    )
    return sts, sf1601


def ensure_sf1601_route(database: Database, actor: str, peers: Collection[str]) -> None:
    """Authority B's print agreement on SF1601, unless a route was chosen for it already."""
    routes = PrintRoutes(database)
    if routes.chosen(SF1601_AGREEMENT) is None:
        routes.set_route(
            SF1601_AGREEMENT,
            "sf1601",
            actor=actor,
            now=datetime.now(UTC),
            peers=peers,
            reason="the sandbox's second authority uses SF1601",
        )


def print_route(database: Database, agreement_uuid: str) -> str:
    return PrintRoutes(database).route_of(agreement_uuid)

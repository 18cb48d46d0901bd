"""The sandbox's OOTS sample data: approved, configured OOTS agreements for authorities A and B.

Authority A's requests go through the simulated gateway's Domibus WS plugin (``domibus-ws``),
authority B's through the platform's own AS4 access point (``as4``), side by side.

The agreement is not in ``routing_tables/agreements.toml`` (whose sample agreements other
tools and tests count); the sandbox adds it to the database on its first run. Its
post-configuration, the OOTS identifier of role ``oots_requester``, is the authority's row of
``routing_tables/oots.csv``.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from serviceplatform.routing.model import Agreement, AgreementStatus

#: The consumer system of ``routing_tables/agreements.toml`` (the sandbox case system).
SANDBOX_CONSUMER_SYSTEM: Final = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
#: Sample authority A.
OOTS_AUTHORITY: Final = "29189846"
OOTS_AGREEMENT: Final = Agreement(
    uuid="3e5b8c1d-7a2f-4d96-b0e4-5c9a1f3d7b60",
    authority_cvr=OOTS_AUTHORITY,
    service="oots",
    consumer_system=SANDBOX_CONSUMER_SYSTEM,
    supplier="Sandbox Supplier",
    status=AgreementStatus.APPROVED,
    valid_from=date(2024, 1, 1),
)
#: The name authority A has as an OOTS Evidence Requester (``[oots.requesters.<CVR>]``).
OOTS_AUTHORITY_NAME: Final = "Sandbox Kommune A"

#: Sample authority B: its evidence requests go over AS4 (``gateway = "as4"``).
OOTS_AUTHORITY_B: Final = "29189854"
OOTS_AGREEMENT_B: Final = Agreement(
    uuid="8c41e2a7-5d0b-4f3e-9a6c-2b7d9e1f4a83",
    authority_cvr=OOTS_AUTHORITY_B,
    service="oots",
    consumer_system=SANDBOX_CONSUMER_SYSTEM,
    supplier="Sandbox Supplier",
    status=AgreementStatus.APPROVED,
    valid_from=date(2024, 1, 1),
)
OOTS_AUTHORITY_B_NAME: Final = "Sandbox Kommune B"
#: Which gateway each sample authority's OOTS requests take (``[oots.requesters.<CVR>]``).
OOTS_GATEWAYS: Final = {OOTS_AUTHORITY: "domibus-ws", OOTS_AUTHORITY_B: "as4"}
#: The certificate store alias of the platform's own AS4 key (``[oots.as4] signing_alias``).
PLATFORM_AS4_ALIAS: Final = "oots-as4"
#: Where the platform's AS4 access point takes the pushed answers (``[oots.as4] receive_path``).
PLATFORM_AS4_PATH: Final = "/oots/as4"

"""The sandbox's OOTS sample data: an approved, configured OOTS agreement for authority A.

The agreement is not in ``routing_tables/agreements.toml`` (whose sample agreements other
tools and tests count); the sandbox adds it to the database on its first run. Its
post-configuration, the OOTS identifier of role ``oots_requester``, is the row of
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

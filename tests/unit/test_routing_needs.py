"""One rule for "does this agreement route": the router's and the admin views' answers agree.

An OOTS agreement needs its requester SysID and no outward certificate; an SF2250 agreement
needs its register SysID and a certificate. The needs come from the real integrations'
declarations (``registry.service_needs``).
"""

from __future__ import annotations

from datetime import date

import pytest

from serviceplatform.errors import CertificateUnavailable, NoRoute
from serviceplatform.registry import service_needs
from serviceplatform.routing.model import Agreement, AgreementStatus
from serviceplatform.routing.needs import Unmet, unmet_needs
from serviceplatform.routing.resolve import resolve
from serviceplatform.store.agreements import AgreementStore
from serviceplatform.store.db import Database
from serviceplatform.store.systems import SystemStore
from tests.certificates import make_cert

A = "29189846"
SYSTEM = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"


def test_unmet_needs_names_missing_roles_and_a_missing_certificate() -> None:
    assert not unmet_needs(
        required_roles={"register"}, certificate=True, sysids={"register": "1"}, cert_alias="r"
    )
    unmet = unmet_needs(
        required_roles={"nemsms", "afsender"}, certificate=True, sysids={}, cert_alias=None
    )
    assert unmet == Unmet(roles=("afsender", "nemsms"), certificate=True)
    assert unmet.describe() == [
        "SysID for role afsender",
        "SysID for role nemsms",
        "outward certificate",
    ]
    assert not unmet_needs(required_roles=(), certificate=False, sysids={}, cert_alias=None)


def test_the_integrations_declare_which_services_call_out_with_a_certificate() -> None:
    needs = service_needs()
    assert (needs["oots"].certificate, needs["oots"].required_roles) == (
        False,
        frozenset({"oots_requester"}),
    )
    assert needs["sf2250"].certificate and needs["sf1600"].certificate


def _agreement(service: str, alias: str | None) -> Agreement:
    return Agreement(
        uuid="9d3d53a2-af28-4372-9c0a-25550c8d048a",
        authority_cvr=A,
        service=service,
        consumer_system=SYSTEM,
        supplier="Supplier",
        status=AgreementStatus.APPROVED,
        register_cert_alias=alias,
        valid_from=date(2024, 1, 1),
    )


def _route(service: str, alias: str | None, sysids: dict[str, str]) -> None:
    needs = service_needs()[service]
    resolve(
        authority_cvr=A,
        service=service,
        consumer_system=SYSTEM,
        subject=None,
        agreements=[_agreement(service, alias)],
        sysids=sysids,
        required_roles=needs.required_roles,
        today=date(2025, 6, 1),
        needs_certificate=needs.certificate,
    )


def test_the_router_refuses_a_certificate_service_without_a_certificate() -> None:
    _route("oots", None, {"oots_requester": "DK/123"})
    _route("sf2250", "reg", {"register": "2250001"})
    with pytest.raises(CertificateUnavailable) as caught:
        _route("sf2250", None, {"register": "2250001"})
    assert caught.value.code == "SP-420"
    with pytest.raises(NoRoute):
        _route("oots", None, {})


@pytest.mark.parametrize(
    ("service", "sysids", "alias", "routable", "missing"),
    [
        ("oots", {"oots_requester": "DK-0123"}, None, True, []),
        ("oots", {}, None, False, ["SysID for role oots_requester"]),
        ("sf2250", {"register": "2250001"}, None, False, ["outward certificate"]),
        ("sf2250", {"register": "2250001"}, "reg", True, []),
    ],
)
def test_the_admin_view_says_routable_by_the_same_rule(
    database: Database,
    service: str,
    sysids: dict[str, str],
    alias: str | None,
    routable: bool,
    missing: list[str],
) -> None:
    SystemStore(database).register(
        name="Case", supplier_cvr="12345674", certificate_pem=make_cert().pem.decode(),
        actor="t", system_uuid=SYSTEM,
    )  # fmt: skip
    store = AgreementStore(database, service_needs())
    view = store.request(
        authority_cvr=A, service=service, consumer_system=SYSTEM, supplier="S", actor="t"
    )
    uuid = view.agreement.uuid
    store.configure(uuid, actor="t", sysids=sysids, register_cert_alias=alias)
    view = store.transition(uuid, "approve", actor="t")
    assert (view.routable, view.missing) == (routable, missing)
    # The router decides the same for this agreement with these SysIDs.
    try:
        _route(service, alias, sysids)
        routed = True
    except (NoRoute, CertificateUnavailable):
        routed = False
    assert routed == routable

"""Routes, consumer systems and agreements in the database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from serviceplatform.errors import StorageError
from serviceplatform.routing.model import Agreement, AgreementStatus, ConsumerSystem, RouteRow
from serviceplatform.store.db import Database
from serviceplatform.store.repository import RoutingRepository
from serviceplatform.store.systems import SystemStore
from tests.certificates import make_cert

A, B = "29189846", "29189854"
CPR = "0101901234"
SYSTEM = ConsumerSystem(
    uuid="0d7fcabb-3505-4065-a006-d48b1cf50cc2", name="Case system", supplier_cvr="12345674"
)
AGREEMENT = Agreement(
    uuid="9d3d53a2-af28-4372-9c0a-25550c8d048a",
    authority_cvr=A,
    service="sf2250",
    consumer_system=SYSTEM.uuid,
    supplier="Supplier",
    status=AgreementStatus.APPROVED,
    register_cert_alias="platform-register",
    valid_from=date(2024, 1, 1),
)


def _row(authority: str, role: str, sysid: str, subject: str | None = None) -> RouteRow:
    return RouteRow(authority, "sf2250", role, sysid, subject, source=f"t.csv:{sysid}")


BASE = [_row(A, "register", "1"), _row(A, "nemsms", "2"), _row(B, "register", "3")]


def test_replace_routes_into_an_empty_table(database: Database) -> None:
    repo = RoutingRepository(database)
    change = repo.replace_routes(BASE)
    assert (change.added, change.removed, change.changed, change.unchanged) == (3, 0, 0, 0)
    assert set(repo.list_routes()) == set(BASE)


def test_replace_routes_reports_added_removed_changed(database: Database) -> None:
    repo = RoutingRepository(database)
    repo.replace_routes(BASE)
    new = [_row(A, "register", "1"), _row(A, "nemsms", "22"), _row(A, "register", "9", CPR)]
    change = repo.replace_routes(new)
    assert (change.added, change.removed, change.changed, change.unchanged) == (1, 1, 1, 1)
    assert change.added_rows == (new[2],)
    assert change.removed_rows == (BASE[2],)
    assert change.changed_rows == ((BASE[1], new[1]),)
    assert change.any
    assert set(repo.list_routes()) == set(new)
    assert not repo.replace_routes(new).any


def test_a_failing_replace_leaves_the_old_table(database: Database) -> None:
    repo = RoutingRepository(database)
    repo.replace_routes(BASE)
    duplicate = [_row(A, "register", "7"), _row(B, "nemsms", "8"), _row(B, "nemsms", "9")]
    with pytest.raises(StorageError):
        repo.replace_routes(duplicate)
    assert set(repo.list_routes()) == set(BASE)


def test_replace_with_nothing_empties_the_table(database: Database) -> None:
    repo = RoutingRepository(database)
    repo.replace_routes(BASE)
    assert repo.replace_routes([]).removed == 3
    assert repo.list_routes() == []


def test_list_routes_is_sorted_and_filters_by_authority(database: Database) -> None:
    repo = RoutingRepository(database)
    repo.replace_routes(list(reversed(BASE)))
    assert repo.list_routes() == [BASE[1], BASE[0], BASE[2]]
    assert repo.list_routes(B) == [BASE[2]]
    assert repo.list_routes("12345674") == []


def test_sysids_subject_rows_override_authority_rows(database: Database) -> None:
    repo = RoutingRepository(database)
    repo.replace_routes([*BASE, _row(A, "register", "901", CPR), _row(A, "afsender", "4", CPR)])
    assert repo.sysids(A, "sf2250", None) == {"register": "1", "nemsms": "2"}
    assert repo.sysids(A, "sf2250", "0202901234") == {"register": "1", "nemsms": "2"}
    assert repo.sysids(A, "sf2250", CPR) == {"register": "901", "nemsms": "2", "afsender": "4"}
    assert repo.sysids(B, "sf2250", CPR) == {"register": "3"}
    assert repo.sysids(A, "other", None) == {}
    assert repo.sysids("12345674", "sf2250", None) == {}


def test_subject_is_stored_as_empty_text_and_read_back_as_none(database: Database) -> None:
    repo = RoutingRepository(database)
    repo.replace_routes([_row(A, "register", "1")])
    (row,) = repo.list_routes()
    assert row.subject is None
    assert row.source == "t.csv:1"


def test_agreements_upsert_update_and_query(database: Database) -> None:
    repo = RoutingRepository(database)
    SystemStore(database).register(
        name=SYSTEM.name,
        supplier_cvr=SYSTEM.supplier_cvr,
        certificate_pem=make_cert().pem,
        actor="test",
        system_uuid=SYSTEM.uuid,
    )
    other = replace(AGREEMENT, uuid="5c7cdb9a-1b4f-43c1-a006-6ceeda4af3f5", authority_cvr=B)
    repo.upsert_agreement(AGREEMENT)
    repo.upsert_agreement(other)
    assert repo.agreements_for(A, "sf2250", SYSTEM.uuid) == [AGREEMENT]
    assert repo.agreements_for(A, "sf1600", SYSTEM.uuid) == []
    assert repo.agreements_for(A, "sf2250", "a077fd5c-964b-4d3d-a712-9d670d91680a") == []
    suspended = replace(AGREEMENT, status=AgreementStatus.SUSPENDED, valid_to=date(2030, 1, 1))
    repo.upsert_agreement(suspended)
    assert repo.agreements_for(A, "sf2250", SYSTEM.uuid) == [suspended]
    assert repo.list_agreements() == [suspended, other]


def test_an_agreement_needs_an_existing_consumer_system(database: Database) -> None:
    with pytest.raises(StorageError):
        RoutingRepository(database).upsert_agreement(AGREEMENT)

"""The per-process routing cache: version triggers, reloads, facts equal to the database's."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import text, update

from serviceplatform.errors import StorageError
from serviceplatform.routing.model import Agreement, AgreementStatus, ConsumerSystem, RouteRow
from serviceplatform.store.db import Database
from serviceplatform.store.models import agreements, routing_version
from serviceplatform.store.repository import RoutingData, RoutingRepository
from serviceplatform.store.routing_cache import RoutingCache

A, B = "29189846", "29189854"
CPR = "0101901234"
SYSTEM = ConsumerSystem(
    uuid="0d7fcabb-3505-4065-a006-d48b1cf50cc2", name="Case system", cert_subject="CN=case,C=DK"
)
OTHER_SYSTEM = ConsumerSystem(
    uuid="a077fd5c-964b-4d3d-a712-9d670d91680a", name="Other", cert_subject="CN=other,C=DK"
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
ROWS = [
    RouteRow(A, "sf2250", "register", "1", None, source="t.csv:1"),
    RouteRow(A, "sf2250", "nemsms", "2", None, source="t.csv:2"),
    RouteRow(A, "sf2250", "register", "9", CPR, source="t.csv:3"),
    RouteRow(B, "sf2250", "register", "3", None, source="t.csv:4"),
]


class CountingRepository(RoutingRepository):
    """Counts full reloads, so a test can tell a cache hit from a reload."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.loads = 0

    def routing_data(self) -> RoutingData:
        self.loads += 1
        return super().routing_data()


def _seed(repo: RoutingRepository) -> None:
    repo.upsert_consumer_system(SYSTEM)
    repo.upsert_consumer_system(OTHER_SYSTEM)
    repo.upsert_agreement(AGREEMENT)
    repo.replace_routes(ROWS)


def _version(db: Database) -> int:
    with db.transaction() as connection:
        return int(connection.execute(text("SELECT version FROM routing_version")).scalar_one())


def test_every_kind_of_routing_write_bumps_the_version(database: Database) -> None:
    repo = RoutingRepository(database)
    before = _version(database)
    repo.upsert_consumer_system(SYSTEM)
    after_system = _version(database)
    assert after_system > before
    repo.upsert_agreement(AGREEMENT)
    after_agreement = _version(database)
    assert after_agreement > after_system
    repo.replace_routes(ROWS)
    after_routes = _version(database)
    assert after_routes > after_agreement
    # A statement written by hand, outside the repository, is seen too.
    with database.transaction() as connection:
        connection.execute(update(agreements).values(status=AgreementStatus.REVOKED.value))
    after_update = _version(database)
    assert after_update > after_routes
    repo.replace_routes([])
    assert _version(database) > after_update


def test_reads_and_failed_writes_leave_the_version(database: Database) -> None:
    repo = RoutingRepository(database)
    _seed(repo)
    seen = _version(database)
    repo.list_routes()
    repo.list_agreements()
    repo.routing_data()
    assert _version(database) == seen
    orphan = replace(AGREEMENT, uuid="6b1c2c8e-0b7a-4f40-9f2e-8a1f4b6f7a10", consumer_system="none")
    with pytest.raises(StorageError):
        repo.upsert_agreement(orphan)  # no such consumer system: rolled back with its bump
    assert _version(database) == seen


@pytest.mark.parametrize(
    ("holder", "authority", "service", "subject"),
    [
        (SYSTEM.cert_subject, A, "sf2250", None),
        (SYSTEM.cert_subject, A, "sf2250", CPR),  # the subject's own row overrides
        (SYSTEM.cert_subject, A, "sf2250", "0202901234"),
        (SYSTEM.cert_subject, B, "sf2250", None),  # SysIDs, but no agreement
        (SYSTEM.cert_subject, A, "sf1600", None),  # no agreement, no SysIDs
        (OTHER_SYSTEM.cert_subject, A, "sf2250", None),  # another system's agreements
        ("CN=unknown,C=DK", A, "sf2250", None),
    ],
)
def test_cached_facts_equal_the_database_facts(
    database: Database, holder: str, authority: str, service: str, subject: str | None
) -> None:
    repo = RoutingRepository(database)
    _seed(repo)
    cache = RoutingCache(database, repo)
    from_cache = cache.call_facts(
        holder_subject=holder, authority_cvr=authority, service=service, subject=subject
    )
    from_db = repo.call_facts(
        holder_subject=holder, authority_cvr=authority, service=service, subject=subject
    )
    assert from_cache == from_db


def test_unchanged_data_is_not_reloaded_and_a_change_is_seen_on_the_next_call(
    database: Database, database_url: str
) -> None:
    repo = CountingRepository(database)
    _seed(repo)
    cache = RoutingCache(database, repo)
    first = cache.call_facts(
        holder_subject=SYSTEM.cert_subject, authority_cvr=A, service="sf2250", subject=None
    )
    assert first.sysids == {"register": "1", "nemsms": "2"}
    assert [a.status for a in first.agreements] == [AgreementStatus.APPROVED]
    cache.call_facts(
        holder_subject=SYSTEM.cert_subject, authority_cvr=A, service="sf2250", subject=None
    )
    assert repo.loads == 1

    # Another process (its own engine) revokes the agreement and changes a SysID.
    other = Database(database_url)
    try:
        other_repo = RoutingRepository(other)
        other_repo.upsert_agreement(replace(AGREEMENT, status=AgreementStatus.REVOKED))
        other_repo.replace_routes([replace(ROWS[0], sysid="11"), *ROWS[1:]])
    finally:
        other.dispose()

    after = cache.call_facts(
        holder_subject=SYSTEM.cert_subject, authority_cvr=A, service="sf2250", subject=None
    )
    assert after.sysids["register"] == "11"
    assert [a.status for a in after.agreements] == [AgreementStatus.REVOKED]
    assert repo.loads == 2


def test_facts_handed_out_cannot_change_the_cache(database: Database) -> None:
    repo = RoutingRepository(database)
    _seed(repo)
    cache = RoutingCache(database, repo)
    facts = cache.call_facts(
        holder_subject=SYSTEM.cert_subject, authority_cvr=A, service="sf2250", subject=None
    )
    facts.sysids["register"] = "tampered"
    facts.agreements.clear()
    again = cache.call_facts(
        holder_subject=SYSTEM.cert_subject, authority_cvr=A, service="sf2250", subject=None
    )
    assert again.sysids["register"] == "1"
    assert len(again.agreements) == 1


def test_a_missing_version_row_is_a_storage_error(database: Database) -> None:
    cache = RoutingCache(database, RoutingRepository(database))
    with database.transaction() as connection:
        connection.execute(routing_version.delete())
    with pytest.raises(StorageError, match="routing version"):
        cache.call_facts(
            holder_subject=SYSTEM.cert_subject, authority_cvr=A, service="sf2250", subject=None
        )

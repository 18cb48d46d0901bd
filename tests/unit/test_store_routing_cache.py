"""The per-process routing cache: version triggers, reloads, facts equal to the database's."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text, update

from serviceplatform.errors import StorageError
from serviceplatform.routing.model import Agreement, AgreementStatus, ConsumerSystem, RouteRow
from serviceplatform.store.db import Database
from serviceplatform.store.models import agreements, routing_version, system_certificates
from serviceplatform.store.replay import DbReplayCache
from serviceplatform.store.repository import RoutingData, RoutingRepository
from serviceplatform.store.routing_cache import RoutingCache, VersionHandoff
from serviceplatform.store.systems import SystemStore
from tests.certificates import MadeCert, make_cert

A, B = "29189846", "29189854"
CPR = "0101901234"
SYSTEM = ConsumerSystem(
    uuid="0d7fcabb-3505-4065-a006-d48b1cf50cc2", name="Case system", supplier_cvr="12345674"
)
OTHER_SYSTEM = ConsumerSystem(
    uuid="a077fd5c-964b-4d3d-a712-9d670d91680a", name="Other", supplier_cvr="12345674"
)
SYSTEM_CERT = make_cert("CN=case,C=DK")
OTHER_CERT = make_cert("CN=other,C=DK")
#: The same subject as SYSTEM's certificate, from another CA: another certificate.
LOOKALIKE_CERT = make_cert("CN=case,C=DK")
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


def _register(database: Database, system: ConsumerSystem, cert: MadeCert) -> None:
    SystemStore(database).register(
        name=system.name,
        supplier_cvr=system.supplier_cvr,
        certificate_pem=cert.pem,
        actor="test",
        system_uuid=system.uuid,
    )


def _seed(repo: RoutingRepository, database: Database) -> None:
    _register(database, SYSTEM, SYSTEM_CERT)
    _register(database, OTHER_SYSTEM, OTHER_CERT)
    repo.upsert_agreement(AGREEMENT)
    repo.replace_routes(ROWS)


def _version(db: Database) -> int:
    with db.transaction() as connection:
        return int(connection.execute(text("SELECT version FROM routing_version")).scalar_one())


def test_every_kind_of_routing_write_bumps_the_version(database: Database) -> None:
    repo = RoutingRepository(database)
    before = _version(database)
    _register(database, SYSTEM, SYSTEM_CERT)
    after_system = _version(database)
    assert after_system > before
    # Certificates have their own table: a rotation alone must bump the version too.
    SystemStore(database).add_certificate(
        SYSTEM.uuid, OTHER_CERT.pem, actor="test", overlap=timedelta(days=1)
    )
    after_certificate = _version(database)
    assert after_certificate > after_system
    with database.transaction() as connection:
        connection.execute(update(system_certificates).values(accepted_until=None))
    assert _version(database) > after_certificate
    after_system = _version(database)
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
    _seed(repo, database)
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
        (SYSTEM_CERT.fingerprint, A, "sf2250", None),
        (SYSTEM_CERT.fingerprint, A, "sf2250", CPR),  # the subject's own row overrides
        (SYSTEM_CERT.fingerprint, A, "sf2250", "0202901234"),
        (SYSTEM_CERT.fingerprint, B, "sf2250", None),  # SysIDs, but no agreement
        (SYSTEM_CERT.fingerprint, A, "sf1600", None),  # no agreement, no SysIDs
        (OTHER_CERT.fingerprint, A, "sf2250", None),  # another system's agreements
        (LOOKALIKE_CERT.fingerprint, A, "sf2250", None),  # same subject, another CA
    ],
    # The certificates are made per process: ids without their fingerprints, so that every
    # xdist worker collects the same tests.
    ids=[
        "agreement",
        "subject-row",
        "other-subject",
        "sysids-no-agreement",
        "no-agreement",
        "other-system",
        "lookalike-ca",
    ],
)
def test_cached_facts_equal_the_database_facts(
    database: Database, holder: str, authority: str, service: str, subject: str | None
) -> None:
    repo = RoutingRepository(database)
    _seed(repo, database)
    cache = RoutingCache(database, repo)
    from_cache = cache.call_facts(
        holder_fingerprint=holder, authority_cvr=authority, service=service, subject=subject
    )
    from_db = repo.call_facts(
        holder_fingerprint=holder, authority_cvr=authority, service=service, subject=subject
    )
    assert from_cache == from_db
    # The parameters above must tell a known certificate from an unknown one.
    assert (from_db.consumer_system is None) == (holder == LOOKALIKE_CERT.fingerprint)


def test_unchanged_data_is_not_reloaded_and_a_change_is_seen_on_the_next_call(
    database: Database, database_url: str
) -> None:
    repo = CountingRepository(database)
    _seed(repo, database)
    cache = RoutingCache(database, repo)
    first = cache.call_facts(
        holder_fingerprint=SYSTEM_CERT.fingerprint, authority_cvr=A, service="sf2250", subject=None
    )
    assert first.sysids == {"register": "1", "nemsms": "2"}
    assert [a.status for a in first.agreements] == [AgreementStatus.APPROVED]
    cache.call_facts(
        holder_fingerprint=SYSTEM_CERT.fingerprint, authority_cvr=A, service="sf2250", subject=None
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
        holder_fingerprint=SYSTEM_CERT.fingerprint, authority_cvr=A, service="sf2250", subject=None
    )
    assert after.sysids["register"] == "11"
    assert [a.status for a in after.agreements] == [AgreementStatus.REVOKED]
    assert repo.loads == 2


def test_facts_handed_out_cannot_change_the_cache(database: Database) -> None:
    repo = RoutingRepository(database)
    _seed(repo, database)
    cache = RoutingCache(database, repo)
    facts = cache.call_facts(
        holder_fingerprint=SYSTEM_CERT.fingerprint, authority_cvr=A, service="sf2250", subject=None
    )
    facts.sysids["register"] = "tampered"
    facts.agreements.clear()
    again = cache.call_facts(
        holder_fingerprint=SYSTEM_CERT.fingerprint, authority_cvr=A, service="sf2250", subject=None
    )
    assert again.sysids["register"] == "1"
    assert len(again.agreements) == 1


def test_a_missing_version_row_is_a_storage_error(database: Database) -> None:
    cache = RoutingCache(database, RoutingRepository(database))
    with database.transaction() as connection:
        connection.execute(routing_version.delete())
    with pytest.raises(StorageError, match="routing version"):
        cache.call_facts(
            holder_fingerprint=SYSTEM_CERT.fingerprint,
            authority_cvr=A,
            service="sf2250",
            subject=None,
        )


def test_routing_takes_the_version_its_replay_insert_read_and_no_other(
    database: Database, database_url: str
) -> None:
    """The replay insert's version stands in for the SELECT only for the same MessageID."""
    repo = CountingRepository(database)
    _seed(repo, database)
    handoff = VersionHandoff()
    replay = DbReplayCache(database, handoff=handoff)
    cache = RoutingCache(database, repo, handoff)
    facts = {"holder_fingerprint": SYSTEM_CERT.fingerprint, "authority_cvr": A}
    now = datetime.now(UTC)
    assert replay.remember("call-1", now + timedelta(minutes=5), now)
    first = cache.call_facts(**facts, service="sf2250", subject=None, message_id="call-1")
    assert first.sysids["register"] == "1" and repo.loads == 1

    # A call accepted, then another process changes a SysID before the next call.
    assert replay.remember("call-2", now + timedelta(minutes=5), now)
    other = Database(database_url)
    try:
        RoutingRepository(other).replace_routes([replace(ROWS[0], sysid="11"), *ROWS[1:]])
    finally:
        other.dispose()
    # The next call's own insert reads the new version: the change is routed by at once.
    assert replay.remember("call-3", now + timedelta(minutes=5), now)
    after = cache.call_facts(**facts, service="sf2250", subject=None, message_id="call-3")
    assert after.sysids["register"] == "11" and repo.loads == 2

    # A number offered for one MessageID is never used for another: that call reads anew.
    assert replay.remember("call-4", now + timedelta(minutes=5), now)
    RoutingRepository(database).replace_routes([replace(ROWS[0], sysid="12"), *ROWS[1:]])
    stale = cache.call_facts(**facts, service="sf2250", subject=None, message_id="call-5")
    assert stale.sysids["register"] == "12" and repo.loads == 3

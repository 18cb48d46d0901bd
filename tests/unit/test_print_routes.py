"""An agreement's print route (sf1600 | sf1601), audited; a sending's outward id kept.

- no row: ``sf1600``; ``set_route`` stores the choice and appends an agreement event naming
  the route and its credential; an unknown route or agreement is refused;
- the sending ledger stores the outward id (SF1601's MeMo ``messageUUID``) of a key's first
  claim and answers it on every later claim, after a failure and after a success.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from integrations.sf2250.print_routes import PrintRoutes
from integrations.sf2250.sendings import SendingLedger
from serviceplatform.errors import AgreementNotFound, InvalidAdminRequest
from serviceplatform.registry import known_services
from serviceplatform.resources import sample_routing_tables
from serviceplatform.store.agreements_import import apply_import, read_import
from serviceplatform.store.db import Database
from serviceplatform.store.models import agreement_events

NOW = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
AGREEMENT_B = "b7e2d9a4-5c3f-4f1a-8e6d-2a9c4b7e1f02"


#: The configured peers an SF1601 print route needs (and the register's).
PEERS = frozenset({"nemsms", "sts", "sf1601"})


def seeded(database: Database) -> Database:
    tables: Path = sample_routing_tables()
    apply_import(
        database,
        *read_import(tables / "agreements.toml", known_services(), now=NOW),
        now=NOW,
        actor="test",
    )
    return database


def test_the_default_route_is_sf1600_and_a_choice_is_kept_and_audited(database: Database) -> None:
    routes = PrintRoutes(seeded(database))
    assert routes.route_of(AGREEMENT_B) == "sf1600"
    routes.set_route(
        AGREEMENT_B, "sf1601", actor="operator-1", now=NOW, peers=PEERS, reason="SF1600 retired"
    )
    assert routes.route_of(AGREEMENT_B) == "sf1601"
    routes.set_route(AGREEMENT_B, "sf1600", actor="operator-1", now=NOW, peers=PEERS)
    assert routes.route_of(AGREEMENT_B) == "sf1600"
    with database.transaction() as connection:
        events = connection.execute(
            select(agreement_events).where(agreement_events.c.action == "print_route")
        ).all()
    assert [(e.actor, json.loads(e.details)) for e in events] == [
        ("operator-1", {"print_route": "sf1601", "credential": "token"}),
        ("operator-1", {"print_route": "sf1600", "credential": "certificate"}),
    ]
    assert events[0].reason == "SF1600 retired"


def test_an_unknown_route_or_agreement_is_refused(database: Database) -> None:
    routes = PrintRoutes(seeded(database))
    with pytest.raises(InvalidAdminRequest):
        routes.set_route(AGREEMENT_B, "sf9999", actor="x", now=NOW, peers=PEERS)
    with pytest.raises(AgreementNotFound):
        routes.set_route(
            "00000000-0000-4000-8000-000000000000", "sf1601", actor="x", now=NOW, peers=PEERS
        )
    assert routes.route_of(AGREEMENT_B) == "sf1600"


@pytest.mark.parametrize(
    ("peers", "missing"),
    [
        ({"nemsms"}, "[peers.sts] and [peers.sf1601]"),
        ({"nemsms", "sts"}, "[peers.sf1601]"),
        ({"sf1601"}, "[peers.sts]"),
    ],
)
def test_sf1601_is_refused_without_the_peers_its_calls_need(
    database: Database, peers: set[str], missing: str
) -> None:
    routes = PrintRoutes(seeded(database))
    with pytest.raises(InvalidAdminRequest) as caught:
        routes.set_route(AGREEMENT_B, "sf1601", actor="x", now=NOW, peers=peers)
    assert caught.value.detail == (
        f"print route sf1601 needs {missing} in the settings, and they have no such section "
        "(docs/sf1601.md): every call would fail with SP-901; the route is unchanged"
    )
    assert routes.chosen(AGREEMENT_B) is None
    # sf1600 needs no more than the register; an agreement on sf1601 before keeps it.
    routes.set_route(AGREEMENT_B, "sf1600", actor="x", now=NOW, peers=peers)
    assert routes.chosen(AGREEMENT_B) == "sf1600"
    routes.set_route(AGREEMENT_B, "sf1601", actor="x", now=NOW, peers=PEERS)
    with pytest.raises(InvalidAdminRequest):
        routes.set_route(AGREEMENT_B, "sf1601", actor="x", now=NOW, peers=peers)
    assert routes.route_of(AGREEMENT_B) == "sf1601"


def test_the_ledger_keeps_the_first_outward_id(database: Database) -> None:
    ledger = SendingLedger(database)
    key = {"service": "sf1600", "authority_cvr": "29189854", "key": "sms-1"}
    first = ledger.claim(**key, request_hash="h", message_id="m1", now=NOW, outward_id="uuid-1")
    assert first.send and first.outward_id == "uuid-1"
    ledger.failed(**key, error_code="SP-404", now=NOW)
    again = ledger.claim(**key, request_hash="h", message_id="m2", now=NOW, outward_id="uuid-2")
    assert again.send and again.attempt == 2 and again.outward_id == "uuid-1"
    ledger.succeeded(**key, result="{}", now=NOW)
    done = ledger.claim(**key, request_hash="h", message_id="m3", now=NOW, outward_id="uuid-3")
    assert not done.send and done.outward_id == "uuid-1"
    state = ledger.get(**key)
    assert state is not None and state.outward_id == "uuid-1"

"""``serviceplatform print-route``: show and set an agreement's print route, audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from integrations.sf2250.print_route_commands import print_route
from integrations.sf2250.print_routes import PrintRoutes
from serviceplatform.cli import cli
from serviceplatform.commands.context import CliContext
from serviceplatform.config import DatabaseSettings, PeerSettings, Settings
from serviceplatform.registry import known_services
from serviceplatform.resources import sample_routing_tables
from serviceplatform.store.agreements_import import apply_import, read_import
from serviceplatform.store.db import Database
from serviceplatform.store.models import agreement_events, audit_records

AGREEMENT_B = "b7e2d9a4-5c3f-4f1a-8e6d-2a9c4b7e1f02"


def context(tmp_path: Path, database: Database, *, sf1601_peers: bool = True) -> CliContext:
    now = datetime.now(UTC)
    tables = sample_routing_tables()
    apply_import(
        database,
        *read_import(tables / "agreements.toml", known_services(), now=now),
        now=now,
        actor="test",
    )
    settings = Settings(database=DatabaseSettings(url="sqlite://"), base_dir=str(tmp_path))
    if sf1601_peers:
        # What print route sf1601 needs configured (nothing here calls them).
        for name in ("sts", "sf1601"):
            settings.peers[name] = PeerSettings(base_url=f"https://{name}.invalid")
    return CliContext(settings, database=database)


def test_show_set_and_show_again(tmp_path: Path, database: Database) -> None:
    obj = context(tmp_path, database)
    shown = CliRunner().invoke(print_route, ["show", AGREEMENT_B, "--json"], obj=obj)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {
        "agreement": AGREEMENT_B,
        "print_route": "sf1600",
        "credential": "certificate",
        "chosen": False,
    }
    changed = CliRunner().invoke(
        print_route, ["set", AGREEMENT_B, "sf1601", "--reason", "SF1600 retired"], obj=obj
    )
    assert changed.exit_code == 0, changed.output
    assert "print route sf1601, credential token" in changed.output
    assert PrintRoutes(database).route_of(AGREEMENT_B) == "sf1601"
    with database.transaction() as connection:
        events = connection.execute(
            select(agreement_events).where(agreement_events.c.action == "print_route")
        ).all()
        audits = connection.execute(
            select(audit_records).where(audit_records.c.operation == "print_route")
        ).all()
    assert [e.reason for e in events] == ["SF1600 retired"]
    assert len(audits) == 1


def test_sf1601_without_its_peers_is_refused_naming_the_section(
    tmp_path: Path, database: Database
) -> None:
    """It used to be accepted; every print call then failed SP-901 (no [peers.sf1601])."""
    obj = context(tmp_path, database, sf1601_peers=False)
    obj.settings.peers["sts"] = PeerSettings(base_url="https://sts.invalid")
    result = CliRunner().invoke(print_route, ["set", AGREEMENT_B, "sf1601"], obj=obj)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr == (
        "error: SP-605 The administration request is malformed: print route sf1601 needs "
        "[peers.sf1601] in the settings, and they have no such section (docs/sf1601.md): "
        "every call would fail with SP-901; the route is unchanged\n"
    )
    assert PrintRoutes(database).chosen(AGREEMENT_B) is None


def test_an_unknown_route_is_a_usage_error(tmp_path: Path, database: Database) -> None:
    obj = context(tmp_path, database)
    result = CliRunner().invoke(print_route, ["set", AGREEMENT_B, "sf9"], obj=obj)
    assert result.exit_code == 2
    assert PrintRoutes(database).chosen(AGREEMENT_B) is None


def test_the_command_is_on_the_platform_command_line() -> None:
    result = CliRunner().invoke(cli, ["print-route", "--help"])
    assert result.exit_code == 0 and "sf1601" in result.output

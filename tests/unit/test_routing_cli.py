"""``serviceplatform routing check|load|list`` through click's test runner."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from serviceplatform.commands.context import CliContext
from serviceplatform.commands.routing import routing
from serviceplatform.config import DatabaseSettings, RoutingSettings, Settings
from serviceplatform.routing_files import load_table
from serviceplatform.store.audit import AuditLog
from serviceplatform.store.db import Database, migration_head
from serviceplatform.store.repository import RoutingRepository

PROJECT = Path(__file__).resolve().parents[2]
SF2250 = {
    "sf2250": frozenset({"register", "nemsms", "digital_post", "afsender"}),
    "sf1600": frozenset({"nemsms", "digital_post", "afsender"}),
}
HEADER = "authority_cvr,service,role,sysid,subject\n"


@pytest.fixture
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "tables"
    directory.mkdir()
    shutil.copy(PROJECT / "routing_tables" / "sf2250.csv", directory)
    shutil.copy(PROJECT / "routing_tables" / "agreements.toml", directory)
    return directory


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        routing=RoutingSettings(directory="tables"),
        database=DatabaseSettings(url="sqlite:///platform.sqlite"),
        base_dir=str(tmp_path),
    )


def _run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(routing, list(args), obj=obj)


@pytest.fixture
def no_db(tmp_path: Path) -> CliContext:
    return CliContext(_settings(tmp_path), known_services=lambda: SF2250)


@pytest.fixture
def with_db(tmp_path: Path, database: Database) -> CliContext:
    return CliContext(_settings(tmp_path), known_services=lambda: SF2250, database=database)


def test_check_the_configured_directory(no_db: CliContext, tables: Path) -> None:
    result = _run(no_db, "check")
    assert result.exit_code == 0, result.output
    assert "OK: 17 routes for 4 authorities" in result.output
    assert "OK: tables/agreements.toml: 1 consumer systems, 5 agreements" in result.output


def test_check_given_files(no_db: CliContext, tables: Path) -> None:
    result = _run(no_db, "check", str(tables / "sf2250.csv"))
    assert result.exit_code == 0, result.output
    assert result.output == "OK: 17 routes for 4 authorities\n"


def test_check_reports_every_problem_and_exits_1(no_db: CliContext, tables: Path) -> None:
    (tables / "bad.csv").write_text(
        HEADER + "29189847,sf2250,register,1,\n29189846,sf2250,register,1,0101901234\n",
        encoding="utf-8",
    )
    agreements = tables / "agreements.toml"
    agreements.write_text(
        agreements.read_text(encoding="utf-8").replace('status = "suspended"', 'status = "x"'),
        encoding="utf-8",
    )
    result = _run(no_db, "check")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "error: SP-310 The routing table is invalid:"
    assert lines[1] == "  tables/bad.csv:2: CVR 29189847 fails the modulus-11 check"
    # bad.csv is read first, so the sample file's row is the duplicate.
    assert lines[2].startswith("  tables/sf2250.csv:19: duplicate route for authority 29189846")
    assert "010190****" in lines[2] and "0101901234" not in result.stderr
    assert "also at tables/bad.csv:3" in lines[2]
    assert lines[3].startswith("  tables/agreements.toml: agreement #3: status 'x' is not one of")
    assert "Traceback" not in result.output


def test_check_of_a_missing_path_is_a_usage_error(no_db: CliContext, tables: Path) -> None:
    result = _run(no_db, "check", "nope.csv")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_load_then_list(with_db: CliContext, tables: Path) -> None:
    result = _run(with_db, "load")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "loaded 17 routes: 17 added, 0 changed, 0 removed, 0 unchanged\n"
    )
    assert "  + 29189846 sf2250 register 010190**** -> 2250901" in result.output
    listed = _run(with_db, "list", "--authority", "29189846")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["AUTHORITY", "SERVICE", "ROLE", "SYSID", "SUBJECT", "SOURCE"]
    assert len(lines) == 1 + 5
    assert lines[1].split() == [
        "29189846",
        "sf2250",
        "afsender",
        "2250004",
        "authority-wide",
        "tables/sf2250.csv:16",
    ]
    assert any(line.split()[3:5] == ["2250901", "010190****"] for line in lines)
    assert "0101901234" not in listed.output


def test_list_json_masks_subjects(with_db: CliContext, tables: Path) -> None:
    assert _run(with_db, "load", str(tables)).exit_code == 0
    result = _run(with_db, "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 17
    assert {r["subject"] for r in rows} == {None, "010190****"}
    assert rows[0] == {
        "authority_cvr": "29189846",
        "service": "sf2250",
        "role": "afsender",
        "sysid": "2250004",
        "subject": None,
        "source": "tables/sf2250.csv:16",
    }


def test_load_reports_changes(with_db: CliContext, tables: Path) -> None:
    assert _run(with_db, "load").exit_code == 0
    table = tables / "sf2250.csv"
    text = table.read_text(encoding="utf-8")
    text = text.replace("29189846,sf2250,nemsms,2250002,", "29189846,sf2250,nemsms,2250099,")
    text = text.replace("29189862,sf2250,register,2252001,\n", "")
    table.write_text(text + "29189854,sf2250,register,2251901,12345674\n", encoding="utf-8")
    result = _run(with_db, "load")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "loaded 17 routes: 1 added, 1 changed, 1 removed, 15 unchanged",
        "  + 29189854 sf2250 register 12345674 -> 2251901",
        "  ~ 29189846 sf2250 nemsms authority-wide -> 2250002 now 2250099",
        "  - 29189862 sf2250 register authority-wide -> 2252001",
    ]


def test_a_failing_load_keeps_the_old_table(
    with_db: CliContext, tables: Path, database: Database
) -> None:
    assert _run(with_db, "load").exit_code == 0
    before = RoutingRepository(database).list_routes()
    (tables / "sf2250.csv").write_text(HEADER + "29189846,sf2250,printer,1,\n", encoding="utf-8")
    result = _run(with_db, "load")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: SP-310 The routing table is invalid: tables/sf2250.csv:2: service sf2250 has "
        "no role 'printer' (roles: afsender, digital_post, nemsms, register)\n"
    )
    assert RoutingRepository(database).list_routes() == before


def test_list_of_an_empty_table_and_a_bad_authority(with_db: CliContext) -> None:
    result = _run(with_db, "list")
    assert (result.exit_code, result.output) == (0, "no routes\n")
    bad = _run(with_db, "list", "--authority", "29189847")
    assert bad.exit_code == 2
    assert "not a valid CVR number" in bad.stderr


def test_database_is_opened_from_the_settings_and_migrated(
    no_db: CliContext, tables: Path, tmp_path: Path
) -> None:
    result = _run(no_db, "load")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "platform.sqlite").is_file()
    assert no_db.database().current_revision() == migration_head()
    no_db.close()


def test_storage_failures_are_one_line_errors(tmp_path: Path, tables: Path) -> None:
    settings = _settings(tmp_path)
    settings.database.url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'p.sqlite'}"
    result = _run(CliContext(settings, known_services=lambda: SF2250), "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SP-902 The platform's database failed: ")
    assert len(result.stderr.splitlines()) == 1


def test_lazy_settings_are_read_once_on_first_use(tmp_path: Path, tables: Path) -> None:
    calls: list[int] = []

    def factory() -> Settings:
        calls.append(1)
        return _settings(tmp_path)

    obj = CliContext.lazy(factory)
    assert calls == []
    assert obj.settings is obj.settings
    assert calls == [1]


def test_diff_shows_what_an_import_would_change_and_changes_nothing(
    with_db: CliContext, tables: Path
) -> None:
    assert _run(with_db, "import").exit_code == 0
    unchanged = _run(with_db, "diff", "--exit-code")
    assert unchanged.exit_code == 0 and "no changes (17 routes unchanged)" in unchanged.output
    edited = tables / "sf2250.csv"
    edited.write_text(
        edited.read_text().replace(
            "29189846,sf2250,nemsms,2250002,", "29189846,sf2250,nemsms,2250077,"
        )
    )
    result = _run(with_db, "diff", "--exit-code")
    assert result.exit_code == 1
    assert "1 to change" in result.output and "2250002 now 2250077" in result.output
    assert "2250077" not in _run(with_db, "list").output


def test_import_with_an_error_leaves_the_stored_table_intact(
    with_db: CliContext, tables: Path
) -> None:
    assert _run(with_db, "import").exit_code == 0
    before = _run(with_db, "list", "--json").output
    (tables / "broken.csv").write_text(
        HEADER + "29189846,sf2250,register,9,\n29189847,sf2250,x,1,\n"
    )
    result = _run(with_db, "import")
    assert result.exit_code == 1
    assert "broken.csv:3" in result.output
    assert _run(with_db, "list", "--json").output == before


def test_export_writes_the_same_format_and_round_trips(
    with_db: CliContext, tables: Path, tmp_path: Path
) -> None:
    assert _run(with_db, "import").exit_code == 0
    out = tmp_path / "exported.csv"
    result = _run(with_db, "export", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[1] == HEADER.strip()
    stored = RoutingRepository(with_db.database()).list_routes()
    reread = load_table(out, SF2250)
    assert [(r.key, r.sysid) for r in reread] == [(r.key, r.sysid) for r in stored]
    # Importing the export changes nothing.
    assert "no changes" in _run(with_db, "diff", str(out)).output
    only = _run(with_db, "export", "--service", "sf2250").output
    assert only.count("\n") == 2 + len(stored) + 3  # comment, header, rows, blank lines


def test_export_file_is_owner_only_like_every_file_with_personal_data(
    with_db: CliContext, tables: Path, tmp_path: Path
) -> None:
    assert _run(with_db, "import").exit_code == 0
    out = tmp_path / "exported.csv"
    out.write_text("an older export\n", encoding="utf-8")
    out.chmod(0o644)
    previous = os.umask(0o022)
    try:
        result = _run(with_db, "export", "-o", str(out))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # The subjects are written in full: the sample tables' CPR-routed rows.
    assert any(len(row.split(",")[4]) == 10 for row in out.read_text().splitlines()[2:] if row)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".exported")] == []


@pytest.mark.parametrize("command", ["check", "import", "diff"])
def test_without_a_configured_directory_a_path_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    # The sample tables where the old default pointed must not be picked up.
    monkeypatch.chdir(tmp_path)
    shutil.copytree(PROJECT / "routing_tables", tmp_path / "routing_tables")
    settings = Settings(
        database=DatabaseSettings(url="sqlite:///platform.sqlite"), base_dir=str(tmp_path)
    )
    assert settings.routing.directory == ""
    result = _run(CliContext(settings, known_services=lambda: SF2250), command)
    assert result.exit_code == 2
    assert "no PATH given and no [routing] directory configured" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "platform.sqlite").exists()


def test_an_import_and_a_refused_one_leave_admin_audit_records(
    with_db: CliContext, tables: Path, database: Database
) -> None:
    assert _run(with_db, "import").exit_code == 0
    (tables / "sf2250.csv").write_text(HEADER + "29189846,sf2250,printer,1,\n", encoding="utf-8")
    assert _run(with_db, "import").exit_code == 1
    records = [e for e in AuditLog(database).tail(10) if e.service == "admin"]
    assert [(e.operation, e.outcome, e.error_code) for e in reversed(records)] == [
        ("import-routing", "ok", None),
        ("import-routing", "fault", "SP-310"),
    ]
    assert all(e.detail and e.detail.startswith(f"cli:{getpass.getuser()}: ") for e in records)


def test_diff_and_import_warn_of_approved_agreements_the_table_leaves_without_a_sysid(
    with_db: CliContext, tables: Path, database: Database
) -> None:
    """An import replaces every stored row, those ``agreements configure`` set included; an
    approved agreement it leaves without a SysID it needs stops routing, so both commands
    name it (on stderr; the exit code stays that of the table)."""
    from datetime import UTC, datetime

    from serviceplatform.registry import known_services
    from serviceplatform.store.agreements_import import apply_import, read_import

    now = datetime.now(UTC)
    found = read_import(tables / "agreements.toml", known_services(), now=now)
    apply_import(database, *found, now=now, actor="test")
    shutil.copy(PROJECT / "routing_tables" / "sf1600.csv", tables)
    first = _run(with_db, "import")
    assert first.exit_code == 0 and first.stderr == ""
    # Authority A's afsender row goes: its sf1600 agreement would miss that SysID.
    edited = tables / "sf1600.csv"
    edited.write_text(edited.read_text().replace("29189846,sf1600,afsender,2250004,\n", ""))
    warning = (
        "warning: agreement 6a1f4c1e-2f4b-4d7e-9a53-0b8f3c2d1e01 (29189846 sf1600, approved) "
        "lacks SysID for role afsender in this table: "
    )
    diff = _run(with_db, "diff")
    assert diff.exit_code == 0
    assert diff.stderr == warning + "importing it would stop the agreement's calls\n"
    imported = _run(with_db, "import")
    assert imported.exit_code == 0
    assert "  - 29189846 sf1600 afsender authority-wide -> 2250004" in imported.stdout
    assert imported.stderr == (warning + "its calls are refused (SP-303) until the SysID is back\n")
    # Nothing more to warn of once the table is stored: the agreement no longer routes.
    assert _run(with_db, "import").stderr == ""

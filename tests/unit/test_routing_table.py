"""Routing table files: every validation error names file and line, all are reported."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from serviceplatform.errors import RoutingTableInvalid
from serviceplatform.registry import known_services
from serviceplatform.routing.model import RouteRow
from serviceplatform.routing.table import format_table, parse_table
from serviceplatform.routing_files import load_directory, load_paths, load_table

PROJECT = Path(__file__).resolve().parents[2]
SF2250 = {"sf2250": frozenset({"register", "nemsms", "digital_post", "afsender"})}
HEADER = "authority_cvr,service,role,sysid,subject\n"


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path | list[Path]) -> list[str]:
    with pytest.raises(RoutingTableInvalid) as caught:
        if isinstance(path, list):
            load_paths(path, SF2250)
        else:
            load_table(path, SF2250)
    assert caught.value.code == "SP-310"
    assert caught.value.detail is not None
    return caught.value.detail.splitlines()


@pytest.fixture
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "routing_tables"


def test_valid_file_with_comments_blank_lines_and_subjects(tables: Path) -> None:
    path = _write(
        tables,
        "x.csv",
        "# a comment\n\n"
        + HEADER
        + "29189846,sf2250,register,2250001,\n"
        + "  # indented comment\n"
        + "29189846, sf2250 ,nemsms,2250002\n"
        + "29189846,sf2250,register,test-901_A,0101901234\n"
        + "29189846,sf2250,register,2250003,12345674\n",
    )
    assert load_table(path, SF2250) == [
        RouteRow("29189846", "sf2250", "register", "2250001", None, "routing_tables/x.csv:4"),
        RouteRow("29189846", "sf2250", "nemsms", "2250002", None, "routing_tables/x.csv:6"),
        RouteRow(
            "29189846", "sf2250", "register", "test-901_A", "0101901234", "routing_tables/x.csv:7"
        ),
        RouteRow("29189846", "sf2250", "register", "2250003", "12345674", "routing_tables/x.csv:8"),
    ]


def test_header_without_subject_column(tables: Path) -> None:
    path = _write(tables, "x.csv", "service,authority_cvr,role,sysid\nsf2250,29189846,register,1\n")
    assert load_table(path, SF2250) == [
        RouteRow("29189846", "sf2250", "register", "1", None, "routing_tables/x.csv:2")
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("29189847,sf2250,register,1,", "CVR 29189847 fails the modulus-11 check"),
        ("2918984,sf2250,register,1,", "authority_cvr '2918984' is not an 8-digit CVR number"),
        ("2918984X,sf2250,register,1,", "authority_cvr '2918984X' is not an 8-digit CVR number"),
        ("29189846,sf9999,register,1,", "unknown service 'sf9999' (known: sf2250)"),
        ("29189846,sf2250,printer,1,", "service sf2250 has no role 'printer'"),
        ("29189846,sf2250,register,,", "sysid is empty"),
        ("29189846,sf2250,register,22 50,", "sysid '22 50' must be 1-64 letters, digits"),
        ("29189846,sf2250,register,ø1,", "sysid 'ø1' must be 1-64 letters, digits"),
        ("29189846,sf2250,register,1,3213901234", "subject CPR 321390**** does not start with"),
        ("29189846,sf2250,register,1,12345675", "subject CVR 12345675 fails the modulus-11"),
        ("29189846,sf2250,register,1,123", "subject must be empty, a 10-digit CPR number or"),
        ("29189846,sf2250,register,1,,extra", "expected 5 columns, found 6"),
        ("29189846,sf2250,register", "expected 5 columns, found 3"),
        ('29189846,sf2250,"register,1', "expected 5 columns"),
    ],
)
def test_each_row_problem_names_file_and_line(tables: Path, line: str, message: str) -> None:
    path = _write(tables, "x.csv", "# comment\n" + HEADER + line + "\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"routing_tables/x.csv:3: {message}")


def test_full_cpr_never_appears_in_messages(tables: Path) -> None:
    path = _write(
        tables,
        "x.csv",
        HEADER + "29189846,sf2250,register,1,3213901234\n"
        "29189846,sf2250,nemsms,1,0101901234\n29189846,sf2250,nemsms,2,0101901234\n",
    )
    problems = "\n".join(_problems(path))
    assert "3213901234" not in problems
    assert "0101901234" not in problems
    assert "010190****" in problems


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "authority_cvr,service,role,sysid,subject,extra",
            "unknown column(s) 'extra' in the header",
        ),
        ("authority,service,role,sysid", "unknown column(s) 'authority' in the header"),
        ("authority_cvr,service,role", "header lacks column(s) sysid"),
        ("authority_cvr,service,role,sysid,role", "column(s) role appear twice in the header"),
    ],
)
def test_header_problems(tables: Path, header: str, message: str) -> None:
    path = _write(tables, "x.csv", "\n" + header + "\n29189846,sf2250,register,1\n")
    assert _problems(path) == [f"routing_tables/x.csv:2: {message}"]


def test_a_file_without_a_header(tables: Path) -> None:
    path = _write(tables, "x.csv", "# only comments\n\n")
    assert _problems(path)[0].startswith("routing_tables/x.csv: no header line")


def test_duplicate_keys_name_both_lines(tables: Path) -> None:
    path = _write(
        tables,
        "x.csv",
        HEADER
        + "29189846,sf2250,register,1,\n"
        + "29189846,sf2250,register,2,0101901234\n"
        + "29189846,sf2250,register,3,\n"
        + "29189846,sf2250,register,4,0101901234\n",
    )
    assert _problems(path) == [
        "routing_tables/x.csv:4: duplicate route for authority 29189846, service sf2250, "
        "role register, authority-wide (also at routing_tables/x.csv:2)",
        "routing_tables/x.csv:5: duplicate route for authority 29189846, service sf2250, "
        "role register, 010190**** (also at routing_tables/x.csv:3)",
    ]


def test_all_problems_of_a_file_are_reported_together(tables: Path) -> None:
    path = _write(
        tables,
        "x.csv",
        HEADER
        + "29189847,sf2250,register,1,\n"
        + "29189846,sf2250,register,1,\n"
        + "29189846,nope,register,,\n"
        + "29189846,sf2250,register,2,\n",
    )
    problems = _problems(path)
    assert [p.split(": ", 1)[0] for p in problems] == [
        "routing_tables/x.csv:2",
        "routing_tables/x.csv:4",
        "routing_tables/x.csv:4",
        "routing_tables/x.csv:5",
    ]
    assert "unknown service 'nope'" in problems[1]
    assert "sysid is empty" in problems[2]
    assert "also at routing_tables/x.csv:3" in problems[3]


def test_directory_loads_every_csv_and_finds_duplicates_across_files(tables: Path) -> None:
    _write(tables, "a.csv", HEADER + "29189846,sf2250,register,1,\n")
    _write(tables, "b.csv", HEADER + "29189854,sf2250,register,2,\n")
    _write(tables, "notes.txt", "not a table")
    rows = load_directory(tables, SF2250)
    assert [r.source for r in rows] == ["routing_tables/a.csv:2", "routing_tables/b.csv:2"]
    _write(tables, "c.csv", HEADER + "\n29189846,sf2250,register,3,\n")
    with pytest.raises(RoutingTableInvalid) as caught:
        load_directory(tables, SF2250)
    assert caught.value.detail == (
        "routing_tables/c.csv:3: duplicate route for authority 29189846, service sf2250, "
        "role register, authority-wide (also at routing_tables/a.csv:2)"
    )


def test_problems_of_several_files_are_reported_together(tables: Path) -> None:
    a = _write(tables, "a.csv", HEADER + "29189847,sf2250,register,1,\n")
    b = _write(tables, "b.csv", HEADER + "29189846,sf2250,nope,1,\n")
    problems = _problems([a, b])
    assert [p.split(": ", 1)[0] for p in problems] == [
        "routing_tables/a.csv:2",
        "routing_tables/b.csv:2",
    ]


def test_empty_directory_missing_file_and_bad_encoding(tables: Path) -> None:
    tables.mkdir()
    assert _problems([tables]) == ["routing_tables: no *.csv routing table in this directory"]
    assert _problems(tables / "missing.csv")[0].startswith(
        "routing_tables/missing.csv: cannot read"
    )
    (tables / "latin1.csv").write_bytes(
        HEADER.encode() + "29189846,sf2250,register,æ\n".encode("latin-1")
    )
    assert _problems(tables / "latin1.csv")[0].startswith("routing_tables/latin1.csv: not UTF-8")


def test_a_byte_order_mark_is_accepted(tables: Path) -> None:
    tables.mkdir()
    path = tables / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + "29189846,sf2250,register,1,\n").encode("utf-8"))
    assert len(load_table(path, SF2250)) == 1


def test_a_table_separated_by_semicolons_is_told_the_separator(tables: Path) -> None:
    tables.mkdir()
    path = tables / "excel.csv"
    path.write_text(HEADER.replace(",", ";") + "29189846;sf2250;register;1;\n", encoding="utf-8")
    (problem,) = _problems(path)
    assert problem == (
        "routing_tables/excel.csv:1: unknown column(s) "
        "'authority_cvr;service;role;sysid;subject' in the header; the columns are separated "
        "by commas, not semicolons"
    )


def test_paths_outside_the_working_directory_are_shown_as_given(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", HEADER + "29189847,sf2250,register,1,\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:2: CVR 29189847")


def test_the_shipped_sample_table_is_valid() -> None:
    rows = load_directory(PROJECT / "routing_tables", known_services())
    authorities = {r.authority_cvr for r in rows}
    assert {"29189846", "29189854", "29189862", "29189870"} <= authorities
    sample = {
        r.role: r.sysid
        for r in rows
        if r.authority_cvr == "29189846" and r.service == "sf2250" and not r.subject
    }
    assert sample == {
        "register": "2250001",
        "nemsms": "2250002",
        "digital_post": "2250003",
        "afsender": "2250004",
    }
    # One SysID per role covers all of an authority's systems: Print uses the same ones.
    printing = {
        r.role: r.sysid for r in rows if r.authority_cvr == "29189846" and r.service == "sf1600"
    }
    assert printing == {"nemsms": "2250002", "digital_post": "2250003", "afsender": "2250004"}
    assert any(r.subject for r in rows), "the sample shows a subject-specific row"


def test_an_exported_table_is_ordered_and_reads_back_to_the_same_rows() -> None:
    rows = [
        RouteRow("29189854", "sf2250", "register", "B-1"),
        RouteRow("29189846", "sf2250", "register", "A-9", "0101901234"),
        RouteRow("29189846", "sf2250", "nemsms", "A-2"),
        RouteRow("29189846", "sf2250", "register", "A-1"),
        RouteRow("29189846", "sf1600", "nemsms", "A-3"),
    ]
    text = format_table(rows)
    # Authority by authority (a blank line between them), then service, role, and the
    # subject's row after the authority-wide one; the subject written in full.
    assert text == (
        "# Routing table exported by `serviceplatform routing export`.\n"
        "authority_cvr,service,role,sysid,subject\n"
        "29189846,sf1600,nemsms,A-3,\n"
        "29189846,sf2250,nemsms,A-2,\n"
        "29189846,sf2250,register,A-1,\n"
        "29189846,sf2250,register,A-9,0101901234\n"
        "\n"
        "29189854,sf2250,register,B-1,\n"
    )
    services = {**SF2250, "sf1600": frozenset({"nemsms"})}
    parsed, problems = parse_table(text, "export.csv", services)
    assert problems == []
    assert {replace(row, source="") for row in parsed} == set(rows)
    assert len(parsed) == len(rows)


def test_an_empty_export_is_a_header_that_reads_back_to_no_rows() -> None:
    text = format_table([])
    assert text.splitlines()[1] == "authority_cvr,service,role,sysid,subject"
    assert parse_table(text, "export.csv", SF2250) == ([], [])


def test_a_duplicate_for_a_company_names_its_cvr_number_in_full(tables: Path) -> None:
    # Only CPR numbers are personal data: a CVR subject is shown as it is.
    path = _write(
        tables,
        "x.csv",
        HEADER + "29189846,sf2250,register,1,12345674\n29189846,sf2250,register,2,12345674\n",
    )
    assert _problems(path) == [
        "routing_tables/x.csv:3: duplicate route for authority 29189846, service sf2250, "
        "role register, 12345674 (also at routing_tables/x.csv:2)"
    ]


def test_an_unknown_service_or_role_lists_the_known_ones() -> None:
    line = "29189846,sf2250,printer,1\n"
    two = {**SF2250, "oots": frozenset({"oots_requester"})}
    assert parse_table(HEADER + line, "x.csv", two)[1] == [
        "x.csv:2: service sf2250 has no role 'printer' "
        "(roles: afsender, digital_post, nemsms, register)"
    ]
    assert parse_table(HEADER + "29189846,sf1600,nemsms,1\n", "x.csv", two)[1] == [
        "x.csv:2: unknown service 'sf1600' (known: oots, sf2250)"
    ]
    assert parse_table(HEADER + line, "x.csv", {})[1] == [
        "x.csv:2: unknown service 'sf2250' (known: none)"
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("authority_cvr,service,role,sysid,a,b", "unknown column(s) 'a', 'b' in the header"),
        (
            "authority_cvr,service,role,sysid,role,sysid",
            "column(s) role, sysid appear twice in the header",
        ),
        ("authority_cvr,service", "header lacks column(s) role, sysid"),
    ],
)
def test_header_problems_name_every_column(header: str, message: str) -> None:
    assert parse_table(header + "\n", "x.csv", SF2250) == ([], [f"x.csv:1: {message}"])


def test_a_quoted_field_after_a_space_is_read_without_its_quotes() -> None:
    rows, problems = parse_table(
        HEADER + '29189846, "sf2250", "register", "2250001"\n', "x.csv", SF2250
    )
    assert problems == []
    assert rows == [RouteRow("29189846", "sf2250", "register", "2250001", None, "x.csv:2")]


def test_a_line_the_csv_reader_refuses_is_reported_and_the_next_lines_still_checked() -> None:
    huge = "29189846,sf2250,register," + "1" * 200_000
    rows, problems = parse_table(
        HEADER + huge + "\n29189847,sf2250,register,1\n29189846,sf2250,register,2\n",
        "x.csv",
        SF2250,
    )
    assert [p.split(": ", 1)[0] for p in problems] == ["x.csv:2", "x.csv:3"]
    assert "field larger than field limit" in problems[0]
    assert problems[1] == "x.csv:3: CVR 29189847 fails the modulus-11 check"
    assert [row.sysid for row in rows] == ["2"]


def test_no_header_line_says_which_columns_it_needs() -> None:
    assert parse_table("# nothing\n", "x.csv", SF2250) == (
        [],
        ["x.csv: no header line (authority_cvr,service,role,sysid,subject)"],
    )

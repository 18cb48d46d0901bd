"""Parse and validate routing tables (the text of ``routing_tables/*.csv``): no I/O.

A routing table file is CSV with a header line naming the columns ``authority_cvr``,
``service``, ``role``, ``sysid`` and optionally ``subject``; ``#`` comment lines and blank lines
are ignored. One row says which SysID an authority uses for one role of one service, maybe
only for one subject (a CPR or CVR number)::

    authority_cvr,service,role,sysid,subject
    29189846,sf2250,register,2250001,
    # A test citizen of the authority goes to the register's test SysID:
    29189846,sf2250,register,2250901,0101901234

Every problem of a file (and, for :func:`check_tables`, of all files together) is collected
and reported at once in one :class:`~serviceplatform.errors.RoutingTableInvalid`, one problem
per line of its ``detail``, each starting with ``file:line:``. CPR numbers in messages are
masked. Reading the files is ``serviceplatform.routing_files``'s job.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping

from serviceplatform.errors import RoutingTableInvalid
from serviceplatform.logmask import mask_cpr
from serviceplatform.routing.identifiers import is_valid_cpr, is_valid_cvr
from serviceplatform.routing.model import RouteRow

REQUIRED_COLUMNS = ("authority_cvr", "service", "role", "sysid")
OPTIONAL_COLUMNS = ("subject",)
_SYSID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9]+")


def describe_subject(subject: str | None) -> str:
    """A subject fit for messages: CPR numbers masked, ``authority-wide`` for none."""
    if not subject:
        return "authority-wide"
    return mask_cpr(subject) if len(subject) == 10 else subject


def _check_cvr(value: str, column: str) -> str | None:
    if not (len(value) == 8 and _DIGITS.fullmatch(value)):
        return f"{column} {value!r} is not an 8-digit CVR number"
    if not is_valid_cvr(value):
        return f"CVR {value} fails the modulus-11 check"
    return None


def _check_subject(value: str) -> str | None:
    if len(value) == 8 and _DIGITS.fullmatch(value):
        return None if is_valid_cvr(value) else f"subject CVR {value} fails the modulus-11 check"
    if len(value) == 10 and _DIGITS.fullmatch(value):
        if is_valid_cpr(value):
            return None
        return f"subject CPR {mask_cpr(value)} does not start with a valid date"
    return "subject must be empty, a 10-digit CPR number or an 8-digit CVR number"


def _read_header(fields: list[str]) -> tuple[dict[str, int], str | None]:
    names = [f.strip() for f in fields]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    unknown = [n for n in names if n not in known]
    if unknown:
        problem = f"unknown column(s) {', '.join(map(repr, unknown))} in the header"
        if any(";" in name for name in unknown):
            # A spreadsheet set to Danish saves "CSV" with semicolons.
            problem += "; the columns are separated by commas, not semicolons"
        return {}, problem
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        return {}, f"column(s) {', '.join(duplicated)} appear twice in the header"
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    if missing:
        return {}, f"header lacks column(s) {', '.join(missing)}"
    return {name: i for i, name in enumerate(names)}, None


def _parse_row(
    fields: list[str],
    columns: Mapping[str, int],
    known_services: Mapping[str, frozenset[str]],
    source: str,
) -> tuple[RouteRow | None, list[str]]:
    if len(fields) == len(columns) - 1 and columns.get("subject") == len(columns) - 1:
        fields = [*fields, ""]  # the trailing optional subject may be left out
    if len(fields) != len(columns):
        return None, [f"expected {len(columns)} columns, found {len(fields)}"]
    value = {name: fields[i].strip() for name, i in columns.items()}
    problems: list[str] = []
    cvr_problem = _check_cvr(value["authority_cvr"], "authority_cvr")
    if cvr_problem:
        problems.append(cvr_problem)
    service, role = value["service"], value["role"]
    if service not in known_services:
        known = ", ".join(sorted(known_services)) or "none"
        problems.append(f"unknown service {service!r} (known: {known})")
    elif role not in known_services[service]:
        roles = ", ".join(sorted(known_services[service]))
        problems.append(f"service {service} has no role {role!r} (roles: {roles})")
    if not _SYSID.fullmatch(value["sysid"]):
        problems.append(
            f"sysid {value['sysid']!r} must be 1-64 letters, digits, '-' or '_'"
            if value["sysid"]
            else "sysid is empty"
        )
    subject = value.get("subject")  # None without the column, "" when left empty
    if subject:
        subject_problem = _check_subject(subject)
        if subject_problem:
            problems.append(subject_problem)
    if problems:
        return None, problems
    row = RouteRow(
        authority_cvr=value["authority_cvr"],
        service=service,
        role=role,
        sysid=value["sysid"],
        subject=subject or None,
        source=source,
    )
    return row, []


def parse_table(
    text: str, name: str, known_services: Mapping[str, frozenset[str]]
) -> tuple[list[RouteRow], list[str]]:
    """The valid rows of one file's ``text`` and the problems in it (``name:line: ...``)."""
    lines = text.splitlines()
    rows: list[RouteRow] = []
    errors: list[str] = []
    columns: dict[str, int] | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = next(csv.reader([line], skipinitialspace=True))
        except csv.Error as exc:
            errors.append(f"{name}:{number}: {exc}")
            continue
        if columns is None:
            columns, problem = _read_header(fields)
            if problem:
                return [], [f"{name}:{number}: {problem}"]
            continue
        row, problems = _parse_row(fields, columns, known_services, f"{name}:{number}")
        errors.extend(f"{name}:{number}: {problem}" for problem in problems)
        if row is not None:
            rows.append(row)
    if columns is None:
        errors.append(f"{name}: no header line ({','.join(REQUIRED_COLUMNS)},subject)")
    return rows, errors


def _duplicates(rows: Iterable[RouteRow]) -> list[str]:
    first: dict[tuple[str, str, str, str], RouteRow] = {}
    errors: list[str] = []
    for row in rows:
        earlier = first.setdefault(row.key, row)
        if earlier is not row:
            errors.append(
                f"{row.source}: duplicate route for authority {row.authority_cvr}, service "
                f"{row.service}, role {row.role}, {describe_subject(row.subject)} "
                f"(also at {earlier.source})"
            )
    return errors


def _raise_if(errors: list[str]) -> None:
    if errors:
        raise RoutingTableInvalid(detail="\n".join(errors))


def check_tables(files: Iterable[tuple[list[RouteRow], list[str]]]) -> list[RouteRow]:
    """The rows of several parsed files, checked together; RoutingTableInvalid lists every
    problem. A key defined in two files is a duplicate like one defined twice in one file.
    """
    rows: list[RouteRow] = []
    errors: list[str] = []
    for file_rows, file_errors in files:
        rows.extend(file_rows)
        errors.extend(file_errors)
    _raise_if(errors + _duplicates(rows))
    return rows


def format_table(rows: Iterable[RouteRow]) -> str:
    """``rows`` as a routing table file that ``parse_table`` reads back to the same rows.

    Authority by authority, service, role, then the subject-limited rows after the
    authority-wide one. The ``subject`` column is written in full: the file is the reviewed
    source, and a CPR number in it is as sensitive as in the file it came from.
    """
    lines = [
        "# Routing table exported by `serviceplatform routing export`.",
        "authority_cvr,service,role,sysid,subject",
    ]
    ordered = sorted(rows, key=lambda r: (r.authority_cvr, r.service, r.role, r.subject or ""))
    previous = None
    for row in ordered:
        if previous is not None and previous != row.authority_cvr:
            lines.append("")
        previous = row.authority_cvr
        lines.append(
            f"{row.authority_cvr},{row.service},{row.role},{row.sysid},{row.subject or ''}"
        )
    return "\n".join(lines) + "\n"

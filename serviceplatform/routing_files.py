"""Read the routing tables (``*.csv``) and the agreements file (``agreements.toml``) from disk.

The parsing and every rule live in ``serviceplatform.routing``, which does no I/O; this
module is the edge that reads the files and names them in messages (relative to the working
directory when they lie below it). An unreadable file is a problem of the table like any
other, reported with its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from serviceplatform.errors import RoutingTableInvalid
from serviceplatform.routing.agreements_file import SystemEntry, check_agreements
from serviceplatform.routing.model import Agreement, RouteRow
from serviceplatform.routing.table import check_tables, parse_table

KnownServices = Mapping[str, frozenset[str]]


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, for messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_table(path: Path, known_services: KnownServices) -> tuple[list[RouteRow], list[str]]:
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        return [], [f"{name}: cannot read: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:
        return [], [f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    return parse_table(text, name, known_services)


def load_table(path: Path, known_services: KnownServices) -> list[RouteRow]:
    """The rows of one routing table file; raises RoutingTableInvalid listing every problem."""
    return check_tables([_read_table(Path(path), known_services)])


def load_paths(paths: Iterable[Path], known_services: KnownServices) -> list[RouteRow]:
    """The rows of several files and directories (each ``*.csv`` in it), checked together."""
    files: list[Path] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.csv"))
            if not found:
                problems.append(f"{display_path(path)}: no *.csv routing table in this directory")
            files.extend(found)
        else:
            files.append(path)
    return check_tables([([], problems), *(_read_table(f, known_services) for f in files)])


def load_directory(directory: Path, known_services: KnownServices) -> list[RouteRow]:
    """The rows of every ``*.csv`` file in ``directory``, checked together."""
    return load_paths([directory], known_services)


def load_agreements(
    path: Path, known_services: KnownServices | None = None
) -> tuple[list[SystemEntry], list[Agreement]]:
    """The consumer systems and agreements of a file; RoutingTableInvalid lists every problem.

    Certificate files the systems name are taken relative to the file's directory.
    """
    systems, items, problems = read_agreements(path, known_services)
    if problems:
        raise RoutingTableInvalid(detail="\n".join(problems))
    return systems, items


def read_agreements(
    path: Path, known_services: KnownServices | None = None
) -> tuple[list[SystemEntry], list[Agreement], list[str]]:
    """As :func:`load_agreements`, with the problems returned beside what is valid
    (``routing.agreements_file.check_agreements``); a file it cannot read still raises."""
    path = Path(path)
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RoutingTableInvalid(detail=f"{name}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RoutingTableInvalid(detail=f"{name}: {exc}") from exc
    return check_agreements(text, name, path.resolve().parent, known_services)

"""``serviceplatform routing``: check, load and list the SysID routing table.

The reviewable source is ``routing_tables/*.csv`` (and ``agreements.toml`` beside it); the
running platform reads the table from the database, so ``load`` is how an edited file takes
effect: it validates everything first and then replaces the stored table in one transaction,
and on any error the stored table stays as it was. Subjects (CPR numbers) are masked in all
output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from serviceplatform.commands.context import (
    CliContext,
    CommandFailed,
    audited_change,
    echo_warnings,
    pass_cli,
    pass_reader,
)
from serviceplatform.commands.tables import echo_table
from serviceplatform.errors import RoutingTableInvalid
from serviceplatform.private_file import write_private
from serviceplatform.routing.identifiers import is_valid_cvr
from serviceplatform.routing.model import RouteRow
from serviceplatform.routing.table import describe_subject, format_table
from serviceplatform.routing_files import display_path, load_agreements, load_paths
from serviceplatform.store.repository import RouteChange, RoutingRepository

AGREEMENTS_FILE = "agreements.toml"


def _paths(obj: CliContext, given: Sequence[Path]) -> list[Path]:
    if given:
        return list(given)
    directory = obj.settings.routing.directory
    if not directory:
        # No default on purpose: an installation must never pick up the sample tables.
        raise click.UsageError(
            "no PATH given and no [routing] directory configured: name the routing table "
            "file or directory, or set [routing] directory in the configuration"
        )
    return [obj.settings.path(directory)]


def _agreement_files(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir() and (path / AGREEMENTS_FILE).is_file():
            found.append(path / AGREEMENTS_FILE)
        elif path.suffix == ".toml":
            found.append(path)
    return found


def _describe(row: RouteRow) -> str:
    return (
        f"{row.authority_cvr} {row.service} {row.role} {describe_subject(row.subject)}"
        f" -> {row.sysid}"
    )


def _print_change(change: RouteChange) -> None:
    for row in change.added_rows:
        click.echo(f"  + {_describe(row)}")
    for old, new in change.changed_rows:
        click.echo(f"  ~ {_describe(old)} now {new.sysid}")
    for row in change.removed_rows:
        click.echo(f"  - {_describe(row)}")


def _stranded(obj: CliContext, rows: Sequence[RouteRow]) -> list[str]:
    """The approved agreements routable now that the table ``rows`` leaves without a SysID
    they need: an import replaces the rows ``agreements configure`` set too, without a word
    about the agreements it stops (docs/routing.md)."""
    from serviceplatform.registry import service_needs
    from serviceplatform.routing.needs import ServiceNeeds, unmet_needs
    from serviceplatform.store.agreements import AgreementStore

    needs = service_needs()
    sysids: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        if not row.subject:
            sysids.setdefault((row.authority_cvr, row.service), {})[row.role] = row.sysid
    stranded: list[str] = []
    for view in AgreementStore(obj.database(), needs).find(status="approved"):
        agreement = view.agreement
        if not view.routable:
            continue
        need = needs.get(agreement.service, ServiceNeeds())
        unmet = unmet_needs(
            required_roles=need.required_roles,
            certificate=need.certificate,
            sysids=sysids.get((agreement.authority_cvr, agreement.service), {}),
            cert_alias=agreement.register_cert_alias,
        )
        if unmet:
            stranded.append(
                f"agreement {agreement.uuid} ({agreement.authority_cvr} {agreement.service}, "
                f"approved) lacks {', '.join(unmet.describe())} in this table"
            )
    return stranded


def _warn_stranded(lines: list[str], consequence: str) -> None:
    echo_warnings(f"{line}: {consequence}" for line in lines)


@click.group()
def routing() -> None:
    """The SysID routing table (routing_tables/*.csv)."""


@routing.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@pass_reader
def check(obj: CliContext, paths: tuple[Path, ...]) -> None:
    """Validate routing tables (files or directories; default: the configured directory).

    A directory's agreements.toml, or a .toml file given, is validated too.
    """
    targets = _paths(obj, paths)
    known = obj.known_services()
    problems: list[str] = []
    tables = [p for p in targets if p.suffix != ".toml"]
    if tables:
        try:
            rows = load_paths(tables, known)
        except RoutingTableInvalid as exc:
            problems.append(exc.detail or exc.error_text)
        else:
            authorities = len({row.authority_cvr for row in rows})
            click.echo(f"OK: {len(rows)} routes for {authorities} authorities")
    for file in _agreement_files(targets):
        try:
            systems, agreements = load_agreements(file, known)
        except RoutingTableInvalid as exc:
            problems.append(exc.detail or exc.error_text)
        else:
            click.echo(
                f"OK: {display_path(file)}: {len(systems)} consumer systems, "
                f"{len(agreements)} agreements"
            )
    if problems:
        raise RoutingTableInvalid(detail="\n".join(problems))


def _rows(obj: CliContext, path: Path | None) -> list[RouteRow]:
    if path is not None and path.suffix == ".toml" and not path.is_dir():
        # Left out of the tables, an agreements file read as no routes at all, and importing
        # it removed every route of the platform.
        raise click.BadParameter(
            f"{path} is an agreements file, not a routing table: "
            "`serviceplatform agreements import` reads it",
            param_hint="PATH",
        )
    targets = _paths(obj, [path] if path is not None else [])
    return load_paths([p for p in targets if p.suffix != ".toml"], obj.known_services())


@routing.command("import")
@click.argument("path", required=False, type=click.Path(path_type=Path, exists=True))
@pass_cli
def import_table(obj: CliContext, path: Path | None) -> None:
    """Validate a routing table (file or directory) and make it the platform's table.

    The stored table is replaced in one transaction; on any error (reported with file and
    line) it stays as it was. Agreements are not touched.
    """
    what = f"routing table {path or 'of the settings'}"
    # A refused table is recorded too, so the database is opened for its record.
    with audited_change(obj, "import-routing", what, outside_database=True):
        rows = _rows(obj, path)
        stranded = _stranded(obj, rows)
        change = RoutingRepository(obj.database()).replace_routes(rows)
    click.echo(
        f"loaded {len(rows)} routes: {change.added} added, {change.changed} changed, "
        f"{change.removed} removed, {change.unchanged} unchanged"
    )
    _print_change(change)
    _warn_stranded(stranded, "its calls are refused (SP-303) until the SysID is back")


# ``load`` was the first name of ``import``; scripts written against it keep working.
routing.add_command(import_table, "load")


@routing.command()
@click.argument("path", required=False, type=click.Path(path_type=Path, exists=True))
@click.option("--exit-code", is_flag=True, help="Exit 1 when importing would change anything.")
@pass_reader
def diff(obj: CliContext, path: Path | None, exit_code: bool) -> None:
    """Show what importing a routing table would change, without changing anything."""
    rows = _rows(obj, path)
    change = RoutingRepository(obj.database()).preview_routes(rows)
    if not change.any:
        click.echo(f"no changes ({change.unchanged} routes unchanged)")
        return
    click.echo(
        f"{change.added} to add, {change.changed} to change, {change.removed} to remove, "
        f"{change.unchanged} unchanged"
    )
    _print_change(change)
    _warn_stranded(_stranded(obj, rows), "importing it would stop the agreement's calls")
    if exit_code:
        raise click.exceptions.Exit(1)


@routing.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to FILE instead of standard output.",
)
@click.option("--service", help="Only this service's routes.")
@pass_reader
def export(obj: CliContext, output: Path | None, service: str | None) -> None:
    """Write the platform's routing table in the routing_tables/*.csv format.

    The file is written 0600 (owner only): a route's subject may be a CPR number.
    """
    rows = [
        r
        for r in RoutingRepository(obj.database()).list_routes()
        if service is None or r.service == service
    ]
    text = format_table(rows)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        # 0600 like every file with personal data: a subject may be a CPR number.
        write_private(output, text)
    except OSError as exc:
        raise CommandFailed(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(rows)} routes to {output}", err=True)


@routing.command("list")
@click.option("--authority", metavar="CVR", help="Only this authority's routes.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_reader
def list_routes(obj: CliContext, authority: str | None, as_json: bool) -> None:
    """Show the routing table the platform uses (from the database)."""
    if authority is not None and not is_valid_cvr(authority):
        raise click.BadParameter(
            f"{authority!r} is not a valid CVR number", param_hint="--authority"
        )
    rows = RoutingRepository(obj.database()).list_routes(authority)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "authority_cvr": r.authority_cvr,
                        "service": r.service,
                        "role": r.role,
                        "sysid": r.sysid,
                        "subject": describe_subject(r.subject) if r.subject else None,
                        "source": r.source,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("no routes" + (f" for authority {authority}" if authority else ""))
        return
    header = ("AUTHORITY", "SERVICE", "ROLE", "SYSID", "SUBJECT", "SOURCE")
    table = [
        (r.authority_cvr, r.service, r.role, r.sysid, describe_subject(r.subject), r.source)
        for r in rows
    ]
    echo_table(header, table)

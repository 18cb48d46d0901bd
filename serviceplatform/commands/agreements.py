"""``serviceplatform agreements``: the service agreement lifecycle from the command line.

The same operations as the admin API (docs/admin-api.md) with operator rights: whoever can
run this command on the platform's configuration is an operator. Each change is recorded in
the agreement's history with the acting user (``cli:<login>``) and the ``--reason``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from serviceplatform.commands.context import (
    CliContext,
    audited_change,
    cli_actor,
    echo_warnings,
    pass_cli,
    pass_reader,
)
from serviceplatform.commands.tables import echo_table
from serviceplatform.errors import CertificateAliasExpired, CertificateAliasUnknown
from serviceplatform.routing.identifiers import is_valid_cvr
from serviceplatform.routing.lifecycle import TRANSITIONS
from serviceplatform.routing.model import Agreement, AgreementStatus
from serviceplatform.store.agreements import AgreementStore, AgreementView
from serviceplatform.store.agreements_import import (
    ImportReport,
    SystemImport,
    apply_import,
    plan_import,
    read_import,
)


def _store(obj: CliContext) -> AgreementStore:
    from serviceplatform.admin.certificate_alias import AliasChecker
    from serviceplatform.outbound.certstore import CertificateStore
    from serviceplatform.registry import service_needs

    certificates = CertificateStore(obj.settings.path(obj.settings.certificates.directory))
    return AgreementStore(obj.database(), service_needs(), alias_check=AliasChecker(certificates))


def _as_dict(view: AgreementView) -> dict[str, Any]:
    from serviceplatform.admin.views import agreement_json

    return agreement_json(view)


def _print(view: AgreementView, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_as_dict(view), indent=2))
        return
    a = view.agreement
    sysids = ", ".join(f"{role}={sysid}" for role, sysid in view.sysids.items()) or "-"
    click.echo(
        f"{a.uuid}  {a.authority_cvr}  {a.service}  {a.status.value}"
        f"  configured={'yes' if view.configured else 'no'}"
        f"  routable={'yes' if view.routable else 'no'}"
        + (f"  missing: {', '.join(view.missing)}" if view.missing else "")
        + "\n"
        f"  consumer system {view.consumer_system_name or a.consumer_system}, "
        f"supplier {a.supplier}\n"
        f"  certificate {a.register_cert_alias or '-'}, SysIDs {sysids}, "
        f"valid {a.valid_from or '-'} .. {a.valid_to or '-'}"
    )


@click.group()
def agreements() -> None:
    """Service agreements: request, approve, reject, suspend, resume, revoke, configure, import."""


@agreements.command("list")
@click.option(
    "--status", type=click.Choice(["requested", "approved", "rejected", "suspended", "revoked"])
)
@click.option("--service")
@click.option("--authority", metavar="CVR")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_reader
def list_agreements(
    obj: CliContext, status: str | None, service: str | None, authority: str | None, as_json: bool
) -> None:
    """List agreements, with filters.

    --service must be a service of the platform and --authority a CVR number: a filter that
    cannot match anything is a usage error (exit 2), not an empty list.
    """
    if authority is not None and not is_valid_cvr(authority):
        raise click.BadParameter(
            f"{authority!r} is not a CVR number (8 digits with a valid check digit)",
            param_hint="--authority",
        )
    services = sorted(obj.known_services())
    if service is not None and service not in services:
        raise click.BadParameter(
            f"{service!r} is not a service: {', '.join(services)}", param_hint="--service"
        )
    views = _store(obj).find(status=status, service=service, authority_cvr=authority)
    if as_json:
        click.echo(json.dumps([_as_dict(v) for v in views], indent=2))
        return
    if not views:
        click.echo("no agreements")
        return
    header = ("UUID", "AUTHORITY", "SERVICE", "STATUS", "CONFIGURED", "ROUTABLE", "SUPPLIER")
    table = [
        (
            v.agreement.uuid,
            v.agreement.authority_cvr,
            v.agreement.service,
            v.agreement.status.value,
            "yes" if v.configured else "no",
            "yes" if v.routable else "no",
            v.agreement.supplier,
        )
        for v in views
    ]
    echo_table(header, table)


@agreements.command()
@click.argument("agreement_uuid")
@click.option("--json", "as_json", is_flag=True)
@pass_reader
def show(obj: CliContext, agreement_uuid: str, as_json: bool) -> None:
    """One agreement with its history."""
    store = _store(obj)
    view = store.get(agreement_uuid)
    events = store.history(agreement_uuid)
    if as_json:
        data = _as_dict(view)
        data["history"] = [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "from_status": e.from_status,
                "to_status": e.to_status,
                "reason": e.reason,
                "details": e.details,
            }
            for e in events
        ]
        click.echo(json.dumps(data, indent=2))
        return
    _print(view, False)
    for e in events:
        change = f"{e.from_status or '-'} -> {e.to_status}"
        click.echo(
            f"  {e.at:%Y-%m-%d %H:%M:%S}Z  {e.action:<9} {change:<22} {e.actor}"
            + (f"  {e.reason}" if e.reason else "")
        )


@agreements.command()
@click.option("--authority", "authority_cvr", required=True, metavar="CVR")
@click.option("--service", required=True)
@click.option("--consumer-system", required=True, metavar="UUID")
@click.option("--supplier", required=True)
@click.option("--reason")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def request(
    obj: CliContext,
    authority_cvr: str,
    service: str,
    consumer_system: str,
    supplier: str,
    reason: str | None,
    as_json: bool,
) -> None:
    """Request a new agreement (status requested)."""
    with audited_change(
        obj, "request", f"agreement for {consumer_system}", authority_cvr=authority_cvr
    ):
        view = _store(obj).request(
            authority_cvr=authority_cvr,
            service=service,
            consumer_system=consumer_system,
            supplier=supplier,
            actor=cli_actor(),
            reason=reason,
        )
    _print(view, as_json)


def _transition_command(action: str) -> click.Command:
    @click.argument("agreement_uuid")
    @click.option("--reason", help="Why (required for reject, suspend and revoke).")
    @click.option("--json", "as_json", is_flag=True)
    @pass_cli
    def command(obj: CliContext, agreement_uuid: str, reason: str | None, as_json: bool) -> None:
        with audited_change(obj, action, f"agreement {agreement_uuid}") as note:
            view = _store(obj).transition(agreement_uuid, action, actor=cli_actor(), reason=reason)
            note.authority_cvr = view.agreement.authority_cvr
        _print(view, as_json)

    sources, target = TRANSITIONS[action]
    command.__doc__ = (
        f"{action.capitalize()} an agreement ({' or '.join(sorted(s.value for s in sources))}"
        f" -> {target.value})."
    )
    return click.command(action)(command)


for _action in TRANSITIONS:
    agreements.add_command(_transition_command(_action))


@agreements.command()
@click.argument("agreement_uuid")
@click.option(
    "--sysid", "sysids", multiple=True, metavar="ROLE=SYSID", help="A SysID per role (repeat)."
)
@click.option("--cert-alias", help="The outward certificate's alias in the certificate store.")
@click.option("--valid-to", type=click.DateTime(formats=["%Y-%m-%d"]), help="Last valid day.")
@click.option("--reason")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def configure(
    obj: CliContext,
    agreement_uuid: str,
    sysids: tuple[str, ...],
    cert_alias: str | None,
    valid_to: Any,
    reason: str | None,
    as_json: bool,
) -> None:
    """The post-configuration (TSP07): SysIDs, certificate and end date."""
    parsed: dict[str, str] = {}
    for item in sysids:
        role, separator, sysid = item.partition("=")
        if not separator or not role or not sysid:
            raise click.BadParameter(f"{item!r} is not ROLE=SYSID", param_hint="--sysid")
        parsed[role] = sysid
    end: date | None = valid_to.date() if valid_to is not None else None
    with audited_change(obj, "configure", f"agreement {agreement_uuid}") as note:
        view = _store(obj).configure(
            agreement_uuid,
            actor=cli_actor(),
            sysids=parsed,
            register_cert_alias=cert_alias,
            valid_to=end,
            reason=reason,
        )
        note.authority_cvr = view.agreement.authority_cvr
    _print(view, as_json)


def _read_file(obj: CliContext, path: Path) -> tuple[list[SystemImport], list[Agreement]]:
    return read_import(path, obj.known_services(), now=datetime.now(UTC))


def _certificate_warnings(obj: CliContext, items: list[Agreement], *, planned: bool) -> list[str]:
    """Each approved agreement of the file whose certificate alias this node's certificate store
    lacks, or holds expired: ``agreements configure`` refuses such an alias, an import takes it
    (agreements may well come before their certificates) and says so here. ``planned``: the
    lines of ``diff``, for an import not yet made."""
    from serviceplatform.admin.certificate_alias import AliasChecker
    from serviceplatform.outbound.certstore import CertificateStore

    directory = obj.settings.path(obj.settings.certificates.directory)
    check = AliasChecker(CertificateStore(directory))
    verb = "would be" if planned else "is"
    lines: list[str] = []
    for agreement in items:
        alias = agreement.register_cert_alias
        if agreement.status is not AgreementStatus.APPROVED or not alias:
            continue
        try:
            check(alias)
        except CertificateAliasUnknown:
            problem = f"certificate alias {alias!r} names no certificate in {directory}"
            outcome = f"(SP-420) until `serviceplatform certs import {alias}` adds it"
        except CertificateAliasExpired as exc:
            problem = f"certificate alias {exc.detail}"
            outcome = "(SP-421) until the certificate is renewed"
        else:
            continue
        lines.append(
            f"agreement {agreement.uuid} ({agreement.authority_cvr} {agreement.service}, "
            f"approved): {problem}: a call that needs it {verb} refused {outcome}"
        )
    return lines


def _print_report(report: ImportReport) -> None:
    for line in report.lines:
        click.echo(f"  {line}")


@agreements.command()
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--exit-code", is_flag=True, help="Exit 1 when importing would change anything.")
@pass_reader
def diff(obj: CliContext, path: Path, exit_code: bool) -> None:
    """Show what importing an agreements file would change, without changing anything."""
    systems, items = _read_file(obj, path)
    report = plan_import(obj.database(), systems, items, now=datetime.now(UTC))
    # Unchanged agreements too: the store may have lost the certificate since.
    echo_warnings(_certificate_warnings(obj, items, planned=True))
    if not report.any:
        click.echo(f"no changes ({report.unchanged} systems and agreements unchanged)")
        return
    click.echo(f"{len(report.lines)} changes, {report.unchanged} unchanged")
    _print_report(report)
    if exit_code:
        raise click.exceptions.Exit(1)


@agreements.command("import")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@pass_cli
def import_file(obj: CliContext, path: Path) -> None:
    """Load an agreements file (agreements.toml): consumer systems, certificates, agreements.

    Everything is validated first and written in one transaction; nothing is deleted. Each
    change is recorded in the history of what it changed. Run `diff` first to review.
    """
    systems, items = _read_file(obj, path)
    with audited_change(obj, "import", f"agreements file {path}"):
        report = apply_import(
            obj.database(), systems, items, now=datetime.now(UTC), actor=cli_actor()
        )
    click.echo(f"imported {path}: {len(report.lines)} changes, {report.unchanged} unchanged")
    _print_report(report)
    echo_warnings(_certificate_warnings(obj, items, planned=False))

"""``serviceplatform systems``: onboard the case systems (anvendersystemer) that call the platform.

A consumer system is a name, its supplier's CVR number and the certificates it calls with;
calls are matched by the certificate's SHA-256 fingerprint (docs/consumer-systems.md). The
same operations as the admin API, with operator rights; each change is recorded in the
system's history and in the audit trail with the acting user (``cli:<login>``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from serviceplatform.commands.context import (
    CliContext,
    audited_change,
    cli_actor,
    pass_cli,
    pass_reader,
)
from serviceplatform.commands.tables import echo_table
from serviceplatform.errors import CertificateInvalid
from serviceplatform.routing.identifiers import is_valid_cvr
from serviceplatform.store.systems import DEFAULT_OVERLAP, SystemStore, SystemView

F = TypeVar("F", bound=Callable[..., Any])


def _store(obj: CliContext) -> SystemStore:
    return SystemStore(obj.database())


def _pem(path: Path) -> bytes:
    # A file that cannot be read as a certificate (missing, a directory, unreadable, not PEM)
    # is one failure, SP-608 and exit 1: click's own check made a directory a usage error.
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertificateInvalid(f"{path}: cannot read: {exc.strerror or exc}") from None


def _print(view: SystemView, as_json: bool) -> None:
    from serviceplatform.admin.views import system_json

    now = datetime.now(UTC)
    data = system_json(view, now)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    system = view.system
    state = "active" if system.active else f"DEACTIVATED {system.deactivated_at:%Y-%m-%d %H:%M}Z"
    click.echo(
        f"{system.uuid}  {system.name}  supplier {system.supplier_cvr}  {state}"
        f"  callable={'yes' if data['callable'] else 'no'}"
    )
    if not view.certificates:
        click.echo("  no certificate: calls are refused (SP-216)")
    for c in view.certificates:
        accepted = "accepted" if c.accepted_at(now) else "NOT accepted"
        click.echo(
            f"  SHA-256 {c.fingerprint}\n"
            f"    {c.subject}  (issuer {c.issuer})\n"
            f"    valid to {c.not_after:%Y-%m-%d}; {accepted} now, "
            f"window {c.window}"
        )


def _cert_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--cert",
        "cert_file",
        required=True,
        type=click.Path(path_type=Path),
        help=help_text,
    )


@click.group()
def systems() -> None:
    """Consumer systems: register, rotate certificates, deactivate."""


@systems.command("list")
@click.option("--supplier-cvr", metavar="CVR", help="Only this supplier's systems.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_reader
def list_systems(obj: CliContext, supplier_cvr: str | None, as_json: bool) -> None:
    """List the consumer systems."""
    from serviceplatform.admin.views import system_json

    if supplier_cvr is not None and not is_valid_cvr(supplier_cvr):
        # A filter that cannot match: a usage error, not "no consumer systems".
        raise click.BadParameter(
            f"{supplier_cvr!r} is not a CVR number (8 digits with a valid check digit)",
            param_hint="--supplier-cvr",
        )

    views = _store(obj).find(supplier_cvr=supplier_cvr)
    now = datetime.now(UTC)
    if as_json:
        click.echo(json.dumps([system_json(v, now) for v in views], indent=2))
        return
    if not views:
        click.echo("no consumer systems")
        return
    header = ("UUID", "NAME", "SUPPLIER", "STATE", "CERTIFICATES", "CALLABLE")
    table = []
    for view in views:
        data = system_json(view, now)
        table.append(
            (
                view.system.uuid,
                view.system.name,
                view.system.supplier_cvr,
                "active" if view.system.active else "deactivated",
                f"{len(view.accepted_now(now))} accepted / {len(view.certificates)}",
                "yes" if data["callable"] else "no",
            )
        )
    echo_table(header, table)


@systems.command()
@click.argument("system_uuid")
@click.option("--json", "as_json", is_flag=True)
@pass_reader
def show(obj: CliContext, system_uuid: str, as_json: bool) -> None:
    """One consumer system with its certificates and history."""
    store = _store(obj)
    view = store.get(system_uuid)
    events = store.history(system_uuid)
    if as_json:
        from serviceplatform.admin.views import system_history_json, system_json

        data = system_json(view, datetime.now(UTC))
        data["history"] = system_history_json(events)
        click.echo(json.dumps(data, indent=2))
        return
    _print(view, False)
    for e in events:
        click.echo(
            f"  {e.at:%Y-%m-%d %H:%M:%S}Z  {e.action:<15} {e.actor}"
            + (f"  {e.reason}" if e.reason else "")
        )


@systems.command()
@click.option("--name", required=True, help="The system's name, as its users know it.")
@click.option("--supplier-cvr", required=True, metavar="CVR", help="The supplier's CVR number.")
@_cert_option("The certificate the system calls with (PEM).")
@click.option("--uuid", "system_uuid", help="The system's UUID (default: a new one).")
@click.option("--reason")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def register(
    obj: CliContext,
    name: str,
    supplier_cvr: str,
    cert_file: Path,
    system_uuid: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Register a consumer system with its first certificate."""
    with audited_change(obj, "register", f"consumer system {system_uuid or name!r}"):
        view = _store(obj).register(
            name=name,
            supplier_cvr=supplier_cvr,
            certificate_pem=_pem(cert_file),
            actor=cli_actor(),
            reason=reason,
            system_uuid=system_uuid,
        )
    _print(view, as_json)


@systems.command()
@click.argument("system_uuid")
@_cert_option("The new certificate (PEM).")
@click.option(
    "--overlap-days",
    type=click.FloatRange(min=0, max=3650),
    default=DEFAULT_OVERLAP.days,
    show_default=True,
    help="How long the certificates accepted now stay accepted beside the new one.",
)
@click.option("--reason")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def rotate(
    obj: CliContext,
    system_uuid: str,
    cert_file: Path,
    overlap_days: float,
    reason: str | None,
    as_json: bool,
) -> None:
    """Add a new certificate; the current ones are retired after the overlap."""
    if not 0 <= overlap_days <= 3650:
        # NaN passes click's range (every comparison with it is false); timedelta refuses it.
        raise click.BadParameter("must be a number of days, 0-3650", param_hint="--overlap-days")
    with audited_change(obj, "rotate", f"consumer system {system_uuid}"):
        view = _store(obj).add_certificate(
            system_uuid,
            _pem(cert_file),
            actor=cli_actor(),
            overlap=timedelta(days=overlap_days),
            reason=reason,
        )
    _print(view, as_json)


@systems.command("add-certificate")
@click.argument("system_uuid")
@_cert_option("Another certificate of the system (PEM).")
@click.option("--reason")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def add_certificate(
    obj: CliContext, system_uuid: str, cert_file: Path, reason: str | None, as_json: bool
) -> None:
    """Add a certificate beside the current ones (none is retired)."""
    with audited_change(obj, "add-certificate", f"consumer system {system_uuid}"):
        view = _store(obj).add_certificate(
            system_uuid, _pem(cert_file), actor=cli_actor(), reason=reason
        )
    _print(view, as_json)


@systems.command()
@click.argument("system_uuid")
@click.option("--reason", required=True, help="Why the system may no longer call.")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def deactivate(obj: CliContext, system_uuid: str, reason: str, as_json: bool) -> None:
    """Refuse every call of the system (SP-218) until it is activated again."""
    with audited_change(obj, "deactivate", f"consumer system {system_uuid}"):
        view = _store(obj).set_active(system_uuid, False, actor=cli_actor(), reason=reason)
    _print(view, as_json)


@systems.command()
@click.argument("system_uuid")
@click.option("--reason")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def activate(obj: CliContext, system_uuid: str, reason: str | None, as_json: bool) -> None:
    """Let a deactivated system call again."""
    with audited_change(obj, "activate", f"consumer system {system_uuid}"):
        view = _store(obj).set_active(system_uuid, True, actor=cli_actor(), reason=reason)
    _print(view, as_json)

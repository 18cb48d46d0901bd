"""``serviceplatform print-route``: show and change how an agreement's print calls go out.

``show AGREEMENT`` prints the route (``sf1600``: the NemSMS register with the agreement's
client certificate; ``sf1601``: SF1601 with a token bound to that certificate) and the
credential it implies; ``set AGREEMENT ROUTE`` changes it, audited as the admin API's
changes are (an ``admin`` audit record) and in the agreement's history.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from serviceplatform.commands.context import (
    CliContext,
    audited_change,
    cli_actor,
    pass_cli,
    pass_reader,
)


def _describe(obj: CliContext, agreement_uuid: str) -> dict[str, str | bool]:
    from integrations.sf2250.print_routes import PrintRoutes

    return PrintRoutes(obj.database()).describe(agreement_uuid)


def _print(data: dict[str, str | bool], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    default = "" if data["chosen"] else " (default)"
    click.echo(
        f"agreement {data['agreement']}: print route {data['print_route']}{default}, "
        f"credential {data['credential']}"
    )


@click.group("print-route")
def print_route() -> None:
    """How an agreement's EP_SP1/EP_SP4 calls go out: sf1600 (register) or sf1601 (token)."""


@print_route.command()
@click.argument("agreement_uuid", metavar="AGREEMENT")
@click.option("--json", "as_json", is_flag=True)
@pass_reader
def show(obj: CliContext, agreement_uuid: str, as_json: bool) -> None:
    """Show the agreement's print route and the credential it implies."""
    _print(_describe(obj, agreement_uuid), as_json)


@print_route.command("set")
@click.argument("agreement_uuid", metavar="AGREEMENT")
@click.argument("route", type=click.Choice(["sf1600", "sf1601"]))
@click.option("--reason")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def set_route(
    obj: CliContext, agreement_uuid: str, route: str, reason: str | None, as_json: bool
) -> None:
    """Send the agreement's print calls through ROUTE from the next call on (audited).

    sf1601 needs the [peers.sts] and [peers.sf1601] sections in the settings.
    """
    from integrations.sf2250.print_routes import PrintRoutes

    with audited_change(obj, "print_route", f"agreement {agreement_uuid} -> {route}"):
        PrintRoutes(obj.database()).set_route(
            agreement_uuid,
            route,
            actor=cli_actor(),
            now=datetime.now(UTC),
            peers=obj.settings.peers,
            reason=reason,
        )
    _print(_describe(obj, agreement_uuid), as_json)

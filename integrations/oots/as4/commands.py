"""``serviceplatform as4``: the native AS4 access point's parties, a test message, the messages.

- ``parties``: our party id and type with the signing and decryption certificates, every
  configured partner (endpoint, certificates, how long they are valid), and which gateway
  (``domibus-ws`` or ``as4``) and party id each authority of ``[oots.requesters]`` uses;
- ``ping PARTY``: the ebMS test message to a partner, one attempt; its signed receipt is checked
  like any other (exit 1 and the platform error without one);
- ``messages``: the newest OOTS messages with their direction, action, parties and state (the
  ``oots_messages`` table, whichever gateway carried them).

The settings are ``[oots.as4]`` (``settings.As4Settings``, the OOTS settings' ``as4``); without
a party id and signing key every command says it is not configured.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select

from integrations.oots.as4.settings import As4Settings, local_access_point, partners
from integrations.oots.settings import GATEWAY_AS4, OOTS_SETTINGS
from serviceplatform.commands.context import CliContext, pass_cli, pass_reader
from serviceplatform.errors import ConfigurationError


def as4_settings(obj: CliContext) -> As4Settings:
    settings = obj.settings.section(OOTS_SETTINGS).as4
    if not settings.configured:
        raise ConfigurationError("[oots.as4] party_id and signing_alias are not configured")
    return settings


def _platform(obj: CliContext) -> Any:
    from serviceplatform.platform import Platform

    return Platform(obj.settings, database=obj.database())


def _certificate_line(what: str, certificate: Any) -> str:
    subject = certificate.subject.rfc4514_string()
    return f"  {what:<11} {subject}  valid until {certificate.not_valid_after_utc:%Y-%m-%d}"


@click.group()
def as4() -> None:
    """The platform's own eDelivery AS4 access point for OOTS."""


@as4.command("parties")
@pass_reader
def parties_command(obj: CliContext) -> None:
    """Our access point and the configured partners."""
    settings = as4_settings(obj)
    local = local_access_point(settings, _platform(obj).certificates)
    click.echo(f"{local.party_id}  ({local.party_type})  this access point")
    click.echo(_certificate_line("signing", local.signing.certificate))
    click.echo(_certificate_line("decryption", local.decryption.certificate))
    for party_id, partner in sorted(partners(settings, path=obj.settings.path).items()):
        click.echo(f"{party_id}  ({partner.party_type})  {partner.endpoint.url}")
        click.echo(_certificate_line("signing", partner.signing_certificate))
        click.echo(_certificate_line("encryption", partner.encryption_certificate))
    _authorities(obj)


def _authorities(obj: CliContext) -> None:
    """Which gateway each listed authority's requests go through (others: the platform's)."""
    from integrations.oots.access_points import access_point_for, platform_access_point

    oots = obj.settings.section(OOTS_SETTINGS)
    click.echo("authorities:")
    for cvr in sorted(oots.requesters):
        point = access_point_for(oots, cvr)
        where = "" if point.gateway == GATEWAY_AS4 else f"  {point.url or '(not configured)'}"
        click.echo(f"  {cvr}  {point.gateway:<10}  {point.party_id or '?'}{where}")
    default = platform_access_point(oots)
    click.echo(f"  (others)  {default.gateway:<10}  {default.party_id or '?'}  {default.url}")


@as4.command("ping")
@click.argument("party")
@pass_cli
def ping_command(obj: CliContext, party: str) -> None:
    """Send the ebMS test message to PARTY and check its receipt."""
    from integrations.oots.as4.app import GATEWAY_SCHEDULE, build_sender

    sender = build_sender(_platform(obj), as4_settings(obj), schedule=GATEWAY_SCHEDULE)
    result = sender.ping(party)
    click.echo(f"{party}: receipt {result.receipt_message_id} for {result.message_id}")


@as4.command("messages")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@pass_reader
def messages_command(obj: CliContext, limit: int) -> None:
    """The newest OOTS messages and their states."""
    from integrations.oots.tables import oots_messages as table

    query = select(
        table.c.received_at,
        table.c.direction,
        table.c.action,
        table.c.from_party,
        table.c.to_party,
        table.c.state,
        table.c.message_id,
    )
    with obj.database().transaction() as connection:
        rows = connection.execute(query.order_by(table.c.id.desc()).limit(limit)).all()
    if not rows:
        click.echo("no OOTS messages")
    for at, direction, action, from_party, to_party, state, message_id in rows:
        click.echo(
            f"{at:%Y-%m-%d %H:%M:%S}  {direction:<3}  {action:<20}  {from_party} -> "
            f"{to_party or '?'}  {state:<9}  {message_id}"
        )

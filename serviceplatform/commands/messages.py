"""``serviceplatform messages list|show|resend|purge``: the message log from the command line.

The same log as the admin API's (docs/admin-api.md, "Message log"), with operator rights:
every call and every outward message, newest first, one page at a time (``--after`` takes
the cursor the previous page printed). CPR numbers are shown masked. ``resend`` hands a
failed OOTS request or an undelivered outbox row on again and leaves an ``admin`` audit
record with the operating-system user, as every change from the command line does.
``purge`` deletes the delivered outbox messages past ``[distributor]
delivered_retention_days`` now, as the daily job does (``serviceplatform.outbox_purge``); on
a database failure (exit 1, as every command) the batches before it stay deleted.
"""

from __future__ import annotations

import json
from typing import Any

import click

from serviceplatform.commands.context import (
    CliContext,
    audited_change,
    cli_actor,
    pass_cli,
    pass_reader,
)
from serviceplatform.commands.tables import echo_table
from serviceplatform.messagelog.log import MessageLog
from serviceplatform.messagelog.model import MAX_PAGE, OUTCOMES
from serviceplatform.messagelog.render import detail_json, message_json, page_json


def _log(obj: CliContext) -> MessageLog:
    from serviceplatform.platform import Platform

    return MessageLog.for_platform(Platform(obj.settings, database=obj.database()))


#: The option of a filter whose name differs from the query parameter's.
_OPTION = {"authority_cvr": "--authority", "error_code": "--error-code"}


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


@click.group()
def messages() -> None:
    """The message log: calls and outward messages; details; resend; purge."""


@messages.command("list")
@click.option("--since", metavar="WHEN", help="YYYY-MM-DD or ISO timestamp (inclusive).")
@click.option("--until", metavar="WHEN", help="YYYY-MM-DD (that whole day) or ISO timestamp.")
@click.option("--authority", "authority_cvr", metavar="CVR")
@click.option("--service")
@click.option("--operation")
@click.option("--outcome", type=click.Choice(OUTCOMES))
@click.option("--error-code", metavar="SP-XXX")
@click.option("--message-id")
@click.option("--conversation-id")
@click.option("--subject", metavar="CPR|CVR", help="In full; shown masked.")
@click.option("--source", help="call, oots, outbox.")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@click.option("--after", metavar="CURSOR", help="The cursor the previous page printed.")
@click.option("--json", "as_json", is_flag=True, help="JSON: {messages, next}.")
@pass_reader
def list_messages(obj: CliContext, /, as_json: bool, **filters: Any) -> None:
    """One page of the message log, newest first.

    A filter of a fixed vocabulary or format (--authority, --service, --outcome,
    --error-code, --subject, --source) that cannot match is a usage error (exit 2).
    """
    from serviceplatform.admin.operations_views import filter_problem, message_query
    from serviceplatform.registry import message_log_services

    params = {k: str(v) for k, v in filters.items() if v is not None}
    services = message_log_services()
    for name, value in params.items():
        problem = filter_problem(name, value.strip(), services) if value.strip() else None
        if problem is not None:
            raise click.BadParameter(problem, param_hint=_OPTION.get(name, f"--{name}"))
    log = _log(obj)
    source = params.get("source")
    if source and source not in log.sources:
        raise click.BadParameter(
            f"{source!r} is not a source: {', '.join(sorted(log.sources))}", param_hint="--source"
        )
    page = log.page(message_query(params, set(log.sources), services))
    if as_json:
        click.echo(json.dumps(page_json(page), indent=2))
        return
    if not page.rows:
        click.echo("no messages")
        return
    header = ("AT (UTC)", "REF", "AUTHORITY", "SERVICE", "OPERATION", "OUTCOME", "STATE",
              "ERROR", "MESSAGE ID", "SUBJECT")  # fmt: skip
    columns = ("authority_cvr", "service", "operation", "outcome", "state", "error_code",
               "message_id", "subject")  # fmt: skip
    rows = []
    for row in page.rows:
        shown = message_json(row)
        at = row.at.strftime("%Y-%m-%d %H:%M:%S")
        rows.append((at, shown["ref"], *(_cell(shown[k]) for k in columns)))
    echo_table(header, rows)
    if page.next is not None:
        click.echo(f"more: --after {page.next.encode()}")


@messages.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_reader
def show(obj: CliContext, ref: str, as_json: bool) -> None:
    """One message (REF as listed, e.g. call:42 or oots:<request id>) with its details."""
    answer = detail_json(_log(obj).detail(ref))
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    for key, value in answer["message"].items():
        click.echo(f"{key:<16}{_cell(value)}")
    click.echo(f"{'resendable':<16}{'yes' if answer['resendable'] else 'no'}")
    for section in answer["sections"]:
        click.echo(f"\n{section['title']}:")
        for item in section["rows"] or [{}]:
            click.echo("  " + ("  ".join(f"{k}={_cell(v)}" for k, v in item.items()) or "-"))


@messages.command()
@click.argument("ref")
@pass_cli
def resend(obj: CliContext, ref: str) -> None:
    """Send a failed OOTS request or an undelivered outbox row again (audited)."""
    log = _log(obj)
    with audited_change(obj, "resend", f"message {ref}") as note:
        note.authority_cvr = log.detail(ref).row.authority_cvr
        result = log.resend(ref, actor=cli_actor())
    click.echo(("resent: " if result.sent else "not resent: ") + result.text)
    if not result.sent:
        raise click.exceptions.Exit(1)


@messages.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@pass_cli
def purge(obj: CliContext, dry_run: bool) -> None:
    """Delete delivered outbox messages older than [distributor] delivered_retention_days.

    Pending messages (failed ones too) are never deleted. Prints how many were deleted, with a
    progress line per 2,000 on stderr. When the database fails (exit 1), the rows deleted
    before that stay deleted; run it again for the rest.
    """
    from datetime import UTC, datetime

    from serviceplatform.outbox_purge import cutoff, purge
    from serviceplatform.store.outbox import Outbox

    days = obj.settings.distributor.delivered_retention_days
    now = datetime.now(UTC)
    before = cutoff(obj.settings, now)
    what = (
        f"delivered outbox messages older than {days} day(s) (before {before:%Y-%m-%d %H:%M} UTC)"
    )
    # Counting is a report: like the reading commands, it does not migrate the schema.
    obj.reading = dry_run
    database = obj.database()
    due = Outbox(database).purgeable(before)
    if dry_run:
        click.echo(f"would delete {due} {what}")
        return

    def progress(deleted: int) -> None:
        if due > 0 and deleted < due:
            click.echo(f"  purging: {deleted} of {due}", err=True)

    with audited_change(obj, "purge", what):
        deleted = purge(obj.settings, database, now=now, on_batch=progress)
    click.echo(f"deleted {deleted} {what}")

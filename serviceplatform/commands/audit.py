"""``serviceplatform audit``: read the audit trail.

The audit table keeps the subject (CPR number) in full; this command is an application
surface like any other, so it masks CPR numbers in the table *and* in ``--json``. Records are
printed oldest first, newest last, like ``tail``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from serviceplatform.commands.context import CliContext, pass_reader
from serviceplatform.commands.tables import echo_table
from serviceplatform.logmask import mask_cpr_numbers, mask_subject
from serviceplatform.store.audit import AuditEntry, AuditLog

#: The most records ``tail -n`` shows: a bound the databases' integers hold (a larger number
#: failed inside SQLite with a traceback).
MAX_LINES = 1_000_000


def _as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "message_id": entry.message_id,
        "authority_cvr": entry.authority_cvr,
        "consumer_system": entry.consumer_system,
        "service": entry.service,
        "operation": entry.operation,
        "subject": mask_subject(entry.subject),
        "sysid": entry.sysid,
        "upstream_status": entry.upstream_status,
        "outcome": entry.outcome,
        "error_code": entry.error_code,
        "latency_ms": entry.latency_ms,
        "detail": mask_cpr_numbers(entry.detail) if entry.detail else entry.detail,
    }


def _line(entry: AuditEntry) -> tuple[str, ...]:
    return (
        entry.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z",
        entry.authority_cvr or "-",
        entry.service,
        entry.operation or "-",
        mask_subject(entry.subject) or "-",
        entry.sysid or "-",
        entry.outcome if entry.error_code is None else f"{entry.outcome} {entry.error_code}",
        "-" if entry.upstream_status is None else str(entry.upstream_status),
        f"{entry.latency_ms:.1f}",
        entry.message_id or "-",
        _short(entry.detail),
    )


def _short(detail: str | None, width: int = 80) -> str:
    if not detail:
        return ""
    text = " ".join(mask_cpr_numbers(detail).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group()
def audit() -> None:
    """The audit trail of calls."""


@audit.command()
@click.option(
    "-n", "--lines", "limit", type=click.IntRange(1, MAX_LINES), default=20, show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="JSON (a list, oldest first).")
@pass_reader
def tail(obj: CliContext, limit: int, as_json: bool) -> None:
    """Show the latest audit records, newest last (CPR numbers masked)."""
    entries = list(reversed(AuditLog(obj.database()).tail(limit)))
    if as_json:
        click.echo(json.dumps([_as_json(e) for e in entries], indent=2))
        return
    if not entries:
        click.echo("no audit records")
        return
    header = (
        "AT (UTC)",
        "AUTHORITY",
        "SERVICE",
        "OPERATION",
        "SUBJECT",
        "SYSID",
        "OUTCOME",
        "UPSTREAM",
        "MS",
        "MESSAGE ID",
        "DETAIL",
    )
    echo_table(header, (_line(e) for e in entries))

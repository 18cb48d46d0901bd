"""``serviceplatform certs``: the store of outward client certificates (docs/certificates.md).

The store is the ``[certificates] directory`` of the settings: ``<alias>.crt`` and
``<alias>.key`` per certificate. These commands list and inspect it, import a pair (PEM or
PKCS#12) and remove one. Nothing here ever prints private key material: imports report the
certificate's public facts only, and errors carry no parser output.

Exit codes: 0 success; 1 a platform error (``error: SP-4xx ...`` on stderr); 2 a usage error;
and ``certs expiring`` exits 3 when at least one certificate expires within ``--days`` (or has
expired), so monitoring and cron jobs can act on the exit code alone.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from serviceplatform.commands.context import (
    CliContext,
    CommandFailed,
    audited_change,
    pass_cli,
    pass_reader,
)
from serviceplatform.commands.tables import echo_table
from serviceplatform.errors import CertificateUnavailable
from serviceplatform.outbound.certstore import CertificateStore, CertInfo

#: ``certs list`` calls a certificate "expiring" when it has fewer days left than this.
EXPIRING_DAYS = 30
#: Exit code of ``certs expiring`` when it found any.
EXIT_EXPIRING = 3


def _store(obj: CliContext) -> CertificateStore:
    return CertificateStore(obj.settings.path(obj.settings.certificates.directory))


def _date(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _other_problems(info: CertInfo) -> tuple[str, ...]:
    # The validity problem comes last (CertInfo.problems); the status word says it already.
    if info.expired or info.not_yet_valid:
        return info.problems[:-1]
    return info.problems


def status(info: CertInfo, expiring_days: int = EXPIRING_DAYS) -> str:
    """The table's status: ok, expiring, EXPIRED, NOT YET VALID and/or what is wrong."""
    words: list[str] = []
    if info.expired:
        words.append("EXPIRED")
    elif info.not_yet_valid:
        words.append("NOT YET VALID")
    elif info.expires_within(expiring_days):
        words.append("expiring")
    words.extend(_other_problems(info))
    return "; ".join(words) or "ok"


def _state(info: CertInfo, expiring_days: int = EXPIRING_DAYS) -> str:
    """One word for scripts: ok, expiring, expired, not_yet_valid or problem."""
    if info.expired:
        return "expired"
    if info.not_yet_valid:
        return "not_yet_valid"
    if info.problems:
        return "problem"
    return "expiring" if info.expires_within(expiring_days) else "ok"


def _as_json(info: CertInfo, expiring_days: int = EXPIRING_DAYS) -> dict[str, Any]:
    return {
        "alias": info.alias,
        "subject": info.subject or None,
        "issuer": info.issuer or None,
        "serial": info.serial,
        "not_before": None if info.not_before is None else info.not_before.isoformat(),
        "not_after": None if info.not_after is None else info.not_after.isoformat(),
        "days_to_expiry": info.days_to_expiry,
        "expired": info.expired,
        "not_yet_valid": info.not_yet_valid,
        "status": _state(info, expiring_days),
        "problems": list(info.problems),
        "sha256_fingerprint": info.fingerprint,
        "chain_length": info.chain_length,
    }


def _table(infos: list[CertInfo], expiring_days: int = EXPIRING_DAYS) -> None:
    header = ("ALIAS", "SUBJECT", "ISSUER", "NOT AFTER (UTC)", "DAYS LEFT", "STATUS")
    rows = [
        (
            info.alias,
            info.subject or "-",
            info.issuer or "-",
            _date(info.not_after),
            "-" if info.days_to_expiry is None else str(info.days_to_expiry),
            status(info, expiring_days),
        )
        for info in infos
    ]
    echo_table(header, rows)


def _colon_hex(value: str | None) -> str:
    if not value:
        return "-"
    return ":".join(value[i : i + 2] for i in range(0, len(value), 2)).upper()


def _details(info: CertInfo) -> list[tuple[str, str]]:
    days = "-" if info.days_to_expiry is None else str(info.days_to_expiry)
    rows = [
        ("alias", info.alias),
        ("subject", info.subject or "-"),
        ("issuer", info.issuer or "-"),
        ("serial", info.serial or "-"),
        ("not before", _date(info.not_before) + " UTC"),
        ("not after", _date(info.not_after) + " UTC"),
        ("days left", days),
        ("status", status(info)),
        ("sha-256", _colon_hex(info.fingerprint)),
        ("chain", f"{info.chain_length} certificate(s) after this one"),
    ]
    rows += [("problem", problem) for problem in info.problems]
    return rows


def _echo_details(info: CertInfo, store: CertificateStore) -> None:
    cert_path, key_path = store.paths(info.alias)
    rows = [*_details(info), ("files", f"{cert_path}, {key_path}")]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name.ljust(width)}  {value}")


@click.group()
def certs() -> None:
    """Outward client certificates ([certificates] directory), by alias."""


@certs.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON (a list, sorted by alias).")
@pass_reader
def list_certs(obj: CliContext, as_json: bool) -> None:
    """Every certificate of the store: subject, issuer, expiry and what is wrong with it.

    STATUS is ok, expiring (under 30 days left), EXPIRED, NOT YET VALID, or the problem that
    keeps the platform from using the pair (missing or mismatching key, key file readable by
    others, ...).
    """
    infos = _store(obj).list()
    if as_json:
        click.echo(json.dumps([_as_json(info) for info in infos], indent=2))
        return
    if not infos:
        click.echo(f"no certificates in {_store(obj).directory}")
        return
    _table(infos)


@certs.command()
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=EXPIRING_DAYS,
    show_default=True,
    help="Report certificates with fewer days left than this (expired ones always).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON (a list, sorted by alias).")
@pass_reader
def expiring(obj: CliContext, days: int, as_json: bool) -> None:
    """The certificates expiring within --days days, the expired ones included.

    Exits 0 when there are none and 3 when there are any, for monitoring and cron jobs.
    """
    infos = _store(obj).expiring(days)
    if as_json:
        click.echo(json.dumps([_as_json(info, days) for info in infos], indent=2))
    elif not infos:
        click.echo(f"no certificate expires within {days} days")
    else:
        _table(infos, days)
    if infos:
        raise click.exceptions.Exit(EXIT_EXPIRING)


def _password(password_file: Path | None, password_env: str | None) -> bytes | None:
    if password_file is not None and password_env is not None:
        raise click.UsageError("give either --password-file or --password-env, not both")
    if password_file is not None:
        try:
            data = password_file.read_bytes()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {password_file}: {exc.strerror}", param_hint="--password-file"
            ) from exc
        # One trailing newline is the file's, not the password's (echo pw > file).
        return data.removesuffix(b"\n").removesuffix(b"\r")
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            raise click.BadParameter(
                f"environment variable {password_env} is not set", param_hint="--password-env"
            )
        return os.fsencode(value)
    return None


def _read(path: Path, option: str) -> bytes:
    # A file that cannot be read as a certificate or key (missing, a directory, unreadable)
    # fails as one that is not PEM does: SP-420 and exit 1, as `systems register --cert`.
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertificateUnavailable(f"{option} {path}: cannot read: {exc.strerror}") from None


_FILE = click.Path(path_type=Path)


@certs.command("import")
@click.argument("alias")
@click.option("--cert", "cert_file", type=_FILE, help="PEM certificate (chain may follow).")
@click.option("--key", "key_file", type=_FILE, help="PEM private key of --cert.")
@click.option("--pkcs12", "pkcs12_file", type=_FILE, help="PKCS#12 file (.p12/.pfx).")
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding the PKCS#12 (or encrypted --key) password.",
)
@click.option("--password-env", metavar="VAR", help="Environment variable holding it.")
@click.option("--replace", is_flag=True, help="Overwrite the certificate stored as ALIAS.")
@click.option("--json", "as_json", is_flag=True, help="JSON summary of the imported certificate.")
@pass_cli
def import_cert(
    obj: CliContext,
    alias: str,
    cert_file: Path | None,
    key_file: Path | None,
    pkcs12_file: Path | None,
    password_file: Path | None,
    password_env: str | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Store a certificate and its private key as ALIAS.

    Either --cert FILE --key FILE (PEM) or --pkcs12 FILE. The key must belong to the
    certificate and the certificate must not have expired. The key is stored unencrypted
    with mode 0600 (the platform uses it unattended); passwords are read from a file or an
    environment variable, never from the command line.
    """
    pem = cert_file is not None or key_file is not None
    if pem == (pkcs12_file is not None):
        raise click.UsageError("give either --cert FILE --key FILE, or --pkcs12 FILE")
    if pem and (cert_file is None or key_file is None):
        raise click.UsageError("--cert and --key go together")
    password = _password(password_file, password_env)
    store = _store(obj)
    # The database holds the change's audit record: opened first, one that cannot be reached
    # stops the import before the files are written (not after, reported as failed).
    obj.database()
    operation = "replace-certificate" if replace else "import-certificate"
    with audited_change(obj, operation, f"certificate {alias}", outside_database=True):
        if cert_file is not None and key_file is not None:
            info = store.import_pem(
                alias,
                _read(cert_file, "--cert"),
                _read(key_file, "--key"),
                password=password,
                replace=replace,
            )
        else:
            assert pkcs12_file is not None
            info = store.import_pkcs12(
                alias, _read(pkcs12_file, "--pkcs12"), password, replace=replace
            )
    if as_json:
        click.echo(json.dumps(_as_json(info), indent=2))
        return
    click.echo(f"imported {alias}")
    _echo_details(info, store)


@certs.command()
@click.argument("alias")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@pass_reader
def show(obj: CliContext, alias: str, as_json: bool) -> None:
    """Details of one certificate: names, serial, validity, SHA-256 fingerprint, chain."""
    store = _store(obj)
    info = store.info(alias)
    if as_json:
        cert_path, key_path = store.paths(alias)
        data = _as_json(info)
        data["files"] = {"certificate": str(cert_path), "key": str(key_path)}
        click.echo(json.dumps(data, indent=2))
        return
    _echo_details(info, store)


@certs.command()
@click.argument("alias")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def remove(obj: CliContext, alias: str, yes: bool) -> None:
    """Delete the certificate and key stored as ALIAS.

    Agreements that name ALIAS fail with SP-420 until a certificate is imported under it again.
    """
    store = _store(obj)
    cert_path, key_path = store.paths(alias)
    if not (cert_path.exists() or key_path.exists()):
        store.remove(alias)  # raises: nothing to remove, so nothing to confirm
    # As for import: no removal that could not be recorded.
    obj.database()
    if not yes:
        what = alias
        if cert_path.exists():
            info = store.info(alias)
            what = f"{alias} ({info.subject or 'unreadable'}, not after {_date(info.not_after)})"
        try:
            confirmed = click.confirm(f"remove certificate {what}?")
        except click.Abort:  # no answer: standard input closed (a script without --yes)
            click.echo()  # ends the prompt's line
            confirmed = False
        if not confirmed:
            raise CommandFailed(f"{alias} not removed: answer y, or give --yes")
    with audited_change(obj, "remove-certificate", f"certificate {alias}", outside_database=True):
        store.remove(alias)
    click.echo(f"removed {alias}")

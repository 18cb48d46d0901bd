"""``serviceplatform``: the command line of the platform.

Global options choose the settings: ``--config FILE`` (or ``SP_CONFIG=FILE``) for a real
installation, or ``--workdir DIR`` to act on the sandbox in DIR (its ``platform.toml``),
whether the sandbox runs or not; a command that needs settings and is given none stops
(``serviceplatform.commands.settings_source``). Every error is one line on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from serviceplatform.commands.agreements import agreements
from serviceplatform.commands.audit import audit
from serviceplatform.commands.certs import certs
from serviceplatform.commands.config import config_group
from serviceplatform.commands.context import CliContext
from serviceplatform.commands.routing import routing
from serviceplatform.commands.settings_source import (
    EXIT_CODES_HELP,
    BadSettings,
    load_cli_settings,
    settings_file,
)
from serviceplatform.commands.systems import systems
from serviceplatform.config import Settings, summarize
from serviceplatform.errors import ServicePlatformError

DEFAULT_SANDBOX_DIR = Path(".sandbox")
#: The service whose audience ``token`` uses by default (SANDBOX.md: the SF2250 entity id).
DEFAULT_TOKEN_SERVICE = "sf2250"


def _settings(config: Path | None, workdir: Path | None) -> Settings:
    return load_cli_settings(config, workdir)


class _Group(click.Group):
    """Turns platform errors into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ServicePlatformError as error:
            click.echo(f"error: {error.code} {error.error_text}", err=True)
            ctx.exit(1)


def _remember(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Keep --config/--workdir on the root context, wherever on the command line they stand."""
    if value is not None and param.name is not None:
        ctx.find_root().meta[param.name] = value


def _state_options() -> list[click.Option]:
    return [
        click.Option(
            ["--config"],
            type=click.Path(path_type=Path, dir_okay=False),
            expose_value=False,
            callback=_remember,
            help="Platform settings (TOML).",
        ),
        click.Option(
            ["--workdir"],
            type=click.Path(path_type=Path, file_okay=False),
            expose_value=False,
            callback=_remember,
            help="Act on the sandbox in DIR.",
        ),
    ]


@click.group(cls=_Group, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="serviceplatform")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Serviceplatform: SOAP with STS tokens in, OIOREST and AS4 out.

    Commands that read or change platform state take --config FILE, or --workdir DIR for a
    sandbox; both may stand before or after the command name. Without either, SP_CONFIG
    names the settings file; with none of the three such a command stops (exit 4).
    """
    meta = ctx.meta
    ctx.obj = CliContext.lazy(lambda: _settings(meta.get("config"), meta.get("workdir")))


cli.params.extend(_state_options())
cli.add_command(routing)
cli.add_command(audit)
cli.add_command(certs)
cli.add_command(agreements)
cli.add_command(systems)
cli.add_command(config_group)


@cli.command()
@click.option("--port", type=int, default=8080, show_default=True, help="0 picks a free port.")
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=4, show_default=True)
@click.pass_context
def sandbox(ctx: click.Context, port: int, workers: int, threads: int) -> None:
    """Run the platform with simulated peers in DIR (default .sandbox/), until Ctrl-C.

    --config FILE is laid over the sandbox's own settings.
    """
    from serviceplatform.sandbox.runner import run_sandbox

    meta = ctx.find_root().meta
    workdir = meta.get("workdir") or DEFAULT_SANDBOX_DIR
    ctx.exit(run_sandbox(workdir, port, meta.get("config"), workers=workers, threads=threads))


@cli.command()
@click.option("--bind", default="127.0.0.1:8080", show_default=True)
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=4, show_default=True)
@click.pass_context
def serve(ctx: click.Context, bind: str, workers: int, threads: int) -> None:
    """Serve the platform's SOAP endpoints (gunicorn, threaded workers).

    Refuses to start (exit 5) without trusted STS certificates and issuers, without
    soap.public_base_url, with a private key readable by others, or with any invalid
    setting; `serviceplatform config check` lists every such problem.
    """
    from serviceplatform import logsetup
    from serviceplatform.config_check import serving_problems
    from serviceplatform.server import serve as run

    obj: CliContext = ctx.obj
    # Before gunicorn: a refusal is one line here, not a traceback from every worker.
    problems = serving_problems(obj.settings)
    if problems:
        meta = ctx.find_root().meta
        source = settings_file(meta.get("config"), meta.get("workdir"))
        raise BadSettings(f"cannot serve with {source}: {summarize(problems)}")
    logsetup.configure(obj.settings.logging.level)
    run(obj.settings, bind=bind, workers=workers, threads=threads)


@cli.group()
def db() -> None:
    """The platform database."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: CliContext) -> None:
    """Apply every pending migration and say what was done."""
    database = obj.database()
    # A database handed in by the caller was not migrated by opening it.
    migration = obj.migration or database.upgrade()
    if not migration.changed:
        click.echo(f"{database.url} is already at the newest schema ({migration.after})")
    elif migration.before is None:
        click.echo(f"migrated the empty database {database.url} to {migration.after}")
    else:
        click.echo(f"migrated {database.url} from {migration.before} to {migration.after}")


@cli.command()
@click.option("--cvr", required=True, help="The authority's CVR number (the routing key).")
@click.option("--audience", help="Entity id of the service (default: the SF2250 service).")
@click.option("--ttl", type=int, default=8 * 3600, show_default=True, help="Validity in seconds.")
@click.pass_context
def token(ctx: click.Context, cvr: str, audience: str | None, ttl: int) -> None:
    """Print a SAML 2.0 assertion signed with the sandbox STS key (holder-of-key: the client)."""
    from serviceplatform.routing.identifiers import is_valid_cvr
    from serviceplatform.sandbox.pki import STS_ISSUER, ensure_pki
    from serviceplatform.security.request_signer import mint_assertion

    if not is_valid_cvr(cvr):
        raise click.BadParameter(f"{cvr} is not an 8-digit CVR number with a valid check digit")
    if ttl <= 0:
        raise click.BadParameter("--ttl must be positive")
    workdir = ctx.find_root().meta.get("workdir") or DEFAULT_SANDBOX_DIR
    pki_dir = workdir / "pki"
    if not (pki_dir / "sts.key").exists():
        raise click.ClickException(
            f"{workdir} holds no sandbox PKI: run `serviceplatform sandbox` once"
        )
    pki = ensure_pki(pki_dir)
    if audience is None:
        configured = _settings(None, workdir).service(DEFAULT_TOKEN_SERVICE).entity_id
        audience = configured or _default_audience()
    key = load_pem_private_key(pki.sts_key.read_bytes(), password=None)
    assertion = mint_assertion(
        sts_key=key,  # type: ignore[arg-type]
        sts_cert=x509.load_pem_x509_certificate(pki.sts_cert.read_bytes()),
        issuer=STS_ISSUER,
        audience=audience,
        authority_cvr=cvr,
        holder_cert=x509.load_pem_x509_certificate(pki.client_cert.read_bytes()),
        ttl=timedelta(seconds=ttl),
    )
    click.echo(etree.tostring(assertion, encoding="unicode"))


def _default_audience() -> str:
    from serviceplatform.registry import soap_services

    return next(s.default_entity_id for s in soap_services() if s.key == DEFAULT_TOKEN_SERVICE)


def _add_integration_commands(group: click.Group) -> None:
    from serviceplatform.registry import command_objects

    for command in command_objects():
        group.add_command(command)


def _add_state_options(group: click.Group, done: set[int] | None = None) -> None:
    # A command registered under two names (``routing load``/``import``) gets them once.
    done = set() if done is None else done
    for command in group.commands.values():
        if id(command) in done:
            continue
        done.add(id(command))
        if isinstance(command, click.Group):
            _add_state_options(command, done)
        else:
            command.params.extend(_state_options())


_add_integration_commands(cli)
_add_state_options(cli)


def main() -> None:
    cli(prog_name="serviceplatform")


if __name__ == "__main__":
    main()

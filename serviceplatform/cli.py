"""``serviceplatform``: the command line of the platform.

Global options choose the settings: ``--config FILE`` (or ``SP_CONFIG=FILE``) for a real
installation, or ``--workdir DIR`` to act on the sandbox in DIR (its ``platform.toml``),
whether the sandbox runs or not; a command that needs settings and is given none stops
(``serviceplatform.commands.settings_source``). Every error is one line on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from serviceplatform.commands.agreements import agreements
from serviceplatform.commands.audit import audit
from serviceplatform.commands.certs import certs
from serviceplatform.commands.config import config_group
from serviceplatform.commands.context import (
    EXIT_SCHEMA_NOT_CURRENT,
    CliContext,
    reports_errors,
)
from serviceplatform.commands.messages import messages
from serviceplatform.commands.routing import routing
from serviceplatform.commands.settings_source import (
    EXIT_CODES_HELP,
    BadSettings,
    load_cli_settings,
    settings_file,
)
from serviceplatform.commands.systems import systems
from serviceplatform.config import Settings, summarize
from serviceplatform.errors import SchemaNotCurrent, ServicePlatformError

#: Bounds of ``serve --workers`` and ``--threads`` (and the sandbox's): 0 or a negative
#: number started a server without workers, a huge one would fork until the machine stops.
MAX_WORKERS = 256
MAX_THREADS = 1024


def _settings(config: Path | None, workdir: Path | None) -> Settings:
    return load_cli_settings(config, workdir)


class _Group(click.Group):
    """Turns platform errors into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ServicePlatformError as error:
            click.echo(f"error: {error.code} {error.error_text}", err=True)
            ctx.exit(EXIT_SCHEMA_NOT_CURRENT if isinstance(error, SchemaNotCurrent) else 1)


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
    ctx.obj = CliContext.lazy(
        lambda: _settings(meta.get("config"), meta.get("workdir")),
        workdir=lambda: meta.get("workdir"),
    )


cli.params.extend(_state_options())
cli.add_command(routing)
cli.add_command(audit)
cli.add_command(messages)
cli.add_command(certs)
cli.add_command(agreements)
cli.add_command(systems)
cli.add_command(config_group)


@cli.command()
@click.option("--bind", default="127.0.0.1:8080", show_default=True)
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), default=2, show_default=True)
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=4, show_default=True)
@click.pass_context
def serve(ctx: click.Context, bind: str, workers: int, threads: int) -> None:
    """Serve the platform's SOAP endpoints (gunicorn, threaded workers).

    Refuses to start (exit 5) without trusted STS certificates and issuers, without
    soap.public_base_url, with a private key readable by others, with a settings file
    holding a password readable by others, with a peer, key, password file or distributor it
    could not use, or with any invalid setting; `serviceplatform config check` lists every
    such problem. Refuses an address another server listens on,
    or one it cannot listen on (exit 1). With several workers and a TCP port, each worker
    listens on its own socket, so that connections are spread over the workers.
    """
    from serviceplatform import logsetup
    from serviceplatform.config_check import serving_problems
    from serviceplatform.server import bind_problem
    from serviceplatform.server import serve as run

    address_problem = bind_problem(bind)
    if address_problem is not None:
        raise click.BadParameter(address_problem, param_hint="--bind")
    obj: CliContext = ctx.obj
    # Before gunicorn: a refusal is one line here, not a traceback from every worker.
    meta = ctx.find_root().meta
    source = settings_file(meta.get("config"), meta.get("workdir"))
    problems = serving_problems(obj.settings, source)
    if problems:
        raise BadSettings(f"cannot serve with {source}: {summarize(problems)}")
    logsetup.configure(obj.settings.logging.level)
    with reports_errors():
        run(obj.settings, bind=bind, workers=workers, threads=threads)


@cli.group()
def db() -> None:
    """The platform database."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: CliContext) -> None:
    """Apply every pending migration and say what was done.

    Run it as the database role that owns the schema (docs/deployment.md): it also creates
    the scheduler's job table, so that a serving role without CREATE finds it.
    """
    from serviceplatform.scheduling import create_job_table

    database = obj.database()
    # A database handed in by the caller was not migrated by opening it.
    migration = obj.migration or database.upgrade()
    create_job_table(database)
    if not migration.changed:
        click.echo(f"{database.url} is already at the newest schema ({migration.after})")
    elif migration.before is None:
        click.echo(f"migrated the empty database {database.url} to {migration.after}")
    else:
        click.echo(f"migrated {database.url} from {migration.before} to {migration.after}")


def _add_integration_commands(group: click.Group) -> None:
    from serviceplatform.registry import command_objects

    # The integrations' commands and the sandbox's (``sandbox``, ``token``), by name.
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

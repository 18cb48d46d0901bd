"""Which settings a command acts on, and the exit codes of missing or wrong settings.

A command that acts on platform state needs to be told where that state is: ``--config FILE``,
``--workdir DIR`` (a sandbox's ``DIR/platform.toml``) or ``SP_CONFIG=FILE``, in that order.
Without any of them it stops with one line saying so, before anything is opened: falling back
to defaults would create an empty SQLite database in the current directory and serve with no
trusted STS.

The exit codes of the command line are the constants below; ``serviceplatform --help`` and
docs/configuration.md list them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import click

from serviceplatform.commands.certs import EXIT_EXPIRING
from serviceplatform.commands.context import EXIT_SCHEMA_NOT_CURRENT, CommandFailed
from serviceplatform.config import CONFIG_ENV, Settings, load_settings
from serviceplatform.errors import ConfigurationError

# ``certs expiring`` exits EXIT_EXPIRING (3) when a certificate expires within the days given.
#: The command failed (``error: SP-xxx ...``).
EXIT_FAILED = 1
#: click's usage errors: an unknown option, a bad value.
EXIT_USAGE = 2
#: No settings given: none of --config, --workdir, SP_CONFIG.
EXIT_NO_SETTINGS = 4
#: The settings are wrong (unreadable file, unknown key, wrong type) or unfit to serve.
EXIT_BAD_SETTINGS = 5

EXIT_CODES_HELP = f"""Exit codes:

\b
  0  done
  {EXIT_FAILED}  the command failed (error: SP-xxx ...)
  {EXIT_USAGE}  usage: an unknown option or a bad value
  {EXIT_EXPIRING}  certs expiring: a certificate expires within the days given
  {EXIT_NO_SETTINGS}  no settings: give --config FILE, --workdir DIR or {CONFIG_ENV}=FILE
  {EXIT_BAD_SETTINGS}  the settings are wrong or unfit to serve (config check lists why)
  {EXIT_SCHEMA_NOT_CURRENT}  the database schema is not at this version's revision and this
     command does not migrate it (SP-903): serviceplatform db upgrade, as the schema's owner
"""

NO_SETTINGS_MESSAGE = (
    f"no settings: give --config FILE, --workdir DIR (a sandbox) or {CONFIG_ENV}=FILE"
)


class NoSettings(CommandFailed):
    """A state command was given no settings: one line, exit code 4."""

    exit_code = EXIT_NO_SETTINGS


class BadSettings(CommandFailed):
    """The settings cannot be used: one line, exit code 5."""

    exit_code = EXIT_BAD_SETTINGS


def settings_file(
    config: Path | None, workdir: Path | None, environ: Mapping[str, str] | None = None
) -> Path:
    """The settings file the command line names: --config, else --workdir, else SP_CONFIG."""
    if config is not None and workdir is not None:
        raise click.UsageError("give either --config or --workdir, not both")
    if config is not None:
        return config
    if workdir is not None:
        path = workdir / "platform.toml"
        if not path.exists():
            raise BadSettings(
                f"{workdir} holds no sandbox (no platform.toml): start `serviceplatform sandbox "
                f"--workdir {workdir}` once"
            )
        return path
    named = (os.environ if environ is None else environ).get(CONFIG_ENV, "")
    if not named:
        raise NoSettings(NO_SETTINGS_MESSAGE)
    return Path(named)


def load_cli_settings(config: Path | None, workdir: Path | None) -> Settings:
    """The settings of the named file with the ``SP_*`` variables on top; one line if wrong."""
    from serviceplatform.config_check import database_url_problem

    path = settings_file(config, workdir)
    try:
        settings = load_settings(path)
    except ConfigurationError as exc:
        raise BadSettings(f"invalid settings: {exc.detail or exc.error_text}") from exc
    # A URL that names no database is a wrong setting (exit 5), not a database failure.
    problem = database_url_problem(settings.database.url)
    if problem is not None:
        raise BadSettings(f"invalid settings: {problem}")
    return settings

"""``serviceplatform config check``: the effective settings and everything wrong with them.

It reads the settings the way every command does (``--config``, ``--workdir`` or
``SP_CONFIG``, with the ``SP_*`` variables on top), prints them as TOML with secrets shown as
``***`` (:mod:`serviceplatform.config_view`), and lists on stderr every problem: unknown keys,
wrong types, stray variables (:func:`serviceplatform.config.read_settings`) and whatever would
make ``serve`` refuse to start (:mod:`serviceplatform.config_check`). Exit 0 only when there
is none; otherwise exit 5, like ``serve`` refusing the same settings.
"""

from __future__ import annotations

import click

from serviceplatform.commands.settings_source import (
    EXIT_BAD_SETTINGS,
    BadSettings,
    settings_file,
)
from serviceplatform.config import read_settings
from serviceplatform.config_check import serving_problems
from serviceplatform.config_view import masked_toml
from serviceplatform.errors import ConfigurationError


@click.group("config")
def config_group() -> None:
    """The platform's settings."""


@config_group.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Print the effective settings (secrets as ***) and every problem with them.

    Exit 0 only when there is no problem; 5 otherwise (the problems are on stderr, one per
    line). serve refuses to start for the same problems.
    """
    meta = ctx.find_root().meta
    path = settings_file(meta.get("config"), meta.get("workdir"))
    try:
        loaded = read_settings(path)
    except ConfigurationError as exc:
        raise BadSettings(exc.detail or exc.error_text) from exc
    problems = [*loaded.problems, *serving_problems(loaded.settings, path)]
    click.echo(f"# The effective settings: {path} with the SP_* variables on top.")
    click.echo(f"# Relative paths are taken from {loaded.settings.base_dir}; secrets show as ***.")
    click.echo(masked_toml(loaded.settings), nl=False)
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        click.echo(f"# {len(problems)} {noun} (on stderr)")
        ctx.exit(EXIT_BAD_SETTINGS)
    click.echo("# no problems")

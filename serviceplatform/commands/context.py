"""What every ``serviceplatform`` subcommand gets from the root group: settings and database.

The root group (``serviceplatform.cli``) puts a :class:`CliContext` in ``ctx.obj``; commands
receive it with :data:`pass_cli`, or :data:`pass_reader` when they only read. Settings are read
on first use (so ``--help`` works without a configuration) and the database is opened on first
use: its schema revision is read first, and a database at the newest revision is neither
written nor locked, so the least-privileged database roles can run the commands
(docs/deployment.md). One that is behind is migrated, except that a reading command does not
migrate a PostgreSQL database: a report must not change the schema as a side effect, and its
role may not. It stops instead with ``SP-903`` and exit code 6, as does a command whose role
may not change the schema. A SQLite file is migrated by every command, as it always was: it
has no roles, whoever may read it may write it.

Platform errors inside a command become one line on stderr and exit code 1
(:func:`reports_errors`; 6 for SP-903); click's own usage errors keep exit code 2.
"""

from __future__ import annotations

import functools
import getpass
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Concatenate, ParamSpec, TypeVar

import click

from serviceplatform.commands.workdir_clock import workdir_business_clock
from serviceplatform.config import Settings
from serviceplatform.errors import SchemaNotCurrent, ServicePlatformError
from serviceplatform.store.db import Database, Migration

P = ParamSpec("P")
R = TypeVar("R")

KnownServices = Mapping[str, frozenset[str]]

#: Exit code of a command stopped because the schema is not at this version's revision
#: (SP-903): ``serviceplatform db upgrade``, by the schema's owner, is what helps.
EXIT_SCHEMA_NOT_CURRENT = 6


def _registry_known_services() -> KnownServices:
    from serviceplatform.registry import known_services

    return known_services()


class CliContext:
    """Settings, database and the known services for one command-line invocation."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        settings_factory: Callable[[], Settings] | None = None,
        known_services: Callable[[], KnownServices] = _registry_known_services,
        database: Database | None = None,
        workdir: Callable[[], Path | None] | None = None,
    ) -> None:
        if settings is None and settings_factory is None:
            raise ValueError("CliContext needs settings or a settings factory")
        self._settings = settings
        self._settings_factory = settings_factory
        self._known_services = known_services
        #: A database opened by the caller (tests); otherwise opened from the settings.
        self._database = database
        #: What opening the database migrated; None until this context opened it.
        self.migration: Migration | None = None
        #: The command only reads (:data:`pass_reader`): it does not migrate a PostgreSQL
        #: database whose schema is behind.
        self.reading = False
        self._workdir = workdir

    def business_clock(self) -> Callable[[], datetime] | None:
        """The sandbox's fixed clock for a command run with ``--workdir``; else None.

        None means the platform's own clock; a command run with ``--config`` never reads a
        sandbox's clock (``serviceplatform.commands.workdir_clock``).
        """
        workdir = self._workdir() if self._workdir is not None else None
        return workdir_business_clock(workdir) if workdir is not None else None

    @classmethod
    def lazy(
        cls, factory: Callable[[], Settings], workdir: Callable[[], Path | None] | None = None
    ) -> CliContext:
        """A context whose settings are read only when a command needs them."""
        return cls(settings_factory=factory, workdir=workdir)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            assert self._settings_factory is not None
            self._settings = self._settings_factory()
        return self._settings

    def known_services(self) -> KnownServices:
        """Service key -> SysID roles of the registered integrations."""
        return self._known_services()

    def database(self) -> Database:
        """The platform database, opened on first use at the newest schema (module docstring)."""
        if self._database is None:
            database = Database.from_settings(self.settings)
            try:
                migrate = not self.reading or database.dialect == "sqlite"
                self.migration = database.open_schema(migrate=migrate)
            except ServicePlatformError:
                database.dispose()
                raise
            self._database = database
        return self._database

    def opened_database(self) -> Database | None:
        """The database if a command has opened it, without opening it."""
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()


def cli_actor() -> str:
    """Who changes something from the command line: ``cli:<operating-system user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@dataclass
class AuditNote:
    """What a command learns during its change that the audit record should carry."""

    authority_cvr: str | None = None


@contextmanager
def audited_change(
    obj: CliContext,
    operation: str,
    what: str,
    *,
    authority_cvr: str | None = None,
    outside_database: bool = False,
) -> Iterator[AuditNote]:
    """Leave an ``admin`` audit record of a change made from the command line, as the API does.

    The record names the operating-system user (``cli:<login>: configure agreement ...``).
    A refused change is recorded too, with its error code, and the error goes on to the user.
    ``outside_database``: the change itself does not touch the database (the certificate
    store), so the database is opened for its record.
    """
    from serviceplatform.store.audit import AuditLog, admin_entry

    started = time.perf_counter()
    note = AuditNote(authority_cvr)
    error: ServicePlatformError | None = None
    # A usage error (click's) is no refused change: the command never got to make one.
    judged = False
    try:
        yield note
        judged = True
    except ServicePlatformError as exc:
        error, judged = exc, True
        raise
    finally:
        # Without an open database a database change failed before it could reach one.
        database = obj.opened_database()
        if database is None and outside_database and judged:
            database = obj.database()
        if database is not None:
            AuditLog(database).write(
                admin_entry(
                    operation=operation,
                    detail=f"{cli_actor()}: {operation} {what}",
                    error=error,
                    authority_cvr=note.authority_cvr,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                )
            )


def _find(ctx: click.Context) -> CliContext:
    obj = ctx.find_object(CliContext)
    if obj is None:
        raise click.UsageError("internal: this command was started without a CliContext")
    return obj


def pass_cli(func: Callable[Concatenate[CliContext, P], R]) -> Callable[P, R]:
    """Pass the :class:`CliContext` as the first argument; platform errors exit 1."""
    return _passing(func, reading=False)


def pass_reader(func: Callable[Concatenate[CliContext, P], R]) -> Callable[P, R]:
    """:func:`pass_cli` for a command that only reads: it does not migrate a PostgreSQL
    database whose schema is behind, it stops with SP-903 (exit 6)."""
    return _passing(func, reading=True)


def _passing(func: Callable[Concatenate[CliContext, P], R], *, reading: bool) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context()
        with reports_errors():
            obj = _find(ctx)
            obj.reading = reading
            return func(obj, *args, **kwargs)

    return wrapper


def echo_warnings(lines: Iterable[str]) -> None:
    """Each line as ``warning: <line>`` on stderr: something the command did (or would do)
    leaves unusable; the command's outcome and exit code stay as they are."""
    for line in lines:
        click.echo(f"warning: {line}", err=True)


class CommandFailed(click.ClickException):
    """A failed command: ``error: <message>`` on stderr, exit code 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class SchemaFailed(CommandFailed):
    """The schema is not at this version's revision (SP-903): one line, exit code 6."""

    exit_code = EXIT_SCHEMA_NOT_CURRENT


@contextmanager
def reports_errors() -> Iterator[None]:
    """Turn a :class:`ServicePlatformError` into ``error: SP-xxx text`` on stderr, exit 1
    (6 for :class:`~serviceplatform.errors.SchemaNotCurrent`).

    A multi-line detail (a routing table's list of problems) keeps one problem per line.
    """
    try:
        yield
    except SchemaNotCurrent as exc:
        raise SchemaFailed(f"{exc.code} {exc.error_text}") from exc
    except ServicePlatformError as exc:
        if exc.detail and "\n" in exc.detail:
            problems = "".join(f"\n  {line}" for line in exc.detail.splitlines())
            raise CommandFailed(f"{exc.code} {exc.text}:{problems}") from exc
        raise CommandFailed(f"{exc.code} {exc.error_text}") from exc

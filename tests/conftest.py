"""Shared fixtures: the ``database`` fixture, on SQLite and PostgreSQL, and ``rabbitmq_url``.

Tests that use ``database`` (directly or through another fixture) run once per backend:

- ``sqlite``: a fresh file in the test's temporary directory;
- ``postgres``: ``SP_TEST_POSTGRES_URL`` (``postgresql+psycopg://user:password@host/db``), else
  the local default that ``tests/servers.sh`` sets up
  (``postgresql+psycopg://sp_test:sp_test@127.0.0.1:5432/sp_test``), each test in its own freshly
  created schema, dropped afterwards.

The ``rabbitmq_url`` fixture gives the AMQP tests a real RabbitMQ: ``SP_TEST_AMQP_URL``, else
the local default (``amqp://guest:guest@127.0.0.1:5672/``). It makes sure the virtual host
``BF`` exists (with ``rabbitmqctl`` when that is at hand).

A missing server fails the tests that need it, in CI and locally alike, with one line saying how
to start one: they are never skipped. ``make test`` runs ``tests/servers.sh``, which installs and
starts both servers when run as root on Debian.

Tests marked ``serial`` stop the RabbitMQ every other test shares: with pytest-xdist
(``make test PYTEST_WORKERS=2``) they run alone after the others, and one on a worker fails.
Before the run, the platform's sources are compiled to ``__pycache__`` once, so that the many
child Pythons the tests start (CLI, sandbox, ``serve``) do not each compile them again.
"""

from __future__ import annotations

import atexit
import compileall
import functools
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pika.exceptions
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from serviceplatform.store.db import Database

POSTGRES_ENV = "SP_TEST_POSTGRES_URL"
AMQP_ENV = "SP_TEST_AMQP_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://sp_test:sp_test@127.0.0.1:5432/sp_test"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: The Beskedfordeler virtual host every AMQP test uses.
AMQP_VHOST = "BF"
#: What sets the local servers up (run as root on Debian); ``make test`` runs it too.
SERVERS_HOWTO = "bash tests/servers.sh (installs it with apt-get if missing, starts, prepares it)"


# The files the tests write get the modes of a default Debian account (0644), whatever umask
# the machine running them has: `serve` refuses a settings file group or others may write, as
# a umask of 002 would make every one of them. Per process, so on every xdist worker too.
os.umask(0o022)

PROJECT = Path(__file__).resolve().parents[1]
#: The source folders child processes of the tests import from.
_CHILD_SOURCES = ("serviceplatform", "integrations", "examples", "bench")


def pytest_configure(config: pytest.Config) -> None:
    # Where PYTHONDONTWRITEBYTECODE is set (as on this project's machines) no Python writes the
    # bytecode it compiles, so every child process would compile the platform anew; pyc files
    # written here are read all the same. Once, in the main process: not on each xdist worker.
    if hasattr(config, "workerinput"):
        return
    for folder in _CHILD_SOURCES:
        compileall.compile_dir(PROJECT / folder, quiet=1, workers=1)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A serial test stops a server the other worker's tests are using: it must run alone.
    if item.get_closest_marker("serial") and hasattr(item.config, "workerinput"):
        pytest.fail(
            "a test marked serial cannot run on an xdist worker, beside other tests; run it "
            'alone, as make test PYTEST_WORKERS=2 does: pytest -n 2 -m "not serial", then '
            "pytest -m serial",
            pytrace=False,
        )


def _backends() -> list[object]:
    # Always both: without a PostgreSQL server the postgres variants fail, they do not vanish.
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", _backends(), indirect=True)


def _postgres_problem(url: str) -> str | None:
    """Why the database at ``url`` cannot be logged into, or None when it can."""
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return None
    except SQLAlchemyError as exc:
        # psycopg's messages run over several lines; the how-to must stay one line.
        return " ".join(str(getattr(exc, "orig", None) or exc).split())
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of a PostgreSQL database the tests may create schemas in.

    Never skips: without a server the test fails and says how to start one.
    """
    url = os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL
    problem = _postgres_problem(url)
    if problem is None:
        return url
    where = make_url(url).render_as_string(hide_password=True)
    pytest.fail(
        f"the PostgreSQL tests need the database {where}, which is not usable ({problem}). "
        f"Start one as root: {SERVERS_HOWTO}; or point {POSTGRES_ENV} at another server.",
        pytrace=False,
    )


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL of an empty database (not migrated), removed after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'platform.sqlite'}"
        return
    # Asked for here, not as a parameter, so that the SQLite variants never need PostgreSQL.
    yield request.getfixturevalue("postgres_schema_url")


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL of an empty PostgreSQL schema of its own (not migrated), dropped after the test."""
    with postgres_schema(postgres_url) as url:
        yield url


@contextmanager
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A URL of a new, empty schema in the database at ``postgres_url``, dropped at the end."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(postgres_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        # libpq's options parameter: every connection of the test sees only its schema.
        yield (
            make_url(postgres_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@functools.cache
def migrated_sqlite_file() -> Path:
    """A SQLite file migrated to the newest revision, closed; one per test process.

    Hundreds of tests each want a migrated SQLite database (the ``database`` fixture, the
    platforms of the integration tests): copying this file costs a fraction of running every
    migration again, and gives the same bytes, mode 0600 included (``shutil.copy2``).
    """
    folder = Path(tempfile.mkdtemp(prefix="sp-migrated-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "platform.sqlite"
    template = Database(f"sqlite:///{path}")
    try:
        template.upgrade()
    finally:
        # Every connection closed: the WAL is checkpointed into the file and removed.
        template.dispose()
    return path


def copy_migrated_sqlite(url: str) -> None:
    """Put a migrated database at ``url`` when it is a SQLite file that does not exist yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    target = Path(parsed.database)
    # A relative path is the platform's to resolve (against its base_dir): left to it.
    if not target.is_absolute() or target.exists():
        return
    shutil.copy2(migrated_sqlite_file(), target)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database, empty of data; disposed after the test."""
    copy_migrated_sqlite(database_url)
    db = Database(database_url)
    # On the copy this finds the newest revision and migrates nothing.
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()


def _amqp_problem(url: str) -> str | None:
    """Why the broker at ``url`` cannot serve the vhost ``BF``, or None when it can."""
    parameters = pika.URLParameters(url)
    parameters.virtual_host = AMQP_VHOST
    parameters.connection_attempts = 1
    parameters.socket_timeout = 3
    parameters.stack_timeout = 5
    try:
        pika.BlockingConnection(parameters).close()
    except (pika.exceptions.AMQPError, OSError) as exc:
        # pika's connection failures have an empty str(); the cause is in their args' repr().
        text = str(exc) or ", ".join(repr(arg) for arg in exc.args)
        return f"{type(exc).__name__}: {text}"
    return None


def rabbitmqctl() -> str | None:
    """The local ``rabbitmqctl``, also when sbin is not on the PATH; None without one."""
    return shutil.which("rabbitmqctl", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def _create_vhost() -> None:
    """Create ``BF`` and give guest rights on it with the local ``rabbitmqctl`` (idempotent)."""
    ctl = rabbitmqctl()
    if ctl is None:
        return
    for args in (
        ["add_vhost", AMQP_VHOST],
        ["set_permissions", "-p", AMQP_VHOST, "guest", ".*", ".*", ".*"],
    ):
        # Failures (not root, no local node) show up in the probe that follows.
        subprocess.run([ctl, "-q", *args], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The URL of a RabbitMQ server whose vhost ``BF`` the guest user may use (no vhost in it).

    Never skips: without a server the test fails and says how to start one.
    """
    url = os.environ.get(AMQP_ENV) or DEFAULT_AMQP_URL
    problem = _amqp_problem(url)
    if problem is not None:
        _create_vhost()
        problem = _amqp_problem(url)
    if problem is None:
        return url
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 5672} (vhost {AMQP_VHOST})"
    pytest.fail(
        f"the AMQP tests need RabbitMQ at {where}, which is not usable ({problem}). "
        f"Start one as root: {SERVERS_HOWTO}; or point {AMQP_ENV} at another server.",
        pytrace=False,
    )

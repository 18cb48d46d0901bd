"""Shared fixtures: the ``database`` fixture, on SQLite and (when available) PostgreSQL.

Tests that use ``database`` (directly or through another fixture) run once per backend:

- ``sqlite``: a fresh file in the test's temporary directory;
- ``postgres``: ``SP_TEST_POSTGRES_URL`` (``postgresql+psycopg://user:password@host/db``), each
  test in its own freshly created schema, dropped afterwards.

Without ``SP_TEST_POSTGRES_URL`` the postgres variant is not generated at all, except when
``CI=true``: then it is generated and fails, so CI cannot pass silently without PostgreSQL.

The ``rabbitmq_url`` fixture gives the AMQP tests a real RabbitMQ: ``SP_TEST_AMQP_URL``, else
the local default (``amqp://guest:guest@127.0.0.1:5672/``). It makes sure the virtual host
``BF`` exists (with ``rabbitmqctl`` when that is at hand). A missing server fails those tests,
in CI and locally alike: they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pika
import pika.exceptions
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from serviceplatform.store.db import Database

POSTGRES_ENV = "SP_TEST_POSTGRES_URL"
AMQP_ENV = "SP_TEST_AMQP_URL"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: The Beskedfordeler virtual host every AMQP test uses.
AMQP_VHOST = "BF"
RABBITMQ_HOWTO = (
    "apt-get install -y rabbitmq-server && service rabbitmq-server start && "
    f"rabbitmqctl add_vhost {AMQP_VHOST} && "
    f"rabbitmqctl set_permissions -p {AMQP_VHOST} guest '.*' '.*' '.*'"
)


def _backends() -> list[object]:
    params: list[object] = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get(POSTGRES_ENV) or os.environ.get("CI") == "true":
        params.append(pytest.param("postgres", id="postgres", marks=pytest.mark.postgres))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", _backends(), indirect=True)


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL of an empty database (not migrated), removed after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'platform.sqlite'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: the PostgreSQL tests cannot run")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        # libpq's options parameter: every connection of the test sees only its schema.
        yield (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database, empty of data; disposed after the test."""
    db = Database(database_url)
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
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but RabbitMQ at {where} is not usable ({problem}); .ci/run starts it")
    pytest.fail(
        f"the AMQP tests need RabbitMQ at {where}, which is not usable ({problem}). "
        f"Start one as root: {RABBITMQ_HOWTO}; or point {AMQP_ENV} at another server."
    )

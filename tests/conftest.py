"""Shared fixtures: the ``database`` fixture, on SQLite and (when available) PostgreSQL.

Tests that use ``database`` (directly or through another fixture) run once per backend:

- ``sqlite``: a fresh file in the test's temporary directory;
- ``postgres``: ``SP_TEST_POSTGRES_URL`` (``postgresql+psycopg://user:password@host/db``), each
  test in its own freshly created schema, dropped afterwards.

Without ``SP_TEST_POSTGRES_URL`` the postgres variant is not generated at all, except when
``CI=true``: then it is generated and fails, so CI cannot pass silently without PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from serviceplatform.store.db import Database

POSTGRES_ENV = "SP_TEST_POSTGRES_URL"


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

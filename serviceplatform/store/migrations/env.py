"""Alembic environment: runs the migrations on the connection ``Database.upgrade`` hands in.

There is no ``alembic.ini``: the configuration is built in code
(:func:`serviceplatform.store.db.alembic_config`), with the integrations' migration
directories as further version locations. Run from the ``alembic`` command line, a
``sqlalchemy.url`` main option is honoured instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from serviceplatform.registry import import_tables
from serviceplatform.store.models import Base

# The integrations' tables join Base.metadata only once their modules are imported.
import_tables()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    engine = create_engine(url)
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()

"""Take a test database's schema back to an earlier revision, the way ``Database.upgrade``
takes it forward: Alembic on one of the database's own write transactions."""

from __future__ import annotations

from alembic import command

from serviceplatform.store.db import Database, alembic_config


def downgrade(db: Database, revision: str) -> None:
    """Run the migrations' ``downgrade`` steps of ``db`` down to ``revision``."""
    config = alembic_config()
    with db.transaction(write_first=True) as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

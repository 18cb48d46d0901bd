"""Routing version: a counter the database bumps on every change of the routing data.

Revision ID: 0006
Revises: 0005

Every process keeps consumer systems, agreements and routes in memory and reads this one row
per call (``store/routing_cache.py``); a different number means "reload". Triggers bump it in
the transaction of every INSERT, UPDATE or DELETE on the three tables, whoever writes them
(repositories, the admin API, the CLI, a hand-written statement), so a change is visible to
the next call in every process exactly when it is committed.

PostgreSQL runs one statement-level trigger per table (TRUNCATE included); SQLite has only
row-level triggers, which bump the counter once per changed row, still inside the writing
transaction. Written by hand; ``tests/unit/test_store_schema.py`` checks that the migrations
together yield exactly the schema of ``serviceplatform.store.models`` (triggers are outside
that comparison and tested in ``tests/unit/test_store_routing_cache.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

#: The tables whose every change bumps the version.
TABLES = ("consumer_systems", "agreements", "routes")
_EVENTS = ("INSERT", "UPDATE", "DELETE")
_FUNCTION = "sp_bump_routing_version"


def upgrade() -> None:
    op.create_table(
        "routing_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_routing_version"),
    )
    op.execute("INSERT INTO routing_version (id, version) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        # SET search_path FROM CURRENT: the function finds routing_version in the schema it
        # was created in, whatever the writing session's search_path.
        op.execute(
            f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql "
            "SET search_path FROM CURRENT AS $$ BEGIN "
            "UPDATE routing_version SET version = version + 1 WHERE id = 1; "
            "RETURN NULL; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER tr_{table}_routing_version "
                f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
            )
        return
    for table in TABLES:
        for event in _EVENTS:
            op.execute(
                f"CREATE TRIGGER tr_{table}_{event.lower()}_routing_version "
                f"AFTER {event} ON {table} FOR EACH ROW BEGIN "
                "UPDATE routing_version SET version = version + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER tr_{table}_routing_version ON {table}")
        op.execute(f"DROP FUNCTION {_FUNCTION}()")
    else:
        for table in TABLES:
            for event in _EVENTS:
                op.execute(f"DROP TRIGGER tr_{table}_{event.lower()}_routing_version")
    op.drop_table("routing_version")

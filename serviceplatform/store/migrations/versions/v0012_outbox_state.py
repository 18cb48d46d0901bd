"""The outbox's delivery state in a narrow table of its own, so marking does not rewrite bodies.

Revision ID: 0012
Revises: 0011

Marking an outbox row delivered updated the row with its 2.7 kB body: SQLite rewrote the
record (about 8 kB written per message with the WAL and its checkpoint), PostgreSQL wrote a
new row version and four index entries. From here ``state``, ``attempts``, ``last_error`` and
``delivered_at`` live in ``outbox_state`` (same id); an outbox row is written once. A trigger
writes each new outbox row's state row (``pending``, no attempts), whoever inserts it: on
PostgreSQL one statement-level trigger with the inserted rows as a transition table, on SQLite
a row-level one (SQLite has no other). Pending rows are indexed alone (a partial index), so a
claim never passes over the delivered rows of earlier nights.

Every existing row's state is carried over. On SQLite, dropping the columns rebuilds
``outbox`` (every body copied once); a later migration that rebuilds it must make the trigger
again. Old code reads the dropped columns: stop every node for this upgrade
(docs/deployment.md). Written by hand; ``tests/unit/test_store_schema.py`` checks the
migrations against the models, ``tests/unit/test_store_outbox_state.py`` the trigger and the
upgrade of a database with pending and delivered rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

_FUNCTION = "sp_outbox_state_pending"
_TRIGGER = "tr_outbox_state_pending"
_STATE_COLUMNS = "state, attempts, last_error, delivered_at"


def _create_trigger(postgres: bool) -> None:
    if postgres:
        # SET search_path FROM CURRENT: the function finds outbox_state in the schema it was
        # created in, whatever the inserting session's search_path (as migration 0006).
        op.execute(
            f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql "
            "SET search_path FROM CURRENT AS $$ BEGIN "
            "INSERT INTO outbox_state (id, state, attempts) "
            "SELECT id, 'pending', 0 FROM new_outbox_rows; "
            "RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {_TRIGGER} AFTER INSERT ON outbox "
            "REFERENCING NEW TABLE AS new_outbox_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
        )
        return
    op.execute(
        f"CREATE TRIGGER {_TRIGGER} AFTER INSERT ON outbox FOR EACH ROW BEGIN "
        "INSERT INTO outbox_state (id, state, attempts) VALUES (NEW.id, 'pending', 0); END"
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "outbox_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_state"),
        sa.CheckConstraint("state IN ('pending', 'delivered')", name="ck_outbox_state_state"),
    )
    op.execute(
        f"INSERT INTO outbox_state (id, {_STATE_COLUMNS}) SELECT id, {_STATE_COLUMNS} FROM outbox"
    )
    op.create_index(
        "ix_outbox_state_pending",
        "outbox_state",
        ["id"],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.drop_index("ix_outbox_state_id", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("ck_outbox_state", type_="check")
        for column in ("state", "attempts", "last_error", "delivered_at"):
            batch.drop_column(column)
    # After the rebuild: on SQLite a trigger goes with the table batch mode replaces.
    _create_trigger(postgres)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(f"DROP TRIGGER {_TRIGGER} ON outbox")
        op.execute(f"DROP FUNCTION {_FUNCTION}()")
    else:
        op.execute(f"DROP TRIGGER {_TRIGGER}")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("state", sa.String(16), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("delivered_at", UtcDateTime(), nullable=True))
    # Correlated subqueries: the one UPDATE both databases spell the same way.
    op.execute(
        "UPDATE outbox SET "
        + ", ".join(
            f"{column} = (SELECT s.{column} FROM outbox_state s WHERE s.id = outbox.id)"
            for column in ("state", "attempts", "last_error", "delivered_at")
        )
        + " WHERE EXISTS (SELECT 1 FROM outbox_state s WHERE s.id = outbox.id)"
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("state", server_default=None)
        batch.alter_column("attempts", server_default=None)
        # The name 0003 gave it (the naming convention put its prefix before the given name
        # again), which the upgrade above drops; "state" would make another one.
        batch.create_check_constraint(
            op.f("ck_outbox_ck_outbox_state"), sa.text("state IN ('pending', 'delivered')")
        )
    op.create_index("ix_outbox_state_id", "outbox", ["state", "id"])
    op.drop_index("ix_outbox_state_pending", table_name="outbox_state")
    op.drop_table("outbox_state")

"""Subscription snapshot ids are never handed out twice on SQLite (``AUTOINCREMENT``).

Revision ID: 0013
Revises: 0012

Without ``AUTOINCREMENT`` SQLite gives a new row max(id) + 1, so a fetch that replaced (or
followed the discarding of) the snapshot with the highest id got that snapshot's id again, and
a straggler run still holding the id added its blocks to the new fetch and could complete it
with its own counts. From here SQLite keeps the highest id ever used in ``sqlite_sequence``.

SQLite honours ``AUTOINCREMENT`` only in ``CREATE TABLE``: ``subscription_snapshots`` is
rebuilt (batch mode), every row with its id, and ``sqlite_sequence`` is seeded with the
highest id that is stored or named as a ``previous_id`` (a purged base), so no id a stored row
knows of is given again. The migration runs in one transaction with foreign keys on
(``store/db.py``; the pragma cannot change inside a transaction), so dropping the old table
would cascade into ``subscription_blocks`` and delete every block: the blocks are set aside in
a temporary table for the rebuild and put back unchanged, as 0008 did with the agreements.
``downgrade`` rebuilds the table without ``AUTOINCREMENT`` the same way, rows and blocks kept.

PostgreSQL: nothing to change; the id is a ``SERIAL`` column, whose sequence never hands out a
value twice.

Old code works with the new table (the same columns), so the nodes may keep running
(docs/deployment.md); on SQLite the rebuild holds the write lock while it copies the stored
lists twice (0.4 s for three national lists, 40 MB of blocks), and writers queue at the
writer gate meanwhile: upgrade outside the nightly's hour. Written by hand;
``tests/unit/test_store_schema.py`` checks the migrations against the models (AUTOINCREMENT
included), ``tests/unit/test_store_snapshot_blocks.py`` the upgrade of a database with
complete and fetching lists and its downgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

_ASIDE = "sp_subscription_blocks_aside"
_BLOCK_COLUMNS = "snapshot_id, seq, first_code, last_code, entries, data"


@contextmanager
def _blocks_set_aside() -> Iterator[None]:
    """Keep the blocks aside while batch mode drops and recreates ``subscription_snapshots``
    (the drop would delete them by their ``ON DELETE CASCADE``)."""
    op.execute(f"CREATE TEMP TABLE {_ASIDE} AS SELECT {_BLOCK_COLUMNS} FROM subscription_blocks")
    op.execute("DELETE FROM subscription_blocks")
    yield
    op.execute(
        f"INSERT INTO subscription_blocks ({_BLOCK_COLUMNS}) SELECT {_BLOCK_COLUMNS} FROM {_ASIDE}"
    )
    op.execute(f"DROP TABLE {_ASIDE}")


def _rebuild(autoincrement: bool) -> None:
    with (
        _blocks_set_aside(),
        op.batch_alter_table(
            "subscription_snapshots",
            recreate="always",
            table_kwargs={"sqlite_autoincrement": autoincrement},
        ),
    ):
        pass


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=True)
    # The copy left the highest copied id in sqlite_sequence (under the temporary table's
    # name, renamed with it); a purged base named by previous_id may be higher still.
    op.execute("DELETE FROM sqlite_sequence WHERE name = 'subscription_snapshots'")
    op.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'subscription_snapshots', "
        "max(coalesce(max(id), 0), coalesce(max(previous_id), 0)) FROM subscription_snapshots"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=False)

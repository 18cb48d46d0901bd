"""CHECK constraints on PostgreSQL get the names the models declare (no doubled prefix).

Revision ID: 0015
Revises: 0014

The naming convention's CHECK pattern (``ck_<table>_<name>``, ``store/models.py``) was applied
to names the migrations had already spelt out in full, so every CHECK created by a migration
is called ``ck_<table>_ck_<table>_<name>`` in the database, while the models call it
``ck_<table>_<name>``. On PostgreSQL each such constraint is renamed (``ALTER TABLE ... RENAME
CONSTRAINT``: the catalogue only, no table is read or locked for long) to the models' name;
``downgrade`` gives the doubled names back, which the earlier migrations' steps expect.

The rule is the convention's own, so it is applied to whichever tables carry such a name (the
core's and the integrations', none named here): a CHECK named ``ck_<t>_ck_<t>_<name>`` on table
``<t>`` becomes ``ck_<t>_<name>``; any other name is left as it is.

SQLite: nothing changes. Its CHECK names live only in the ``CREATE TABLE`` text, and renaming
one means rebuilding the table: the whole audit log copied under the write lock, the routing
triggers of ``agreements`` and the blocks of ``subscription_snapshots`` (``ON DELETE CASCADE``)
set aside and made again, for a name nothing reads. There the doubled names stay; a later
migration that drops one of these CHECKs on SQLite names it so
(``tests/unit/test_store_migration_names.py`` holds both databases to their names).

Only names change: old code runs beside it, no stop needed (docs/deployment.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None

# The CHECK constraints of the tables in the schema being migrated (the search path's first).
_CHECKS = sa.text(
    "SELECT t.relname, c.conname FROM pg_constraint c "
    "JOIN pg_class t ON t.oid = c.conrelid "
    "JOIN pg_namespace n ON n.oid = c.connamespace "
    "WHERE c.contype = 'c' AND n.nspname = current_schema() "
    "ORDER BY t.relname, c.conname"
)


def _renamed(table: str, name: str, *, doubled: bool) -> str | None:
    """The new name of CHECK ``name`` on ``table``: without the doubled prefix (``doubled``
    False) or with it again; None for a name the convention did not make."""
    prefix = f"ck_{table}_"
    if not name.startswith(prefix):
        return None
    twice = name.startswith(prefix + prefix)
    if doubled:
        return None if twice else prefix + name
    return name[len(prefix) :] if twice else None


def _rename(*, doubled: bool) -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    quote = connection.dialect.identifier_preparer.quote
    for table, name in connection.execute(_CHECKS).all():
        new = _renamed(table, name, doubled=doubled)
        if new is not None:
            op.execute(
                f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(name)} TO {quote(new)}"
            )


def upgrade() -> None:
    _rename(doubled=False)


def downgrade() -> None:
    _rename(doubled=True)

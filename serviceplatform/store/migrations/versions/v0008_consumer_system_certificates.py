"""Consumer systems known by certificate fingerprints, with supplier, state and history.

Revision ID: 0008
Revises: 0007

A consumer system used to be matched by the RFC 4514 subject of the caller's certificate; a
certificate with the same subject from another CA then matched it too. From here a system
has certificates of its own (``system_certificates``, keyed by SHA-256 fingerprint,
each with the window in which calls with it are accepted), the CVR of its supplier, and a
deactivation time. ``system_events`` keeps who changed what.

The old subject cannot be turned into a fingerprint, so a system created before this
migration has no certificate afterwards and its calls are refused (SP-216) until one is
registered (``serviceplatform systems add-certificate``); its supplier CVR is empty until
set. The routing-version triggers of migration 0006 are extended to the certificates table
(and, on SQLite, made again for ``consumer_systems``, which batch mode rebuilds).

Written by hand; ``tests/unit/test_store_schema.py`` checks that the migrations together yield
exactly the schema of ``serviceplatform.store.models``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from serviceplatform.store.models import UtcDateTime

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_EVENTS = ("INSERT", "UPDATE", "DELETE")
_FUNCTION = "sp_bump_routing_version"


def _sqlite_triggers(table: str) -> None:
    for event in _EVENTS:
        op.execute(
            f"CREATE TRIGGER tr_{table}_{event.lower()}_routing_version "
            f"AFTER {event} ON {table} FOR EACH ROW BEGIN "
            "UPDATE routing_version SET version = version + 1 WHERE id = 1; END"
        )


def _drop_sqlite_triggers(table: str) -> None:
    for event in _EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_{event.lower()}_routing_version")


@contextmanager
def _agreements_set_aside(postgres: bool) -> Iterator[None]:
    """On SQLite, keep the agreements aside while batch mode rebuilds ``consumer_systems``.

    Batch mode drops the old table, and with foreign keys on (``store/db.py``) SQLite refuses
    to drop a parent that agreements refer to; the pragma cannot be switched off inside the
    migration's transaction. The rows go back unchanged once the new table is in place.
    """
    if postgres:
        yield
        return
    op.execute("CREATE TEMP TABLE sp_agreements_aside AS SELECT * FROM agreements")
    op.execute("DELETE FROM agreements")
    yield
    op.execute("INSERT INTO agreements SELECT * FROM sp_agreements_aside")
    op.execute("DROP TABLE sp_agreements_aside")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    now = sa.text("now()") if postgres else sa.text("CURRENT_TIMESTAMP")
    with _agreements_set_aside(postgres), op.batch_alter_table("consumer_systems") as batch:
        batch.add_column(sa.Column("supplier_cvr", sa.String(8), nullable=False, server_default=""))
        batch.add_column(sa.Column("created_at", UtcDateTime(), nullable=False, server_default=now))
        batch.add_column(sa.Column("deactivated_at", UtcDateTime(), nullable=True))
        batch.drop_constraint("uq_consumer_systems_cert_subject", type_="unique")
        batch.drop_column("cert_subject")
    # The defaults only filled the rows that existed; new rows always give both values.
    with _agreements_set_aside(postgres), op.batch_alter_table("consumer_systems") as batch:
        batch.alter_column("supplier_cvr", server_default=None)
        batch.alter_column("created_at", server_default=None)
    op.create_table(
        "system_certificates",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("consumer_system", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=False),
        sa.Column("issuer", sa.String(1024), nullable=False),
        sa.Column("not_before", UtcDateTime(), nullable=False),
        sa.Column("not_after", UtcDateTime(), nullable=False),
        sa.Column("accepted_from", UtcDateTime(), nullable=False),
        sa.Column("accepted_until", UtcDateTime(), nullable=True),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("added_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_system_certificates"),
        sa.ForeignKeyConstraint(
            ["consumer_system"],
            ["consumer_systems.uuid"],
            name="fk_system_certificates_consumer_system_consumer_systems",
        ),
    )
    op.create_index(
        "ix_system_certificates_consumer_system",
        "system_certificates",
        ["consumer_system"],
    )
    op.create_table(
        "system_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consumer_system", sa.String(36), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_system_events"),
    )
    op.create_index(
        "ix_system_events_consumer_system_id",
        "system_events",
        ["consumer_system", "id"],
    )
    if postgres:
        op.execute(
            "CREATE TRIGGER tr_system_certificates_routing_version "
            "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON system_certificates "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
        )
        return
    # Batch mode rebuilt consumer_systems, and its triggers went with the old table.
    _drop_sqlite_triggers("consumer_systems")
    _sqlite_triggers("consumer_systems")
    _sqlite_triggers("system_certificates")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER tr_system_certificates_routing_version ON system_certificates")
    else:
        _drop_sqlite_triggers("system_certificates")
    op.drop_index("ix_system_events_consumer_system_id", table_name="system_events")
    op.drop_table("system_events")
    op.drop_index(
        "ix_system_certificates_consumer_system",
        table_name="system_certificates",
    )
    op.drop_table("system_certificates")
    # The subject of each system is gone; the uuid stands in so the unique constraint holds.
    with _agreements_set_aside(postgres), op.batch_alter_table("consumer_systems") as batch:
        batch.add_column(
            sa.Column("cert_subject", sa.String(1024), nullable=False, server_default="")
        )
    op.execute("UPDATE consumer_systems SET cert_subject = uuid")
    with _agreements_set_aside(postgres), op.batch_alter_table("consumer_systems") as batch:
        batch.alter_column("cert_subject", server_default=None)
        batch.create_unique_constraint("uq_consumer_systems_cert_subject", ["cert_subject"])
        batch.drop_column("deactivated_at")
        batch.drop_column("created_at")
        batch.drop_column("supplier_cvr")
    if not postgres:
        _drop_sqlite_triggers("consumer_systems")
        _sqlite_triggers("consumer_systems")

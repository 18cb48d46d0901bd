"""Subscription lists stored as compressed blocks of entry codes instead of a row per entry.

Revision ID: 0011
Revises: 0010

A national night stored 6 million rows with their primary-key index (about 430 MB, gigabytes
written); as blocks (``integrations.sf2250.entry_codes``) the same list is about 15 MB. Every
stored list is carried over, block by block, in key order; ``downgrade`` writes the rows back.
Old code reads the dropped table: stop every node for this upgrade (docs/deployment.md).
Written by hand; ``tests/unit/test_store_schema.py`` checks the migrations against the models.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

from integrations.sf2250.entry_codes import (
    BLOCK_CODES,
    block_columns,
    code_of,
    decode_block,
    entry_of,
)

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

_ROWS = 10_000


def upgrade() -> None:
    blocks = op.create_table(
        "subscription_blocks",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("first_code", sa.BigInteger(), nullable=False),
        sa.Column("last_code", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "seq", name="pk_subscription_blocks"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["subscription_snapshots.id"],
            name="fk_subscription_blocks_snapshot_id_subscription_snapshots",
            ondelete="CASCADE",
        ),
    )
    assert blocks is not None
    connection = op.get_bind()
    entries = sa.table(
        "subscription_entries",
        sa.column("snapshot_id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("number", sa.String()),
    )
    for snapshot_id in _snapshot_ids(connection):
        rows = connection.execute(
            sa.select(entries.c.kind, entries.c.number)
            .where(entries.c.snapshot_id == snapshot_id)
            .order_by(entries.c.kind, entries.c.number)
            .execution_options(yield_per=_ROWS)
        )
        codes = (code_of(kind, number) for kind, number in rows)
        for seq, block in enumerate(_chunks(codes)):
            connection.execute(
                blocks.insert().values(snapshot_id=snapshot_id, seq=seq, **block_columns(block))
            )
    op.drop_table("subscription_entries")


def downgrade() -> None:
    entries = op.create_table(
        "subscription_entries",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("number", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "kind", "number", name="pk_subscription_entries"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["subscription_snapshots.id"],
            name="fk_subscription_entries_snapshot_id_subscription_snapshots",
            ondelete="CASCADE",
        ),
    )
    assert entries is not None
    connection = op.get_bind()
    blocks = sa.table(
        "subscription_blocks",
        sa.column("snapshot_id", sa.Integer()),
        sa.column("seq", sa.Integer()),
        sa.column("entries", sa.Integer()),
        sa.column("data", sa.LargeBinary()),
    )
    keys = connection.execute(
        sa.select(blocks.c.snapshot_id, blocks.c.seq).order_by(blocks.c.snapshot_id, blocks.c.seq)
    ).all()
    for snapshot_id, seq in keys:
        count, data = connection.execute(
            sa.select(blocks.c.entries, blocks.c.data).where(
                blocks.c.snapshot_id == snapshot_id, blocks.c.seq == seq
            )
        ).one()
        rows = [
            {"snapshot_id": snapshot_id, "kind": kind, "number": number}
            for kind, number in map(entry_of, decode_block(data, count))
        ]
        # A snapshot stored out of order may hold an entry in two blocks: kept once.
        insert = (
            postgresql.insert(entries).on_conflict_do_nothing()
            if connection.dialect.name == "postgresql"
            else sqlite.insert(entries).on_conflict_do_nothing()
        )
        connection.execute(insert, rows)
    op.drop_table("subscription_blocks")


def _snapshot_ids(connection: Any) -> list[int]:
    return [
        int(row[0])
        for row in connection.execute(sa.text("SELECT id FROM subscription_snapshots ORDER BY id"))
    ]


def _chunks(codes: Iterator[int]) -> Iterator[array[int]]:
    """``codes`` (ascending) in arrays of ``BLOCK_CODES``."""
    block: array[int] = array("q")
    for code in codes:
        block.append(code)
        if len(block) == BLOCK_CODES:
            yield block
            block = array("q")
    if block:
        yield block

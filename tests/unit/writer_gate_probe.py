"""A writer gate that counts its holds: shows that a store's writes queue at the SQLite gate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from serviceplatform.store.db import Database
from serviceplatform.store.writer_gate import WriterGate


class CountingGate(WriterGate):
    """The real gate (same lock file), counting how often a writer passed it."""

    def __init__(self, database_file: Path) -> None:
        super().__init__(database_file)
        self.holds = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        self.holds += 1
        with super().hold():
            yield


def counting_gate(
    db: Database, database_file: Path, monkeypatch: pytest.MonkeyPatch
) -> CountingGate:
    """Put a counting gate in place of ``db``'s own (a SQLite file database)."""
    gate = CountingGate(database_file.resolve())
    monkeypatch.setattr(db, "_gate", gate)
    return gate


@contextmanager
def gated_database(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Database, CountingGate]]:
    """A migrated SQLite file database in ``directory`` with a counting gate; disposed after."""
    file = directory / "platform.sqlite"
    db = Database(f"sqlite:///{file}")
    try:
        db.upgrade()
        yield db, counting_gate(db, file, monkeypatch)
    finally:
        db.dispose()

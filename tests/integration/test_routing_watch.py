"""The sandbox's routing watcher: an edited table file takes effect without a restart."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from serviceplatform.registry import known_services
from serviceplatform.resources import sample_routing_tables
from serviceplatform.sandbox.routing_watch import RoutingWatcher
from serviceplatform.store.db import Database
from serviceplatform.store.repository import RoutingRepository


def _setup(tmp_path: Path) -> tuple[Path, Database]:
    tables = tmp_path / "tables"
    tables.mkdir()
    shutil.copy(sample_routing_tables() / "sf2250.csv", tables / "sf2250.csv")
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.upgrade()
    return tables, database


def _register_sysid(database: Database) -> str:
    return RoutingRepository(database).sysids("29189846", "sf2250", None)["register"]


def test_sync_loads_changes_and_keeps_old_table_on_error(tmp_path: Path) -> None:
    tables, database = _setup(tmp_path)
    watcher = RoutingWatcher(tables, database, known_services())
    try:
        assert watcher.sync() is not None
        assert _register_sysid(database) == "2250001"
        assert watcher.sync() is None  # unchanged files: nothing loaded

        table = tables / "sf2250.csv"
        table.write_text(table.read_text().replace("2250001", "2250777"))
        change = watcher.sync()
        assert change is not None and change.changed == 1
        assert _register_sysid(database) == "2250777"

        table.write_text(table.read_text() + "29189847,sf2250,register,123,\n")  # bad CVR
        assert watcher.sync() is None
        assert _register_sysid(database) == "2250777"
    finally:
        database.dispose()


def test_running_watcher_picks_up_an_edit(tmp_path: Path) -> None:
    tables, database = _setup(tmp_path)
    watcher = RoutingWatcher(tables, database, known_services(), interval=0.05)
    watcher.sync()
    watcher.start()
    try:
        table = tables / "sf2250.csv"
        table.write_text(table.read_text().replace("2250001", "2250888"))
        deadline = time.monotonic() + 5
        while _register_sysid(database) != "2250888" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _register_sysid(database) == "2250888"
    finally:
        watcher.stop()
        database.dispose()

"""A relay killed between writing a batch's files and naming them loses no message.

The relay runs in a process of its own on the test's database (SQLite file or PostgreSQL
schema) and delivers one batch to the file drop. After the batch's files are written and made
durable (as unnamed files, or under temporary names where a file system has no unnamed
files), the process kills itself (SIGKILL: no clean-up, no rollback, no ``finally``) as it
names the second file: one file is in place, the others have no name (the kernel frees them)
or only a temporary one. Nothing was marked delivered, so a second relay delivers every row
again; the file already in place keeps its inode (same bytes: nothing changes) and the others
appear whole. A relay that marked its rows before the files were named, or in a transaction
of their own, would leave rows marked delivered without a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from serviceplatform.distribution.file_drop import FileDropDistributor
from serviceplatform.relay import OutboxRelay
from serviceplatform.store.db import Database
from serviceplatform.store.models import outbox
from serviceplatform.store.outbox import Outbox

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)
AUTHORITY = "29189846"
TOPIC = "beskedfordeler"
ROWS = 5

# The crashing relay: the first file gets its name, naming the second kills the process.
CHILD = """
import os, signal, sys
from datetime import UTC, datetime
from serviceplatform.distribution import file_drop
from serviceplatform.relay import OutboxRelay
from serviceplatform.store.db import Database
from serviceplatform.store.outbox import Outbox

url, drop, topic, kind = sys.argv[1:5]
if kind == "named":
    file_drop._UNNAMED_FILES = False
named = []

def crashing(original):
    def name(source, target, **kwargs):
        named.append(target)
        if len(named) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        original(source, target, **kwargs)
    return name

os.link, os.replace = crashing(os.link), crashing(os.replace)
now = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)
relay = OutboxRelay(Outbox(Database(url)), file_drop.FileDropDistributor(drop),
                    clock=lambda: now, topic=topic, batch_size=100)
relay.run()
"""


def _pending(database: Database) -> dict[str, bytes]:
    bodies = {str(uuid.uuid4()): f"<besked>{n}</besked>".encode() for n in range(ROWS)}
    with database.transaction(write_first=True) as connection:
        connection.execute(
            outbox.insert(),
            [
                {
                    "message_id": besked_id,
                    "topic": TOPIC,
                    "authority_cvr": AUTHORITY,
                    "body": body.decode(),
                    "created_at": NOW,
                }
                for besked_id, body in bodies.items()
            ],
        )
    return bodies


def _until_the_killed_claim_ends(database: Database) -> None:
    # PostgreSQL ends a killed client's session when it notices the closed socket, not at
    # once; until then the claim's row locks stand and the next claim (SKIP LOCKED) passes
    # the rows by, to be found by a later round. A plain FOR UPDATE waits for them instead.
    # (SQLite: the killed process's file lock went with it; nothing to wait for.)
    with database.transaction() as connection:
        connection.execute(
            select(outbox.c.id).where(outbox.c.topic == TOPIC).with_for_update()
        ).all()


@pytest.mark.parametrize("kind", ["unnamed", "named"])
def test_a_relay_killed_between_writing_and_naming_loses_nothing(
    database: Database, database_url: str, tmp_path: Path, kind: str
) -> None:
    bodies = _pending(database)
    drop = tmp_path / "drop"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, database_url, str(drop), TOPIC, kind],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    placed = list(drop.glob("*.xml"))
    assert len(placed) == 1
    others = sorted(set(os.listdir(drop)) - {path.name for path in placed})
    # Unnamed files die with the process; temporary names stay (never ``*.xml``).
    assert len(others) == (0 if kind == "unnamed" else ROWS - 1)
    assert all(name.startswith(".") and name.endswith(".tmp") for name in others)
    first = placed[0]
    assert first.read_bytes() == bodies[first.stem]
    counts = Outbox(database).counts(TOPIC)
    assert (counts.pending, counts.delivered) == (ROWS, 0)

    before = first.stat()
    _until_the_killed_claim_ends(database)
    result = OutboxRelay(
        Outbox(database), FileDropDistributor(drop), clock=lambda: NOW, topic=TOPIC
    ).run()
    assert (result.delivered, result.unavailable, result.rejected) == (ROWS, False, 0)
    assert {path.stem: path.read_bytes() for path in drop.glob("*.xml")} == bodies
    after = first.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    counts = Outbox(database).counts(TOPIC)
    assert (counts.pending, counts.delivered) == (0, ROWS)

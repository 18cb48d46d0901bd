"""Queue SQLite writers of every process on a kernel lock, instead of SQLite's polling.

SQLite allows one writer at a time. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15 ... ms between tries; with several server processes each
writing twice per SOAP call (replay cache, audit), that sleeping, not work, bounded throughput
and made the p99. Writers therefore queue here first: threads of one process on a
``threading.Lock``, processes on an exclusive ``flock`` of a file beside the database, which
the kernel hands to the next waiter the moment it is released.

The gate only orders writers; SQLite's own locking stays in force, so a writer that does not
pass the gate (another tool, an old process) is still safe, it merely waits SQLite's way.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WriterGate:
    def __init__(self, database_file: Path) -> None:
        self.path = database_file.with_name(database_file.name + ".writer-lock")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int:
        # flock belongs to an open file description: a descriptor inherited across fork would
        # be shared with the parent and exclude nothing, so each process opens its own.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            descriptor = self._descriptor()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

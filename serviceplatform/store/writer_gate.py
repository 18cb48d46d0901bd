"""Queue SQLite writers of every process on a kernel lock, instead of SQLite's polling.

SQLite allows one writer at a time. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15 ... ms between tries; with several server processes each
writing twice per SOAP call (replay cache, audit), that sleeping, not work, bounded throughput
and made the p99. Writers therefore queue here first: threads of one process on a
``threading.Lock``, processes on an exclusive ``flock`` of a file beside the database, which
the kernel hands to the next waiter the moment it is released.

The gate only orders writers; SQLite's own locking stays in force, so a writer that does not
pass the gate (another tool, an old process) is still safe, it merely waits SQLite's way.

``hold()`` is on the path of every SOAP call (twice), so the gate is its own context manager
rather than a generator-based one, and a forked child learns that it must open its own
descriptor (and gets a free thread lock, whoever held the parent's) from an
``os.register_at_fork`` hook instead of an ``os.getpid()`` on every hold.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

#: Every gate of this process, for the fork hook; weak, so a gate still goes away with its
#: database.
_GATES: weakref.WeakSet[WriterGate] = weakref.WeakSet()


def _forget_descriptors_in_child() -> None:
    # flock belongs to an open file description: a descriptor inherited across fork is
    # shared with the parent and would exclude nothing, so the child opens its own on its
    # next hold. The inherited one is left open, as the parent may be holding the lock
    # through it (closing it here would not release that, but nor is it ours to close).
    # The thread lock is made anew: a parent thread that held it at the fork does not exist
    # in the child, and would never release the copy (every write of the child would wait).
    for gate in list(_GATES):
        gate._fd = None
        gate._held = -1
        gate._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_descriptors_in_child)


class WriterGate:
    """``with gate.hold():`` runs its body as the only gated writer of the database file."""

    def __init__(self, database_file: Path) -> None:
        self.path = database_file.with_name(database_file.name + ".writer-lock")
        self._lock = threading.Lock()
        #: This process's own descriptor of the lock file, opened at the first hold.
        self._fd: int | None = None
        #: The descriptor locked by the current holder (only touched under ``_lock``).
        self._held = -1
        _GATES.add(self)

    def hold(self) -> AbstractContextManager[None]:
        """The gate, to be used once as ``with gate.hold():`` (any number of threads)."""
        return self

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            descriptor = self._fd
            if descriptor is None:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._fd = descriptor
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise
        self._held = descriptor

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            fcntl.flock(self._held, fcntl.LOCK_UN)
        finally:
            self._held = -1
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = None

"""The file transport: one ``<BeskedId>.xml`` per message in a drop directory.

A pick-up process (or an operator) takes the files from there; the embedded default needs no
broker. Every file appears whole or not at all: the bytes go to a temporary file in the same
directory (named ``.<BeskedId>.<random>.tmp``, so a reader globbing ``*.xml`` never sees it),
are flushed and fsynced, renamed over the final name with ``os.replace`` (atomic within one
file system), and the directory is fsynced so the rename itself survives a crash.

A batch (``deliver_batch``) is made durable together: every file of the batch is written to
its temporary name, then one ``syncfs`` flushes them all (Linux; elsewhere one ``fsync`` per
file), then they are renamed in the batch's order and the directory is fsynced once. Two
fsyncs per file held a national night's delivery to a few hundred files a second. A crash
before the final fsync leaves whole files or none, and the caller, not told of success,
delivers the batch again; a crash's temporary files stay (they never match ``*.xml``).

Each file costs the system calls it needs and no more: ``os.open`` (``O_EXCL``, a fresh random
name; never a leftover or a link), ``write``, ``fchmod`` (the umask may have taken bits off),
``close``, ``stat`` of the final name, ``rename``, all relative to the drop directory opened
once per batch; ``mkstemp``, file objects and ``Path`` cost as much again in Python. Where the
time goes at scale, and why creating a file can take 0.5 ms on some file systems:
``docs/distribution.md``.

Delivering the same ``BeskedId`` again with the same bytes changes nothing (a retry after a
crash between the rename and the caller's bookkeeping). With different bytes the file is
replaced, atomically as well: at-least-once re-delivery of a corrected message is the caller's
business, and a reader that already took the first version will not see the second unless it
looks again. Any ``OSError`` becomes ``DistributorUnavailable`` (retryable).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from serviceplatform.distribution.base import BatchOutcome, DistributorBase, OutgoingMessage
from serviceplatform.errors import DistributorUnavailable

#: Mode of a directory this transport creates: the pick-up process reads through its group.
DIRECTORY_MODE: Final = 0o750
#: Mode of a message file (the pick-up process reads it through its group).
FILE_MODE: Final = 0o640

# O_EXCL: a temporary file is always new, never one that a link or another writer put there.
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
#: Random names tried for one temporary file before giving up.
_TEMP_ATTEMPTS: Final = 100


class FileDropDistributor(DistributorBase):
    """Writes each message atomically to ``directory/<BeskedId>.xml``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path_for(self, besked_id: str) -> Path:
        """Where the message with ``besked_id`` is (or will be) written."""
        return self.directory / f"{besked_id}.xml"

    def deliver(self, message: OutgoingMessage) -> None:
        try:
            with self._opened_directory() as directory:
                name = f"{message.besked_id}.xml"
                if _same_content(directory, name, message.body):
                    return
                temp = _write_temporary(directory, message.besked_id, message.body, sync=True)
                try:
                    os.replace(temp, name, src_dir_fd=directory, dst_dir_fd=directory)
                except BaseException:
                    _discard(directory, [temp])
                    raise
                os.fsync(directory)
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        if not messages:
            return {}
        try:
            with self._opened_directory() as directory:
                _write_batch(directory, messages)
        except OSError as exc:
            return {0: self._unavailable(exc)}
        return dict.fromkeys(range(len(messages)))

    @contextlib.contextmanager
    def _opened_directory(self) -> Iterator[int]:
        """The drop directory, created if missing, open for ``*at`` calls and fsync."""
        # Created here rather than in __init__: a drop directory on a mount that is missing
        # at start-up is a retryable delivery failure, not a failed start.
        self.directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        # Names relative to one open directory: a path is resolved once per batch, not
        # once per file and call, and every file lands in the directory that is fsynced.
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

    def _unavailable(self, exc: OSError) -> DistributorUnavailable:
        # The directory, not the file: the BeskedId may be derived from a CPR number.
        return DistributorUnavailable(f"cannot write to {self.directory}: {exc.strerror or exc}")


def _write_batch(directory: int, messages: Sequence[OutgoingMessage]) -> None:
    """Write, make durable and rename a batch; on any error no temporary file stays behind."""
    written: list[tuple[str, str]] = []
    renamed = 0
    try:
        for message in messages:
            name = f"{message.besked_id}.xml"
            if not _same_content(directory, name, message.body):
                temp = _write_temporary(directory, message.besked_id, message.body, sync=False)
                written.append((temp, name))
        if not written:
            return
        _sync_files(directory, [temp for temp, _ in written])
        # In the batch's order: of one BeskedId given twice, the later version stays.
        for temp, name in written:
            os.replace(temp, name, src_dir_fd=directory, dst_dir_fd=directory)
            renamed += 1
        os.fsync(directory)
    except BaseException:
        _discard(directory, [temp for temp, _ in written[renamed:]])
        raise


def _write_temporary(directory: int, besked_id: str, body: bytes, *, sync: bool) -> str:
    """Write ``body`` to a new ``.<BeskedId>.<random>.tmp`` in ``directory``; its name."""
    for _ in range(_TEMP_ATTEMPTS):
        temp = f".{besked_id}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(temp, _CREATE_FLAGS, FILE_MODE, dir_fd=directory)
        except FileExistsError:
            continue  # a leftover of a crashed run, or the same id twice in one batch
        break
    else:
        raise FileExistsError(errno.EEXIST, "no unused temporary file name")
    try:
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            # The umask may have taken bits off the mode given to open.
            os.fchmod(fd, FILE_MODE)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _discard(directory, [temp])
        raise
    return temp


def _discard(directory: int, names: Sequence[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=directory)


def _same_content(directory: int, name: str, body: bytes) -> bool:
    """True when ``name`` exists in ``directory`` and holds exactly ``body``."""
    try:
        if os.stat(name, dir_fd=directory).st_size != len(body):
            return False
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
    except FileNotFoundError:
        return False
    with os.fdopen(fd, "rb") as handle:
        return handle.read(len(body) + 1) == body


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


_SYNCFS: Final = _load_syncfs()


def _sync_files(directory: int, names: Sequence[str]) -> None:
    """Make the written files durable: one ``syncfs`` of their file system, or fsync each."""
    if _SYNCFS is not None:
        if _SYNCFS(directory) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
        return
    for name in names:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

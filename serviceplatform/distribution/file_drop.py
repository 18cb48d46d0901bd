"""The file transport: one ``<BeskedId>.xml`` per message in a drop directory.

A pick-up process (or an operator) takes the files from there; the embedded default needs no
broker. Every file appears whole or not at all: the bytes go to a temporary file in the same
directory (named ``.<BeskedId>.<random>.tmp``, so a reader globbing ``*.xml`` never sees it),
are flushed and fsynced, renamed over the final name with ``os.replace`` (atomic within one
file system), and the directory is fsynced so the rename itself survives a crash.

A batch (``deliver_batch``) is made durable together: every file of the batch is written to
its temporary name, then one ``syncfs`` flushes them all (Linux; elsewhere one ``fsync`` per
file), then they are renamed and the directory is fsynced once. Two fsyncs per file held a
national night's delivery to a few hundred files a second. A crash before the final fsync
leaves whole files or none, and the caller, not told of success, delivers the batch again.

Delivering the same ``BeskedId`` again with the same bytes changes nothing (a retry after a
crash between the rename and the caller's bookkeeping). With different bytes the file is
replaced, atomically as well: at-least-once re-delivery of a corrected message is the caller's
business, and a reader that already took the first version will not see the second unless it
looks again. Any ``OSError`` becomes ``DistributorUnavailable`` (retryable).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from serviceplatform.distribution.base import BatchOutcome, DistributorBase, OutgoingMessage
from serviceplatform.errors import DistributorUnavailable

#: Mode of a directory this transport creates: the pick-up process reads through its group.
DIRECTORY_MODE: Final = 0o750
#: Mode of a message file (``mkstemp`` makes 0600; the pick-up process reads through its group).
FILE_MODE: Final = 0o640


class FileDropDistributor(DistributorBase):
    """Writes each message atomically to ``directory/<BeskedId>.xml``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path_for(self, besked_id: str) -> Path:
        """Where the message with ``besked_id`` is (or will be) written."""
        return self.directory / f"{besked_id}.xml"

    def deliver(self, message: OutgoingMessage) -> None:
        target = self.path_for(message.besked_id)
        try:
            # Created here rather than in __init__: a drop directory on a mount that is
            # missing at start-up is a retryable delivery failure, not a failed start.
            self.directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
            if _same_content(target, message.body):
                return
            self._write_atomically(target, message.body)
        except OSError as exc:
            # The directory, not the file: the BeskedId may be derived from a CPR number.
            detail = f"cannot write to {self.directory}: {exc.strerror or exc}"
            raise DistributorUnavailable(detail) from exc

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        written: list[tuple[str, Path]] = []
        try:
            self.directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
            for message in messages:
                target = self.path_for(message.besked_id)
                if not _same_content(target, message.body):
                    written.append(
                        (self._write_temporary(target, message.body, sync=False), target)
                    )
            if written:
                _sync_files(self.directory, [temp for temp, _ in written])
                for temp, target in written:
                    os.replace(temp, target)
                _fsync_directory(self.directory)
        except OSError as exc:
            for temp, _ in written:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            detail = f"cannot write to {self.directory}: {exc.strerror or exc}"
            return {0: DistributorUnavailable(detail)} if messages else {}
        return dict.fromkeys(range(len(messages)))

    def _write_temporary(self, target: Path, body: bytes, *, sync: bool) -> str:
        fd, temp_name = tempfile.mkstemp(
            dir=self.directory, prefix=f".{target.stem}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fchmod(handle.fileno(), FILE_MODE)
                if sync:
                    os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
        return temp_name

    def _write_atomically(self, target: Path, body: bytes) -> None:
        temp_name = self._write_temporary(target, body, sync=True)
        try:
            os.replace(temp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
        _fsync_directory(self.directory)


def _same_content(path: Path, body: bytes) -> bool:
    """True when ``path`` exists and holds exactly ``body``."""
    try:
        if path.stat().st_size != len(body):
            return False
        return path.read_bytes() == body
    except FileNotFoundError:
        return False


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


_SYNCFS: Final = _load_syncfs()


def _sync_files(directory: Path, names: Sequence[str]) -> None:
    """Make the written files durable: one ``syncfs`` of their file system, or fsync each."""
    if _SYNCFS is not None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _SYNCFS(fd) != 0:
                error = ctypes.get_errno()
                raise OSError(error, os.strerror(error))
        finally:
            os.close(fd)
        return
    for name in names:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The file transport: one ``<BeskedId>.xml`` per message in a drop directory.

A pick-up process (or an operator) takes the files from there; the embedded default needs no
broker. Every file appears whole or not at all: the bytes go to a temporary file in the same
directory (named ``.<BeskedId>.<random>.tmp``, so a reader globbing ``*.xml`` never sees it),
are flushed and fsynced, renamed over the final name with ``os.replace`` (atomic within one
file system), and the directory is fsynced so the rename itself survives a crash.

Delivering the same ``BeskedId`` again with the same bytes changes nothing (a retry after a
crash between the rename and the caller's bookkeeping). With different bytes the file is
replaced, atomically as well: at-least-once re-delivery of a corrected message is the caller's
business, and a reader that already took the first version will not see the second unless it
looks again. Any ``OSError`` becomes ``DistributorUnavailable`` (retryable).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Final

from serviceplatform.distribution.base import DistributorBase, OutgoingMessage
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

    def _write_atomically(self, target: Path, body: bytes) -> None:
        fd, temp_name = tempfile.mkstemp(
            dir=self.directory, prefix=f".{target.stem}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fchmod(handle.fileno(), FILE_MODE)
                os.fsync(handle.fileno())
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


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
